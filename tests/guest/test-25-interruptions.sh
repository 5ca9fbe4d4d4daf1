#!/bin/sh
# Interruptions: an I/O error in the write-back reaching fsync, SIGKILL
# while the donor is allocated, a truncate between two steps of a move.
# Run in the guest by init (after test-10-fibmap.sh, which leaves the
# module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

# An I/O error met while the module writes the file back fails the call
# and still reaches the application's fsync on that open file (the module
# wrote back through the caller's struct file, which consumed the error:
# fsync returned 0). The file's blocks sit on a dm "error" segment.
echo "== defrag: an I/O error in the write-back"
umount /mnt 2>/dev/null
size=$(cat /sys/block/vda/size)
if dmsetup create e4d-io --table "0 $size linear $DEV 0" &&
	mkfs.ext4 -q -F -b 4096 /dev/dm-0 && mount -t ext4 /dev/dm-0 /mnt; then
	fallocate -l 65536 /mnt/e
	sync
	first=$(($(first_pblk /mnt/e) * 8))
	dd if=/dev/urandom of=/mnt/e bs=4096 count=16 conv=notrunc 2>/dev/null
	dmsetup suspend --nolockfs e4d-io
	printf '0 %s linear %s 0\n%s 128 error\n%s %s linear %s %s\n' "$first" "$DEV" \
		"$first" $((first + 128)) $((size - first - 128)) "$DEV" $((first + 128)) |
		dmsetup load e4d-io
	dmsetup resume e4d-io
	out=$(fraggen defrag-then-fsync /mnt/e)
	dmsetup suspend --nolockfs e4d-io
	dmsetup load e4d-io --table "0 $size linear $DEV 0"
	dmsetup resume e4d-io
	if [ "$out" = "defrag EIO fsync EIO" ]; then
		pass write_back_error_reaches_fsync
	else
		fail write_back_error_reaches_fsync "$out"
	fi
	umount /mnt
	e2fsck -fn /dev/dm-0 > /tmp/fsck 2>&1 && pass e2fsck_clean_after_io_error ||
		fail e2fsck_clean_after_io_error "$(tail -5 /tmp/fsck | tr '\n' ';')"
	dmsetup remove e4d-io
else
	fail io_error_setup "dmsetup, mkfs or mount failed"
	dmsetup remove e4d-io 2>/dev/null
fi

# A file whose defragmentation allocates 40000 times (one per stretch)
# before moving anything: SIGKILL must stop it there, not after all the
# transactions. (Uninterrupted, this call ran 49 s under QEMU.)
echo "== defrag: SIGKILL while the donor is allocated"
umount /mnt
mkfs.ext4 -q -F -b 1024 "$DEV" && mount -t ext4 -o nodelalloc "$DEV" /mnt ||
	{ fail stretches_mkfs "mkfs or mount failed"; exit 0; }
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }
fraggen stretches /mnt/sparse 40000
sum=$(sha /mnt/sparse) ext=$(extent_count /mnt/sparse)
e4defrag --backend module /mnt/sparse > /tmp/kill.out 2>&1 &
pid=$!
sleep 3
t0=$(uptime_cs)
kill -9 $pid
wait $pid
t1=$(uptime_cs)
latency=$((t1 - t0))
now=$(extent_count /mnt/sparse)
echo "== SIGKILL after 3 s: the call ended $((latency / 100)).$((latency % 100)) s later; extents $ext -> $now"
[ "$(sha /mnt/sparse)" = "$sum" ] && pass sigkill_during_allocation_data_intact ||
	fail sigkill_during_allocation_data_intact "data changed"
# Killed while allocating: nothing moved, and within a second (the
# allocation alone takes several).
if [ "$now" = "$ext" ] && [ "$latency" -le 100 ]; then
	pass sigkill_during_allocation_stops_it
else
	fail sigkill_during_allocation_stops_it "$latency cs, extents $ext -> $now: $(cat /tmp/kill.out)"
fi
fsck_ok e2fsck_clean_after_sigkill

# A truncate between two steps of a move stops the move at the new end:
# no EINVAL from ext4, the data left intact, and the tool says the file
# shrank (before the fix: "EXT4_IOC_DEFRAG: EINVAL"). The file (100 MiB)
# is moved to a goal in the other block group one page per step, and
# truncated as soon as the first step moved its first block.
echo "== defrag: truncate during the move"
umount /mnt
mkfs.ext4 -q -F -b 4096 "$DEV" && mount -t ext4 -o nodelalloc "$DEV" /mnt ||
	{ fail truncate_mkfs "mkfs or mount failed"; exit 0; }
dd if=/dev/urandom of=/mnt/t bs=64K count=1 conv=fsync 2>/dev/null
dd if=/dev/zero of=/mnt/t bs=1M seek=1 count=99 conv=notrunc,fsync 2>/dev/null
head -c 65536 /mnt/t > /tmp/t.head
# FIEMAP answers during the move (the module's block query waits for it).
first() { filefrag -e "$1" | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }'; }
was=$(first /mnt/t)
e4defrag --backend module --goal 36000 --unit-log2 0 /mnt/t > /tmp/trunc.out 2>&1 &
pid=$!
while [ "$(first /mnt/t)" = "$was" ] && kill -0 $pid 2>/dev/null; do :; done
truncate -s 64K /mnt/t
wait $pid
echo "== truncated after the first step of the move from $was: $(tr '\n' ' ' < /tmp/trunc.out | head -c 300)"
if cmp -s /tmp/t.head /mnt/t && ! grep -q EINVAL /tmp/trunc.out &&
	grep -q "shrank" /tmp/trunc.out; then
	pass truncate_during_move_stops_at_the_end
else
	fail truncate_during_move_stops_at_the_end "$(tr '\n' ' ' < /tmp/trunc.out | head -c 300)"
fi
fsck_ok e2fsck_clean_after_truncate_during_move
