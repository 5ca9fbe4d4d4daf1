#!/bin/sh
# Power-cut scenarios, recorded (the fstests method, generic/455 and 482):
# the test filesystem sits on dm-log-writes, vda the data disk and vdb the
# log, so every write, flush and FUA that reaches the "disk" is logged in
# order. Each phase prints the checksums of the files it must never change
# (E4D-MANIFEST) and puts marks around its defrag; tests/powercut.py on
# the host replays the log to every flush and FUA between the marks and
# checks mount, the data and e2fsck -fn there.
. /bin/lib.sh
log_sync() { sync; dmsetup message lw 0 mark "$1" || fail "powercut_mark_$1" "dmsetup message"; }
manifest() {
	phase=$1
	shift
	for f; do echo "E4D-MANIFEST: $phase ${f#/mnt/} $(sha "$f")"; done
}
# The journal commits every second and a loop syncs every 10 ms, so that
# the log holds many flush points inside each phase, not only its end.
syncer_start() { (while :; do sync; usleep 10000; done) & syncer=$!; }
syncer_stop() { kill "$syncer"; wait "$syncer" 2>/dev/null; }

insmod $KO || { fail powercut_insmod "insmod failed"; exit 0; }
if ! dmsetup create lw --table "0 $(cat /sys/block/vda/size) log-writes /dev/vda /dev/vdb"; then
	fail powercut_dm_log_writes "dmsetup create failed"
	exit 0
fi
DEV=/dev/dm-0
[ "$(cat /sys/block/dm-0/dm/name)" = lw ] || { fail powercut_dm_name "dm-0 is not lw"; exit 0; }
mkfs.ext4 -q -F -b 4096 -N 16384 "$DEV" 64M && mount -t ext4 -o commit=1 "$DEV" /mnt ||
	{ fail powercut_mkfs "mkfs or mount failed"; exit 0; }
sysfs=/sys/fs/ext4/$(basename "$DEV")

# 1. A file of about 3000 extents (a tree of depth 2) moved a page per
#    step; the tree shrinks to the inode at the end.
make_holey /mnt/victim 3000
echo "== bigfile: $(extent_count /mnt/victim) extents, depth $(extent_depth /victim)"
manifest bigfile /mnt/victim
log_sync bigfile-start
syncer_start
e4defrag --unit-log2 0 /mnt/victim > /tmp/out 2>&1 || { echo "== bigfile:"; cat /tmp/out; }
syncer_stop
log_sync bigfile-end
echo "== bigfile: $(extent_count /mnt/victim) extents, depth $(extent_depth /victim) after"

