#!/bin/sh
# Builds the runtime root filesystem into DEST: the driver, the tools the node service runs, and
# exactly the shared libraries they load (as ldd resolves them here), plus the CA bundle and
# mke2fs.conf. The image starts FROM scratch with this tree, so nothing else is in it: no shell,
# no package manager, no python (xfsprogs' scripts are left out on purpose).
# Usage: rootfs.sh DEST DRIVER_BINARY
set -eu
dest=$1
driver=$2
# The node service runs these by name (src/host); keep in step with `command::run` call sites.
tools="blkid losetup mkfs.ext4 mkfs.ext3 e2fsck resize2fs mkfs.xfs xfs_growfs mkfs.btrfs btrfs"

mkdir -p "$dest/usr/sbin" "$dest/etc/ssl/certs" "$dest/tmp"
chmod 1777 "$dest/tmp"
install -m 0755 "$driver" "$dest/cinder-evs-csi"
for tool in $tools; do
  path=$(command -v "$tool") || { echo "rootfs.sh: $tool is not installed" >&2; exit 1; }
  install -m 0755 "$(readlink -f "$path")" "$dest/usr/sbin/$tool"
done
# Every library any of them loads, at the path the dynamic loader will look for it.
for bin in "$dest/cinder-evs-csi" "$dest"/usr/sbin/*; do
  ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }'
done | sort -u | while read -r lib; do
  cp -L --parents "$lib" "$dest"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/"
cp -L /etc/mke2fs.conf "$dest/etc/"
