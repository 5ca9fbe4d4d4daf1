#!/bin/sh
# First boot of a crash scenario: make a file of 1500 extents, record its
# checksum on the disk, start defragmenting it one page per step and, after
# e4d.delay milliseconds, print E4D-KILL: the host runner then kills QEMU
# at once, as a power cut would. crash-check.sh looks at the disk after.
. /bin/lib.sh
DEV=/dev/vda
delay=$(sed -n 's/.*e4d\.delay=\([0-9]*\).*/\1/p' /proc/cmdline)

insmod $KO || { fail crash_insmod "insmod failed"; exit 0; }
# commit=1: the journal commits every second, so the kill points fall
# between committed steps of the move, not only before the first commit.
mkfs.ext4 -q -F -b 4096 -N 16384 "$DEV" 64M && mount -t ext4 -o commit=1 "$DEV" /mnt ||
	{ fail crash_mkfs "mkfs or mount failed"; exit 0; }
make_holey /mnt/victim 1500
sha /mnt/victim > /mnt/victim.sha256
extent_count /mnt/victim > /mnt/victim.extents
sync
e4defrag --unit-log2 0 /mnt/victim > /dev/null 2>&1 &
usleep $((delay * 1000))
echo "E4D-KILL"
# The runner kills QEMU on that line; never get further.
sleep 600
