#!/bin/bash
# Build the test guest's initramfs: busybox, e2fsprogs (with their shared
# libraries), the module, the tool, the test drivers and the guest scripts
# of tests/guest/.
#   scripts/initramfs.sh OUT.cpio.gz MODULE.ko E4DEFRAG DRIVERS_DIR HOST_TESTS
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1 ko=$2 tool=$3 drivers=$4 host_tests=$5

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
for p in mke2fs e2fsck debugfs dumpe2fs filefrag chattr lsattr e2freefrag; do
	copy_with_libs "$(command -v "$p" || echo "/usr/sbin/$p")" "/usr/sbin/$p"
done
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
# e2fsprogs' own e4defrag (EXT4_IOC_MOVE_EXT from userspace), for make bench.
copy_with_libs "$(command -v e4defrag || echo /usr/sbin/e4defrag)" /usr/sbin/e2fsprogs-e4defrag
# util-linux's fallocate: busybox's cannot punch holes.
copy_with_libs "$(command -v fallocate || echo /usr/bin/fallocate)" /usr/sbin/fallocate
cp /etc/mke2fs.conf "$root/etc/"
# dmsetup puts the power-cut boot's filesystem on dm-log-writes.
copy_with_libs "$(command -v dmsetup || echo /usr/sbin/dmsetup)" /usr/sbin/dmsetup
# e2fsprogs' e4defrag finds mount points in /etc/mtab.
ln -s /proc/mounts "$root/etc/mtab"
# An unprivileged user for the permission scenarios (su user -c ...).
printf 'root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' > "$root/etc/group"

install -m 755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/usr/sbin/$applet" ] || [ -e "$root/bin/$applet" ] ||
		ln -s busybox "$root/bin/$applet"
done

copy_with_libs "$tool" /usr/sbin/e4defrag
# The seeded layout generator of the property tests, next to the tool.
copy_with_libs "$drivers/fraggen" /usr/sbin/fraggen
# A 32-bit caller of the ioctls, for the compat path (test-21, which
# skips those checks without it: gcc-multilib, which scripts/deps.sh
# installs, gives the 32-bit C library).
gcc -m32 -static -O2 -Wall -I"$top/include/uapi" "$top/tests/guest/compat32.c" \
	-o "$root/usr/sbin/compat32" ||
	echo "initramfs: no compat32 (gcc -m32 failed): test-21 skips the compat_ioctl checks" >&2
# The ioctl fuzzer of test-50 and the modelled workload of test-60.
copy_with_libs "$drivers/ioctlfuzz" /usr/sbin/ioctlfuzz
copy_with_libs "$drivers/workload" /usr/sbin/workload
# The host tests' binary, which test-30 runs with the module backend, and
# the util-linux programs it calls, in a directory of their own that only
# its PATH has: busybox lacks findmnt, setpriv and script (a terminal for
# the progress bar's test), and its mount -o loop
# races for the same loop device when the tests mount in parallel.
copy_with_libs "$host_tests" /usr/sbin/host_ext4
mkdir -p "$root/usr/lib/util-linux/bin"
for p in mount umount findmnt setpriv losetup script; do
	copy_with_libs "$(command -v "$p" || echo "/usr/bin/$p")" "/usr/lib/util-linux/bin/$p"
done
install -m 755 "$top"/tests/layouts.sh "$root/bin/layouts.sh"
install -m 644 "$ko" "$root/lib/modules/ext4_defrag.ko"
chmod 755 "$root"
install -m 755 "$top"/tests/guest/init "$root/init"
install -m 755 "$top"/tests/guest/*.sh "$root/bin/"
install -m 644 "$top"/tests/guest/groups "$root/bin/groups"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))" >&2
