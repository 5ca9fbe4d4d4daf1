#!/bin/sh
# EXT4_IOC_DEFRAG on one fragmented file: the move, its data under a
# reader and a writer, dry runs, goals, permissions, refusals by file flag,
# holes and unwritten extents.
# Run in the guest by init (after test-10-fibmap.sh, which leaves the
# module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

echo "== defrag: a fragmented file"
fresh_fs || { fail defrag_mkfs "mkfs or mount failed"; exit 0; }
make_fragmented /mnt/frag 200
sum=$(sha /mnt/frag) before=$(extent_count /mnt/frag)
out=$(e4defrag /mnt/frag 2>&1)
echo "== $out"
after=$(extent_count /mnt/frag)
[ "$(sha /mnt/frag)" = "$sum" ] && pass defrag_data_intact || fail defrag_data_intact "checksum changed"
[ "$before" -ge 100 ] && [ "$after" -eq 1 ] && pass defrag_to_one_extent ||
	fail defrag_to_one_extent "$before -> $after extents"
echo "$out" | grep -q "extents $before -> 1, moved 200 blocks" && pass defrag_reports_counts ||
	fail defrag_reports_counts "$out"
out=$(e4defrag /mnt/frag 2>&1)
echo "$out" | grep -q "extents 1 -> 1, moved 0 blocks" && pass defrag_nothing_to_gain ||
	fail defrag_nothing_to_gain "$out"

echo "== defrag: a reader and a writer at the same time"
make_fragmented /mnt/busy 400
dd if=/dev/urandom of=/tmp/pattern bs=4096 count=50 2>/dev/null
cp /mnt/busy /tmp/expected
dd if=/tmp/pattern of=/tmp/expected bs=4096 conv=notrunc 2>/dev/null
tail_sum=$(dd if=/mnt/busy bs=4096 skip=50 2>/dev/null | sha256sum)
(
	bad=0 i=0
	while [ $i -lt 40 ]; do
		[ "$(dd if=/mnt/busy bs=4096 skip=50 2>/dev/null | sha256sum)" = "$tail_sum" ] || bad=$((bad + 1))
		i=$((i + 1))
	done
	echo $bad > /tmp/reader.bad
) &
reader=$!
(
	i=0
	while [ $i -lt 20 ]; do
		dd if=/tmp/pattern of=/mnt/busy bs=4096 conv=notrunc 2>/dev/null
		i=$((i + 1))
	done
) &
writer=$!
e4defrag --unit-log2 0 /mnt/busy > /tmp/out 2>&1
rc=$?
wait $reader $writer
sync
echo 3 > /proc/sys/vm/drop_caches
echo "== busy: $(cat /tmp/out); reader saw $(cat /tmp/reader.bad) bad reads"
if [ $rc -ne 0 ]; then
	fail defrag_with_reader_and_writer "$(cat /tmp/out)"
elif [ "$(cat /tmp/reader.bad)" != 0 ]; then
	fail defrag_with_reader_and_writer "the reader saw changed data $(cat /tmp/reader.bad) times"
elif [ "$(sha /mnt/busy)" != "$(sha /tmp/expected)" ]; then
	fail defrag_with_reader_and_writer "the file is not what was written"
else
	pass defrag_with_reader_and_writer
fi

echo "== defrag: dry run"
make_fragmented /mnt/dry 64
sum=$(sha /mnt/dry) before=$(extent_count /mnt/dry)
out=$(e4defrag --dry-run /mnt/dry 2>&1)
if echo "$out" | grep -q "extents $before -> 1, would move 64 blocks" &&
	[ "$(extent_count /mnt/dry)" = "$before" ] && [ "$(sha /mnt/dry)" = "$sum" ]; then
	pass defrag_dry_run_moves_nothing
else
	fail defrag_dry_run_moves_nothing "$out; now $(extent_count /mnt/dry) extents"
fi

echo "== defrag: goal"
dd if=/dev/urandom of=/mnt/placed bs=4096 count=64 2>/dev/null
sync
sum=$(sha /mnt/placed)
goal=50000
e4defrag --goal $goal /mnt/placed > /tmp/out 2>&1
first=$(first_pblk /mnt/placed)
echo "== placed at $first for goal $goal: $(cat /tmp/out)"
dist=$((first - goal))
[ $dist -lt 0 ] && dist=$((-dist))
echo "== goal distance: $dist blocks"
# The region at the goal is free: the data starts at the goal exactly.
if [ $dist -eq 0 ] && [ "$(sha /mnt/placed)" = "$sum" ]; then
	pass defrag_goal_exact
