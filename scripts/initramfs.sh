#!/bin/bash
# Build the test guest's initramfs: busybox, e2fsprogs (with their shared
# libraries), the module, the tool and the guest scripts of tests/guest/.
#   scripts/initramfs.sh OUT.cpio.gz MODULE.ko E4DEFRAG
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1 ko=$2 tool=$3

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/sbin,etc,proc,sys,dev,tmp,mnt,lib/modules}

# Copy a dynamically linked program and every library it needs.
copy_with_libs() {
	local prog=$1 dest=$2
	install -m 755 "$prog" "$root$dest"
	ldd "$prog" | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] || install -D -m 755 "$lib" "$root$lib"
	done
}

# e2fsprogs first, so busybox's look-alikes do not shadow them.
for p in mke2fs e2fsck debugfs filefrag; do
	copy_with_libs "$(command -v "$p" || echo "/usr/sbin/$p")" "/usr/sbin/$p"
done
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
cp /etc/mke2fs.conf "$root/etc/"

install -m 755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/usr/sbin/$applet" ] || [ -e "$root/bin/$applet" ] ||
		ln -s busybox "$root/bin/$applet"
done

copy_with_libs "$tool" /usr/sbin/e4defrag
install -m 644 "$ko" "$root/lib/modules/ext4_defrag.ko"
install -m 755 "$top"/tests/guest/init "$root/init"
install -m 755 "$top"/tests/guest/*.sh "$root/bin/"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))" >&2
