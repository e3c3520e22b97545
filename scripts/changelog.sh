#!/bin/sh
# Prints the Debian changelog of the package being built (it is a native
# package: upstream's own), one entry for VERSION: what it was built from.
# The git history is the detailed record. The entry's time is
# SOURCE_DATE_EPOCH, the commit's, so that the package is reproducible.
# Usage: VERSION=... MAINTAINER=... SOURCE_DATE_EPOCH=... scripts/changelog.sh
set -eu
: "${VERSION:?}" "${MAINTAINER:?}" "${SOURCE_DATE_EPOCH:?}"
case $VERSION in
*+git*.dirty) what="Snapshot built from uncommitted changes on git commit $(printf '%s\n' "$VERSION" | sed 's/.*+git[0-9]*\.//; s/\.dirty$//')" ;;
*+git*) what="Snapshot built from git commit $(printf '%s\n' "$VERSION" | sed 's/.*+git[0-9]*\.//')" ;;
*) what="Release $VERSION" ;;
esac
printf 'storhaug (%s) unstable; urgency=medium\n\n  * %s.\n\n -- %s  %s\n' \
	"$VERSION" "$what" "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
