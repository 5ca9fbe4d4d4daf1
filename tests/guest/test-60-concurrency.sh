#!/bin/sh
# Concurrency: a seeded random workload (workload, a test-only binary of
# the tool crate: writes, appends, hole punches, truncates, fallocate and
# zero-range, writes through shared mappings and O_DIRECT, renames and
# unlinks) on 8 files while e4defrag runs on the same files in a loop, in
# turn per file a page per step, -r over the whole filesystem and with the
# stock MOVE_EXT backend. Defragmentation never changes data: every file
# must end as the workload's own model says. A file nobody writes, moved
# by the same loop, keeps its checksum; e2fsck -fn is clean and the kernel
# log quiet (lockdep included). Then a punch of the range's tail during a
# move, and a freeze during one.
. /bin/lib.sh
DEV=/dev/vda
lsmod | grep -q ext4_defrag || insmod $KO
umount /mnt 2>/dev/null
mkfs.ext4 -q -F -b 4096 "$DEV" 256M && mount -t ext4 "$DEV" /mnt ||
	{ fail concurrency_mkfs "mkfs or mount failed"; exit 0; }
mkdir -p /mnt/still /mnt/w
make_fragmented /mnt/still/a 32
sum=$(sha /mnt/still/a)
for seed in 1 2; do
	workload "$seed" 3000 /mnt/w > /tmp/wl.out 2>&1 &
	wl=$!
	runs=0
	while kill -0 $wl 2>/dev/null; do
		case $((runs % 3)) in
		0) e4defrag --unit-log2 0 /mnt/w/w* /mnt/still/a ;;
		1) e4defrag -r /mnt ;;
		2) e4defrag --backend move-ext /mnt/w/w* ;;
		esac > /dev/null 2>&1
		runs=$((runs + 1))
	done
	wait $wl
	rc=$?
	echo "== workload seed $seed: $(head -1 /tmp/wl.out); $runs e4defrag runs meanwhile"
	if [ $rc -eq 0 ] && [ $runs -gt 0 ]; then
		pass "concurrent_workload_seed_${seed}_data_as_modelled"
	else
		fail "concurrent_workload_seed_${seed}_data_as_modelled" \
			"exit $rc, $runs runs: $(tail -2 /tmp/wl.out | tr '\n' ';')"
	fi
	rm -rf /mnt/w/*
done
if [ "$(sha /mnt/still/a)" = "$sum" ]; then
	pass concurrency_untouched_file_intact
else
	fail concurrency_untouched_file_intact "checksum changed"
fi
fsck_ok e2fsck_clean_after_concurrency
# A hole punched over the range's tail while the move goes on: the
# punched blocks are simply not moved (the move does not fail with
# ENODATA when no extent is left at or after its next step). 64 MiB moved
# to a goal in the other block group, a page per step: the punch comes
# once the first step has moved the first block, long before the move
# reaches the tail (a fresh filesystem: the goal free).
mkfs.ext4 -q -F -b 4096 "$DEV" 256M && mount -t ext4 "$DEV" /mnt ||
	{ fail punch_mkfs "mkfs or mount failed"; exit 0; }
dd if=/dev/urandom of=/mnt/p bs=1M count=64 conv=fsync 2>/dev/null
head_sum=$(head -c $((48 << 20)) /mnt/p | sha256sum | cut -d' ' -f1)
first() { filefrag -e "$1" | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }'; }
was=$(first /mnt/p)
# The goal in the other block group than the data (ext4 may have put it
# in either).
goal=$([ "$was" -lt 32768 ] && echo 40000 || echo 8000)
e4defrag --backend module --goal $goal --unit-log2 0 /mnt/p > /tmp/punch.out 2>&1 &
df=$!
while [ "$(first /mnt/p)" = "$was" ] && kill -0 $df 2>/dev/null; do :; done
/usr/sbin/fallocate -p -o $((48 << 20)) -l $((16 << 20)) /mnt/p
kill -0 $df 2>/dev/null && during=yes || during=no
wait $df
rc=$?
tail_zero=$(tail -c $((16 << 20)) /mnt/p | tr -d '\0' | wc -c)
if [ $during = yes ] && [ $rc -eq 0 ] && [ "$tail_zero" -eq 0 ] &&
	[ "$(head -c $((48 << 20)) /mnt/p | sha256sum | cut -d' ' -f1)" = "$head_sum" ]; then
	pass concurrent_punch_of_the_tail_is_not_moved
else
	fail concurrent_punch_of_the_tail_is_not_moved \
		"punched during the move: $during, exit $rc, $tail_zero non-zero tail bytes: $(tail -2 /tmp/punch.out | tr '\n' ';')"
fi
rm -f /mnt/p
fsck_ok e2fsck_clean_after_punch_during_move

# A freeze during a long move: the move holds write access for one step
# at a time, so fsfreeze returns with the move half done (before the fix
# it waited for the whole move, and found the file in one extent), and
# the move goes on after the thaw. The freeze's latency is printed.
mkfs.ext4 -q -F -b 4096 "$DEV" 256M && mount -t ext4 "$DEV" /mnt ||
	{ fail freeze_mkfs "mkfs or mount failed"; exit 0; }
dd if=/dev/urandom of=/mnt/z bs=1M count=64 conv=fsync 2>/dev/null
sum=$(sha /mnt/z)
was=$(first /mnt/z)
goal=$([ "$was" -lt 32768 ] && echo 40000 || echo 8000)
e4defrag --backend module --goal $goal --unit-log2 0 /mnt/z > /tmp/freeze.out 2>&1 &
df=$!
while [ "$(first /mnt/z)" = "$was" ] && kill -0 $df 2>/dev/null; do :; done
t0=$(cut -d' ' -f1 /proc/uptime)
fsfreeze --freeze /mnt
t1=$(cut -d' ' -f1 /proc/uptime)
frozen_extents=$(extent_count /mnt/z)
fsfreeze --unfreeze /mnt
wait $df
rc=$?
echo "== fsfreeze during the move returned in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, the file in $frozen_extents extents then; $(tail -1 /tmp/freeze.out)"
if [ "$frozen_extents" -gt 1 ] && [ $rc -eq 0 ] && [ "$(sha /mnt/z)" = "$sum" ] &&
	[ "$(extent_count /mnt/z)" -eq 1 ]; then
	pass freeze_during_a_move_waits_for_one_step
else
	fail freeze_during_a_move_waits_for_one_step \
		"$frozen_extents extents when frozen, exit $rc, now $(extent_count /mnt/z): $(tail -1 /tmp/freeze.out)"
fi
rm -f /mnt/z
fsck_ok e2fsck_clean_after_freeze_during_move
check_kernel_log concurrency_kernel_log_clean
