#!/usr/bin/env bash
# Installs what storhaug's build, tests, lab and demo need on Debian 12, as
# root: Debian packages (only those missing) and the Go modules.
set -euo pipefail
pkgs=(
  pacemaker pacemaker-cli-utils corosync resource-agents
  ctdb tdb-tools samba smbclient
  nfs-ganesha nfs-ganesha-vfs libnfs-utils dbus
  conntrack nftables iptables iproute2 iputils-arping tcpdump libxml2-utils
  procps util-linux psmisc groff-base
  pcs crmsh
  user-mode-linux kmod nfs-common rpcbind cifs-utils
  ethtool
  lintian rpm man-db
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go mod download
# The packaging tools (nfpm), pinned in a module of their own.
(cd "$(dirname "$0")/../packaging/tools" && go mod download)
