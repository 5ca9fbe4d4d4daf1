#!/bin/sh
# The demo: a fragmented ext4 image; e4defrag -c before; the module's block
# query next to filefrag; e4defrag -r on a scattered directory and on
# fragmented files; e4defrag -c after; e2fsck.
. /bin/lib.sh
DEV=/dev/vda

echo "==== making ext4 on $DEV: a scattered boot directory, fragmented files"
mkfs.ext4 -q -F -b 4096 "$DEV"
mount -t ext4 "$DEV" /mnt
mkdir -p /mnt/etc
echo "hello" > /mnt/etc/hostname
scattered /mnt/boot 100
make_fragmented /mnt/etc/big 200
make_fragmented /mnt/etc/small 40
(cd /mnt && sha256sum boot/* etc/*) > /tmp/sums

echo
echo "==== e4defrag -c $DEV, before"
e4defrag -c $DEV

echo
echo "==== insmod ext4_defrag.ko"
load_module && grep -E "ext4_defrag|ok [0-9]" /tmp/insmod.log

echo
echo "==== the block query (EXT4_IOC_FIBMAP) next to filefrag -e"
for p in /mnt/boot /mnt/etc/hostname /mnt/etc/small; do
	e4defrag --map -b 0 -b 1 "$p"
	filefrag -e "$p" | sed -n '4,5p'
done

echo
echo "==== e4defrag -r /mnt/boot: the boot files side by side"
# The set goes next to its directory, where its inodes are: scattered()
# wrote the data through the allocator's per-CPU preallocation, in the
# other block group.
echo "/mnt/boot's directory block: $(first_pblk /mnt/boot); its first file's data: $(first_pblk /mnt/boot/f0)"
e4defrag -r /mnt/boot
echo "after: the first file's data at $(first_pblk /mnt/boot/f0)"
e4defrag -c $DEV | grep "read in order"

echo
echo "==== e4defrag the fragmented files: each stays near its old place"
was_big=$(first_pblk /mnt/etc/big) was_small=$(first_pblk /mnt/etc/small)
e4defrag /mnt/etc/big /mnt/etc/small
echo "/mnt/etc/big: first block $was_big -> $(first_pblk /mnt/etc/big);" \
	"/mnt/etc/small: $was_small -> $(first_pblk /mnt/etc/small)"

echo
echo "==== e4defrag -c $DEV, after"
e4defrag -c $DEV

echo
echo "==== data unchanged"
(cd /mnt && sha256sum -c /tmp/sums | grep -vc ": OK$" | sed 's/$/ files differ/')
umount /mnt
echo
echo "==== e2fsck -fn"
e2fsck -fn "$DEV"
