#!/bin/sh
# Concurrency: a seeded random workload (workload, a test-only binary of
# the tool crate: writes, appends, hole punches, truncates, fallocate and
# zero-range, writes through shared mappings and O_DIRECT, renames and
# unlinks) on 8 files while e4defrag runs on the same files in a loop, in
# turn per file a page per step, -r over the whole filesystem and with the
# stock MOVE_EXT backend. Defragmentation never changes data: every file
# must end as the workload's own model says. A file nobody writes, moved
# by the same loop, keeps its checksum; e2fsck -fn is clean and the kernel
# log quiet (lockdep included).
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
check_kernel_log concurrency_kernel_log_clean
