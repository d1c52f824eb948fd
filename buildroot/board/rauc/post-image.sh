#!/bin/sh
#
# Buildroot post-image script: builds the signed RAUC bundle of the image
# from manifest.raucm (BR2_ROOTFS_POST_IMAGE_SCRIPT; argument 1 is
# BINARIES_DIR). Set in the environment of `make` (or in CI secrets):
#
#   SATD_RAUC_COMPATIBLE  board name, equal to system.conf's compatible
#   SATD_RAUC_VERSION     image version (default: date-based)
#   SATD_RAUC_CERT        signing certificate (PEM)
#   SATD_RAUC_KEY         signing key (PEM)
#
# Needs BR2_PACKAGE_HOST_RAUC=y and BR2_TARGET_ROOTFS_EXT2=y (rootfs.ext4).

set -eu

binaries=${1:?usage: post-image.sh BINARIES_DIR}
here=$(dirname "$0")
: "${SATD_RAUC_COMPATIBLE:?set SATD_RAUC_COMPATIBLE to the board name}"
: "${SATD_RAUC_CERT:?set SATD_RAUC_CERT to the signing certificate}"
: "${SATD_RAUC_KEY:?set SATD_RAUC_KEY to the signing key}"
version=${SATD_RAUC_VERSION:-$(date -u +%Y.%m.%d-%H%M)}

# rauc rewrites the manifest in its input directory: build it fresh.
work="$binaries/rauc-bundle"
rm -rf "$work"
mkdir -p "$work"
cp "$binaries/rootfs.ext4" "$work/rootfs.ext4"
sed -e "s|@COMPATIBLE@|$SATD_RAUC_COMPATIBLE|g" \
	-e "s|@VERSION@|$version|g" \
	-e "s|@BUILD@|$(date -u +%Y%m%dT%H%M%SZ)|g" \
	"$here/manifest.raucm" >"$work/manifest.raucm"

bundle="$binaries/satd-$SATD_RAUC_COMPATIBLE-$version.raucb"
rm -f "$bundle"
"$HOST_DIR/bin/rauc" bundle --cert="$SATD_RAUC_CERT" --key="$SATD_RAUC_KEY" \
	"$work" "$bundle"
echo "RAUC bundle: $bundle"