else
	fail defrag_goal_exact "first block $first, goal $goal: $(cat /tmp/out)"
fi
# The filesystem's last block as the goal: the nearest free run that
# holds the file, never EINVAL (fraggen expect applies the contract to
# GETFSMAP's free extents).
last=$(( $(debugfs -R stats "$DEV" 2>/dev/null | awk '/^Block count:/ { print $3 }') - 1 ))
set -- $(fraggen expect /mnt/placed $last)
if e4defrag --goal $last /mnt/placed > /tmp/out 2>&1 &&
	[ "$(first_pblk /mnt/placed)" = "$2" ] && [ "$(sha /mnt/placed)" = "$sum" ]; then
	pass defrag_goal_last_block
else
	fail defrag_goal_last_block "goal $last: expected $2, at $(first_pblk /mnt/placed): $(cat /tmp/out)"
fi
expect_refused goal_outside_fs_einval EINVAL /mnt/placed --goal 99999999
# A move unit over EXT4_DEFRAG_UNIT_MAX: the kernel refuses it (the call
# made directly), and the tool before it (exit 2, the file untouched).
sum=$(sha /mnt/placed) ext=$(extent_count /mnt/placed)
r=$(fraggen defrag-unit /mnt/placed 13)
e4defrag --unit-log2 13 /mnt/placed > /tmp/out 2>&1
rc=$?
if [ "$r" = EINVAL ] && [ $rc -eq 2 ] && grep -q "13 is not in 0..=12" /tmp/out &&
	[ "$(sha /mnt/placed)" = "$sum" ] && [ "$(extent_count /mnt/placed)" = "$ext" ]; then
	pass move_unit_too_big_einval
else
	fail move_unit_too_big_einval "kernel: $r; tool: exit $rc, $(cat /tmp/out)"
fi

echo "== defrag: unprivileged"
chmod 777 /mnt
make_fragmented /mnt/users 32
chown 1000:1000 /mnt/users
sum=$(sha /mnt/users)
RUNNER=as_user expect_refused user_goal_eperm EPERM /mnt/users --goal 40000
RUNNER=
as_user e4defrag /mnt/users > /tmp/out 2>&1
[ "$(extent_count /mnt/users)" -eq 1 ] && [ "$(sha /mnt/users)" = "$sum" ] &&
	pass user_defrag_without_goal || fail user_defrag_without_goal "$(cat /tmp/out)"

echo "== defrag: refusals"
# Files no run can move: failures with --strict, else skipped (exit 0,
# the file listed with the reason and untouched).
make_fragmented /mnt/locked 16
chattr +i /mnt/locked
expect_refused immutable_strict immutable /mnt/locked --strict
sum=$(sha /mnt/locked) ext=$(extent_count /mnt/locked)
if e4defrag /mnt/locked > /tmp/out 2>&1 && grep -q "skipped (immutable" /tmp/out &&
	[ "$(sha /mnt/locked)" = "$sum" ] && [ "$(extent_count /mnt/locked)" = "$ext" ]; then
	pass immutable_skipped
else
	fail immutable_skipped "$(cat /tmp/out)"
fi
chattr -i /mnt/locked
chattr +a /mnt/locked
expect_refused append_only_strict append-only /mnt/locked --strict
chattr -a /mnt/locked

echo "== defrag: holes and unwritten extents"
make_fragmented /mnt/sparse 40
dd if=/dev/urandom of=/mnt/sparse bs=4096 count=40 seek=100 conv=notrunc 2>/dev/null
fallocate -o $((200 * 4096)) -l $((50 * 4096)) /mnt/sparse
sync
sum=$(sha /mnt/sparse)
e4defrag /mnt/sparse > /tmp/out 2>&1
holes=$(tool_map module /mnt/sparse 40 99 | grep -c " hole$")
unwritten=$(tool_map module /mnt/sparse 200 249 | grep -c " unwritten$")
if [ "$(sha /mnt/sparse)" = "$sum" ] && [ "$holes" -eq 2 ] && [ "$unwritten" -eq 2 ]; then
	pass defrag_keeps_holes_and_unwritten
else
	fail defrag_keeps_holes_and_unwritten "holes $holes unwritten $unwritten: $(cat /tmp/out)"
fi
echo "== sparse: $(cat /tmp/out), now $(extent_count /mnt/sparse) extents"
[ "$(extent_count /mnt/sparse)" -le 3 ] && pass defrag_sparse_extents ||
	fail defrag_sparse_extents "$(extent_count /mnt/sparse) extents left"
fsck_ok e2fsck_clean_after_defrag
