#!/bin/sh
# Prints storhaug's version, the one the binary reports and the packages
# carry, from git (run from anywhere inside the repository):
#   HEAD tagged vX.Y.Z, clean tree:  X.Y.Z
#   otherwise:                       X.Y.Z+git<N>.<hash>[.dirty]
# where vX.Y.Z is the newest release tag HEAD descends from (0.1.0 when there
# is none), N the commits since it (all commits when there is no tag) and
# hash HEAD's short hash. A tag's pre-release part (v0.2.0-rc1) becomes
# "~rc1", which Debian and RPM both sort before the release. Both Debian and
# RPM accept every version this prints.
set -eu
base=0.1.0
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "$base+unknown"
	exit 0
fi
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' HEAD 2>/dev/null); then
	version=$(printf '%s\n' "${tag#v}" | tr - '~')
	n=$(git rev-list --count "$tag..HEAD")
	case $version in
	*[!0-9A-Za-z.~]*)
		echo "version.sh: tag $tag: want vX.Y.Z or vX.Y.Z-PRERELEASE (letters, digits, dots)" >&2
		exit 1
		;;
	esac
else
	version=$base
	n=$(git rev-list --count HEAD)
fi
dirty=
git update-index -q --refresh >/dev/null 2>&1 || true
git diff-index --quiet HEAD -- || dirty=.dirty
if [ "$n" = 0 ] && [ -z "$dirty" ]; then
	echo "$version"
else
	echo "$version+git$n.$(git rev-parse --short=12 HEAD)$dirty"
fi
