#!/bin/sh
# The demo: an ext4 image with a few files, the module's block query shown
# next to what filefrag -e says.
. /bin/lib.sh
DEV=/dev/vda

show() {
	echo
	echo "---- $1"
	e4defrag --map -b 0 "$1"
	filefrag -e "$1" | sed -n '3,6p'
}

echo "==== making ext4 on $DEV and a few files"
mkfs.ext4 -q -F -b 4096 "$DEV"
mount -t ext4 "$DEV" /mnt
mkdir -p /mnt/etc/init.d
echo "hello" > /mnt/etc/hostname
dd if=/dev/urandom of=/mnt/etc/big bs=1M count=4 2>/dev/null
make_fragmented /mnt/etc/init.d/fragmented 40
sync

echo "==== without the module, e4defrag falls back to FIEMAP"
e4defrag --map /mnt/etc/hostname
e4defrag --map --backend module /mnt/etc/hostname

echo
echo "==== insmod ext4_defrag.ko"
load_module && grep -E "ext4_defrag|ok [0-9]" /tmp/insmod.log
for p in /mnt /mnt/etc /mnt/etc/init.d /mnt/etc/hostname /mnt/etc/big /mnt/etc/init.d/fragmented; do
	show "$p"
done
echo
echo "---- every block of the fragmented file"
# shellcheck disable=SC2046
e4defrag --map $(seq 0 9 | sed 's/^/-b /') /mnt/etc/init.d/fragmented
umount /mnt
echo
echo "==== e2fsck -fn"
e2fsck -fn "$DEV"
