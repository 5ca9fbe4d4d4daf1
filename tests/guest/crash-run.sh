#!/bin/sh
# First boot of a crash scenario: make a file of 1500 extents, record its
# checksum on the disk, start defragmenting it one page per step and, once
# the move has read e4d.killat percent of the file's data from the disk
# (/proc/diskstats: the move reads each page it swaps, caches were
# dropped), print E4D-KILL: the host runner then kills QEMU at once, as a
# power cut would. crash-check.sh looks at the disk after.
. /bin/lib.sh
DEV=/dev/vda
killat=$(sed -n 's/.*e4d\.killat=\([0-9]*\).*/\1/p' /proc/cmdline)

insmod $KO || { fail crash_insmod "insmod failed"; exit 0; }
# commit=1: the journal commits every second, so the kill points fall
# between committed steps of the move, not only before the first commit.
mkfs.ext4 -q -F -b 4096 -N 16384 "$DEV" 64M && mount -t ext4 -o commit=1 "$DEV" /mnt ||
	{ fail crash_mkfs "mkfs or mount failed"; exit 0; }
make_holey /mnt/victim 1500
sha /mnt/victim > /mnt/victim.sha256
extent_count /mnt/victim > /mnt/victim.extents
sync
sectors_read() { awk '$3 == "vda" { print $6 }' /proc/diskstats; }
sync
echo 3 > /proc/sys/vm/drop_caches
read0=$(sectors_read)
size=$(($(stat -c %s /mnt/victim) / 512))
# Commit often, so that the power cut finds part of the move committed.
(while :; do sync; usleep 50000; done) &
e4defrag --unit-log2 0 /mnt/victim > /dev/null 2>&1 &
defrag=$!
while [ $(($(sectors_read) - read0)) -lt $((size * killat / 100)) ] &&
	kill -0 $defrag 2>/dev/null; do
	usleep 5000
done
echo "== killing after $((($(sectors_read) - read0) * 100 / size))% of the data was read"
echo "E4D-KILL"
# The runner kills QEMU on that line; never get further.
sleep 600