# 2. A directory of 600 scattered small files packed with -r.
scattered /mnt/set 600
manifest set /mnt/victim /mnt/set/*
log_sync set-start
syncer_start
e4defrag -r /mnt/set > /tmp/out 2>&1 || { echo "== set:"; cat /tmp/out; }
syncer_stop
log_sync set-end
echo "== set: $(tail -1 /tmp/out)"

# 3. data=writeback: ext4 hands blocks freed from file data to other
#    writers at once, not at the commit. No periodic commit here, and all
#    free space is taken but one run for the donor, so that a writer
#    right after the defrag can only get the file's old blocks: unless the
#    module commits the moves before it lets the old blocks go, the point
#    before that writer's commit has the file on the writer's data. (No
#    making room here: phase 5 covers it.)
umount /mnt
mount -t ext4 -o commit=60,data=writeback "$DEV" /mnt
rm -rf /mnt/set
make_holey /mnt/wb 1000
echo 0 > "$sysfs/reserved_clusters"
n=$(fill_fs /mnt/fill)
i=$((n - 1100))
while [ $i -lt "$n" ]; do rm /mnt/fill/$i; i=$((i + 1)); done
sync
manifest writeback /mnt/victim /mnt/wb
log_sync writeback-start
e4defrag --unit-log2 0 --max-evacuate 0 /mnt/wb > /tmp/out 2>&1 || { echo "== writeback:"; cat /tmp/out; }
dd if=/dev/urandom of=/mnt/after bs=4096 count=900 conv=fsync 2>/dev/null
log_sync writeback-end
echo "== writeback: $(tail -1 /tmp/out)"
rm -rf /mnt/fill /mnt/after

# 4. A full filesystem: all free space is taken but 802 blocks, in
#    pieces, and no clusters are reserved. Meant to run the donor's
#    growing extent tree out of blocks in the middle of the move; on this
#    layout the plan already finds no room (ENOSPC after the retry
#    commit; without --max-evacuate 0 the tool would make room instead),
#    so what is checked is that the refusal, its commit and the freed
#    donor leave every point consistent.
umount /mnt
mount -t ext4 -o commit=1 "$DEV" /mnt
make_holey /mnt/full 800
echo 0 > "$sysfs/reserved_clusters"
n=$(fill_fs /mnt/filler)
i=$((n - 802))
while [ $i -lt "$n" ]; do rm /mnt/filler/$i; i=$((i + 1)); done
manifest full /mnt/victim /mnt/wb /mnt/full
log_sync full-start
syncer_start
e4defrag --unit-log2 0 --max-evacuate 0 /mnt/full > /tmp/out 2>&1
echo "== full: e4defrag exit $?: $(tail -1 /tmp/out)"
syncer_stop
log_sync full-end
rm -rf /mnt/filler

# 5. Making room: a -r set no free run holds, on a filesystem crowded
#    with 64-block files; other files are moved out of a region, then the
#    set is moved in.
rm -rf /mnt/full
crowded_set /mnt/crowd
manifest makeroom /mnt/victim /mnt/wb /mnt/crowd/others/* /mnt/crowd/set/*
log_sync makeroom-start
syncer_start
e4defrag -r /mnt/crowd/set > /tmp/out 2>&1
syncer_stop
log_sync makeroom-end
echo "== makeroom: $(grep "discontinuities" /tmp/out)"
lsattr /mnt/crowd/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i

# 6. ENOSPC in the middle of a move: a file of 300 one-block extents, and
#    free space for exactly its copy, taken from the middle of a fill so
#    that it is one or two runs (the donor's extents fit into its inode).
#    The plan succeeds; moving a page per step gives the donor one old
#    block per step, each an extent of its own, so after a few steps its
#    extent tree needs a leaf block and there is none: ext4_move_extents
#    fails with ENOSPC after some blocks moved. Checked: the tool says
#    the space ran out during the move and the file's first block did
#    move (else the phase did not test what it is for).
rm -rf /mnt/crowd
make_holey /mnt/nospc 300
echo 0 > "$sysfs/reserved_clusters"
n=$(fill_fs /mnt/filler)
data=$(filefrag -e /mnt/nospc | awk '$1 ~ /^[0-9]+:$/ { n += $6 } END { print n + 0 }')
# runs_of START: in how many physical runs fill files START.. (as many as
# the file has data blocks) lie. The fill follows the disk but where
# earlier phases' files sit: from the middle on, the first window of one
# or two runs (20 tries) is the one freed.
runs_of() {
	awk -v s="$1" -v n="$data" 'BEGIN { for (j = s; j < s + n; j++) print "/mnt/filler/" j }' |
		xargs filefrag -e 2>/dev/null | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }' |
		sort -n | awk 'NR > 1 && $1 != p + 1 { r++ } { p = $1 } END { print r + 1 }'
}
start=$((n / 2)) tries=0
while [ "$(runs_of $start)" -gt 2 ] && [ $tries -lt 20 ]; do
	start=$((start + data)) tries=$((tries + 1))
	[ $((start + data)) -le "$n" ] || start=0
done
echo "== nospc: fill files $start.. freed, in $(runs_of $start) runs ($tries windows skipped)"
i=$start
while [ $i -lt $((start + data)) ]; do rm /mnt/filler/$i; i=$((i + 1)); done
sync
# Exactly as many free blocks as the file has data: one more and the
# donor's tree would get its leaf.
while [ "$(stat -f -c %f /mnt)" -gt "$data" ] && echo > "/mnt/filler/x$i"; do
	i=$((i + 1))
	sync
done
was=$(first_pblk /mnt/nospc)
echo "== nospc: $(extent_count /mnt/nospc) extents, $data data blocks, $(stat -f -c %f /mnt) free blocks"
manifest nospc /mnt/victim /mnt/wb /mnt/nospc
log_sync nospc-start
syncer_start
e4defrag --unit-log2 0 --max-evacuate 0 /mnt/nospc > /tmp/out 2>&1
echo "== nospc: e4defrag exit $?: $(tail -1 /tmp/out)"
syncer_stop
log_sync nospc-end
now=$(first_pblk /mnt/nospc)
echo "== nospc: first block $was -> $now, $(extent_count /mnt/nospc) extents after"
if grep -q "ran out during the move (EXT4_IOC_DEFRAG: ENOSPC)" /tmp/out && [ "$now" != "$was" ]; then
	pass powercut_enospc_mid_move
else
	fail powercut_enospc_mid_move "first block $was -> $now: $(tail -1 /tmp/out)"
fi
rm -rf /mnt/filler

# 7. Fast commit: an fsync may be served by a fast commit, which logs an
#    inode, not the extent swap a move made. With each backend a file of
#    8 extents is moved, then its first block is overwritten and fsync'd
#    while the swap's transaction is still running (commit=60, nothing
#    else syncs). Up to the fsync's return (phase fc-B-move) the file may
#    hold its old or its new content; from then on (fc-B-fsynced: its
#    start mark, no sync before it, and the fast commits of another
#    file's fsyncs) only the new. The module's moves are ineligible in
#    the kernel (patch 0008); on a stock kernel's EXT4_IOC_MOVE_EXT the
#    tool commits each move itself.
umount /mnt
mkfs.ext4 -q -F -b 4096 -N 4096 -O fast_commit -E nodiscard "$DEV" 64M &&
	mount -t ext4 -o commit=60 "$DEV" /mnt ||
	{ fail powercut_fc_mkfs "mkfs -O fast_commit or mount failed"; exit 0; }
fc_info=/proc/fs/ext4/$(basename "$DEV")/fc_info
mark() { dmsetup message lw 0 mark "$1" || fail "powercut_mark_$1" "dmsetup message"; }
moves_ineligible() { awk -F'\t' '/^"Move extents"/ { print $2 }' "$fc_info"; }
for b in module move-ext; do
	f=/mnt/fc-$b
	make_fragmented "$f" 8
	dd if=/dev/urandom of=/tmp/block bs=4096 count=1 2>/dev/null
	cp "$f" /tmp/new
	dd if=/tmp/block of=/tmp/new bs=4096 count=1 conv=notrunc 2>/dev/null
	echo "E4D-MANIFEST: fc-$b-move ${f#/mnt/} $(sha "$f") $(sha /tmp/new)"
	echo "E4D-MANIFEST: fc-$b-fsynced ${f#/mnt/} $(sha /tmp/new)"
	was=$(extent_count "$f") marked=$(moves_ineligible)
	log_sync "fc-$b-move-start"
	e4defrag --backend "$b" "$f" > /tmp/out 2>&1 || { echo "== fc-$b:"; cat /tmp/out; }
	dd if=/tmp/block of="$f" bs=4096 count=1 conv=notrunc,fsync 2>/dev/null
	mark "fc-$b-move-end"
	mark "fc-$b-fsynced-start"
	for i in 1 2 3; do
		dd if=/dev/urandom of=/mnt/fc-other bs=4096 count=1 conv=fsync 2>/dev/null
	done
	mark "fc-$b-fsynced-end"
	now=$(extent_count "$f")
	echo "== fc-$b: $was -> $now extents; fc_info: $(head -3 "$fc_info" | tail -2 | tr '\n' ' ')"
	# Else the phase tests nothing.
	if [ "$now" -lt "$was" ]; then pass "powercut_fc_${b}_moved"; else
		fail "powercut_fc_${b}_moved" "$was -> $now extents: $(tail -1 /tmp/out)"; fi
	# The module's swaps say why the fsync was a full commit.
	if [ "$b" = module ]; then
		if [ "$(moves_ineligible)" -gt "$marked" ]; then pass powercut_fc_module_ineligible
		else fail powercut_fc_module_ineligible "fc_info: \"Move extents\" stays $marked"; fi
	fi
	sync
done

umount /mnt || fail powercut_umount "umount failed"
dmsetup remove lw || fail powercut_dm_remove "dmsetup remove failed"
check_kernel_log powercut_kernel_log_clean
# The host checks the log once this boot has ended.
echo "E4D-POWERCUT-LOGGED"
