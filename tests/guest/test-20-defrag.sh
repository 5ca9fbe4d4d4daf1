#!/bin/sh
# EXT4_IOC_DEFRAG scenarios, run in the guest by init after test-10-fibmap.sh
# (which leaves the module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

# fresh_fs [MKE2FS OPTIONS]: a new ext4 on $DEV mounted at /mnt, of
# $FS_SIZE (mke2fs syntax) or the whole disk.
fresh_fs() {
	umount /mnt 2>/dev/null
	# shellcheck disable=SC2086
	mkfs.ext4 -q -F -b 4096 "$@" "$DEV" $FS_SIZE && mount -t ext4 "$DEV" /mnt
}

# as_user CMD...: run CMD as the unprivileged user 1000.
as_user() { su user -c "$*"; }

# expect_refused NAME ERRNO FILE [E4DEFRAG ARGS]: the defrag (run through
# $RUNNER, if set) fails with ERRNO and leaves FILE's data and extents as
# they were.
expect_refused() {
	name=$1 errno=$2 file=$3
	shift 3
	sum=$(sha "$file") ext=$(extent_count "$file")
	if $RUNNER e4defrag "$@" "$file" > /tmp/out 2>&1; then
		fail "$name" "succeeded: $(cat /tmp/out)"
	elif ! grep -q "$errno" /tmp/out; then
		fail "$name" "wanted $errno: $(cat /tmp/out)"
	elif [ "$(sha "$file")" != "$sum" ] || [ "$(extent_count "$file")" != "$ext" ]; then
		fail "$name" "the file changed"
	else
		pass "$name"
	fi
}

# group1_first_free: the first free block of group 1 of $DEV, as the
# on-disk bitmap says (dumpe2fs).
group1_first_free() {
	dumpe2fs "$DEV" 2>/dev/null | awk '/^Group 1:/ { g = 1 } g && /Free blocks: [0-9]/ {
	sub(/-.*/, "", $3); print $3; exit }'
}

# data_runs FILE: FILE's data blocks in file order, as "first-last" runs.
data_runs() { filefrag -e "$1" | awk -F'[:.]+' '/^ *[0-9]+: / { printf "%d-%d ", $4, $5 }'; }

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

echo "== defrag: a lent donor (EXT4_DEFRAG_DONOR_FD)"
make_fragmented /mnt/lent 64
sum=$(sha /mnt/lent) ext=$(extent_count /mnt/lent)
touch /mnt/linked
unchanged() { [ "$(sha /mnt/lent)" = "$sum" ] && [ "$(extent_count /mnt/lent)" = "$ext" ]; }
r=$(fraggen defrag-lent /mnt/lent /mnt/linked)
[ "$r" = EINVAL ] && unchanged && pass lent_donor_linked_einval ||
	fail lent_donor_linked_einval "$r"
r=$(fraggen defrag-lent /mnt/lent tmpfile-prealloc)
# (Its 64 KiB preallocated past its end stay: the caller's.)
[ "$r" = "EINVAL held 65536" ] && unchanged && pass lent_donor_blocks_past_end_einval ||
	fail lent_donor_blocks_past_end_einval "$r"
# A lent donor gets the checks a made one gets, before anything is
# allocated in it: set-user-ID refused with EINVAL, the donor holding
# nothing (before this round: planned blocks allocated, then EINVAL from
# ext4's move, and the blocks kept in the donor).
r=$(fraggen defrag-lent /mnt/lent tmpfile-setuid)
[ "$r" = "EINVAL held 0" ] && unchanged && pass lent_donor_setuid_einval_nothing_allocated ||
	fail lent_donor_setuid_einval_nothing_allocated "$r"
# A donor with data of its own: the file's blocks go past its end, and
# it keeps the old ones (until closed) next to its 4 KiB, untouched.
r=$(fraggen defrag-lent /mnt/lent tmpfile-data)
echo "== lent donor: $r, extents $ext -> $(extent_count /mnt/lent)"
echo 3 > /proc/sys/vm/drop_caches
[ "$r" = "ok $((64 * 4096 + 4096)) intact" ] && [ "$(extent_count /mnt/lent)" -eq 1 ] &&
	[ "$(sha /mnt/lent)" = "$sum" ] &&
	pass lent_donor_used_and_kept || fail lent_donor_used_and_kept "$r"
fsck_ok e2fsck_clean_after_lent_donor
mount -t ext4 "$DEV" /mnt || { fail lent_donor_remount "mount failed"; exit 0; }

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
make_fragmented /mnt/locked 16
chattr +i /mnt/locked
expect_refused immutable_eperm EPERM /mnt/locked
chattr -i /mnt/locked
chattr +a /mnt/locked
expect_refused append_only_eperm EPERM /mnt/locked
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

echo "== defrag: deep extent tree"
FS_SIZE=64M fresh_fs -N 16384 || { fail deep_mkfs "mkfs failed"; exit 0; }
make_holey /mnt/deep 2500
before=$(extent_count /mnt/deep) depth=$(extent_depth /deep)
echo "== deep: $before extents, depth $depth"
[ "$before" -ge 1000 ] && [ "$depth" -ge 2 ] && pass deep_setup ||
	fail deep_setup "$before extents, depth $depth"
sum=$(sha /mnt/deep)
e4defrag /mnt/deep > /tmp/out 2>&1
sync
after=$(extent_count /mnt/deep) depth=$(extent_depth /deep)
echo "== deep: $(cat /tmp/out), depth $depth"
if [ "$(sha /mnt/deep)" = "$sum" ] && [ "$after" -le 4 ] && [ "$depth" -eq 0 ]; then
	pass deep_tree_defragmented_shallow
else
	fail deep_tree_defragmented_shallow "$after extents, depth $depth: $(cat /tmp/out)"
fi
fsck_ok e2fsck_clean_after_deep

echo "== defrag: deep extent tree of a sparse file"
FS_SIZE=64M fresh_fs -N 16384 || { fail deep_mkfs "mkfs failed"; exit 0; }
make_holey /mnt/deep 2500 25
before=$(extent_count /mnt/deep) depth=$(extent_depth /deep)
sum=$(sha /mnt/deep)
e4defrag /mnt/deep > /tmp/out 2>&1
sync
after=$(extent_count /mnt/deep) depth_after=$(extent_depth /deep)
echo "== deep sparse: $before extents at depth $depth; $(cat /tmp/out), depth $depth_after"
# 100 stretches of data: 100 extents at best, one leaf block under the inode.
if [ "$(sha /mnt/deep)" = "$sum" ] && [ "$depth" -ge 2 ] && [ "$after" -le 100 ] &&
	[ "$depth_after" -eq 1 ]; then
	pass deep_sparse_tree_one_leaf
else
	fail deep_sparse_tree_one_leaf "$before -> $after extents, depth $depth -> $depth_after"
fi
fsck_ok e2fsck_clean_after_deep_sparse

# More tree blocks than the shrink handled before (32): 1 KiB blocks, a
# file written into 4000 one-block holes has about 48 leaves under an
# index block. After the move, all of them are freed (e2fsck would see
# any left over) and the extents go back into the inode.
echo "== defrag: deep extent tree of more than 32 tree blocks, 1 KiB blocks"
umount /mnt
mkfs.ext4 -q -F -b 1024 -I 128 -N 16384 "$DEV" 16M && mount -t ext4 "$DEV" /mnt ||
	{ fail deep_1k_mkfs "mkfs or mount failed"; exit 0; }
fill_fs /mnt/fill > /dev/null
awk 'BEGIN { for (i = 0; i < 8000; i += 2) print "/mnt/fill/" i }' | xargs rm -f
sync
dd if=/dev/urandom of=/mnt/deep bs=1024 count=4000 2>/dev/null
sync
rm -rf /mnt/fill
sync
# tree_blocks FILE: index and leaf blocks of FILE's extent tree (debugfs
# lists one line per entry; entries above the leaves point to them).
tree_blocks() {
	debugfs -c -R "ex $1" "$DEV" 2>/dev/null |
		awk 'NR > 1 { split($0, a, "/"); split(a[2], b, " "); if (a[1] + 0 < b[1] + 0) n++ }
			END { print n + 0 }'
}
before=$(extent_count /mnt/deep) depth=$(extent_depth /deep) tblocks=$(tree_blocks /deep)
sum=$(sha /mnt/deep)
free_before=$(df /mnt | awk 'NR == 2 { print $4 }')
e4defrag /mnt/deep > /tmp/out 2>&1
sync
after=$(extent_count /mnt/deep) depth_after=$(extent_depth /deep)
free_after=$(df /mnt | awk 'NR == 2 { print $4 }')
echo "== deep 1k: $before extents, depth $depth, $tblocks tree blocks; $(cat /tmp/out); depth $depth_after, free KiB $free_before -> $free_after"
if [ "$(sha /mnt/deep)" = "$sum" ] && [ "$tblocks" -gt 32 ] && [ "$after" -le 4 ] &&
	[ "$depth_after" -eq 0 ] && [ "$free_after" -ge $((free_before + tblocks)) ]; then
	pass deep_tree_over_32_blocks_shallow
else
	fail deep_tree_over_32_blocks_shallow "$before -> $after extents, depth $depth -> $depth_after, $tblocks tree blocks, free $free_before -> $free_after"
fi
fsck_ok e2fsck_clean_after_deep_1k

echo "== defrag: not enough free space"
fresh_fs || { fail nospace_mkfs "mkfs failed"; exit 0; }
make_fragmented /mnt/big 200
dd if=/dev/zero of=/mnt/fill bs=1M 2>/dev/null
fill_fs /mnt/tiny > /dev/null 2>&1
sync
free_before=$(df /mnt | awk 'NR == 2 { print $4 }')
# The kernel answers ENOSPC before it moves anything; the tool reports
# the file as skipped for that reason (no room is not a failure of the
# file) and leaves it as it was.
sum=$(sha /mnt/big) ext=$(extent_count /mnt/big)
if e4defrag -v /mnt/big > /tmp/out 2>&1 && grep -q "skipped.*ENOSPC" /tmp/out &&
	[ "$(sha /mnt/big)" = "$sum" ] && [ "$(extent_count /mnt/big)" = "$ext" ]; then
	pass no_space_enospc
else
	fail no_space_enospc "$(cat /tmp/out)"
fi
expect_refused no_space_goal_only_enospc ENOSPC /mnt/big --goal 2000 --goal-only
sync
free_after=$(df /mnt | awk 'NR == 2 { print $4 }')
[ "$free_before" = "$free_after" ] && pass no_space_nothing_leaked ||
	fail no_space_nothing_leaked "free blocks $free_before -> $free_after"
fsck_ok e2fsck_clean_after_enospc

echo "== defrag: block-mapped file"
fresh_fs -O ^extent,^64bit,^flex_bg || { fail indirect_mkfs "mkfs failed"; exit 0; }
dd if=/dev/urandom of=/mnt/old bs=4096 count=16 2>/dev/null
expect_refused block_mapped_eopnotsupp EOPNOTSUPP /mnt/old
fsck_ok e2fsck_clean_after_refusals

echo "== defrag: inline data"
fresh_fs -O inline_data || { fail inline_mkfs "mkfs failed"; exit 0; }
echo "a few bytes, kept in the inode" > /mnt/inline
# The module refuses it; the tool does not ask (nothing to move).
sum=$(sha /mnt/inline)
r=$(fraggen defrag-lent /mnt/inline none)
[ "$r" = EOPNOTSUPP ] && [ "$(sha /mnt/inline)" = "$sum" ] && pass inline_data_eopnotsupp ||
	fail inline_data_eopnotsupp "$r"
out=$(e4defrag -v /mnt/inline 2>&1) && echo "$out" | grep -q "skipped (inline data" &&
	pass inline_data_skipped_by_the_tool || fail inline_data_skipped_by_the_tool "$out"
fsck_ok e2fsck_clean_after_inline

# (chattr +j alone is no refusal: with delayed allocation on, ext4 keeps
# such a file in ordered mode, and so does EXT4_IOC_MOVE_EXT.)
echo "== defrag: data=journal"
umount /mnt
mkfs.ext4 -q -F -b 4096 "$DEV" && mount -t ext4 -o data=journal "$DEV" /mnt ||
	{ fail journal_mkfs "mkfs or mount failed"; exit 0; }
make_fragmented /mnt/journaled 16
expect_refused data_journal_eopnotsupp EOPNOTSUPP /mnt/journaled
fsck_ok e2fsck_clean_after_data_journal

# Without a journal nothing orders the moves against a crash (a file could
# come back mapping freed and reused blocks): refused. bigalloc: refused.
# data=writeback (whose crash safety tests/guest/powercut.sh proves),
# fast commits and nodelalloc: moved, data intact, e2fsck clean.
echo "== defrag: mount options"
umount /mnt 2>/dev/null
if mkfs.ext4 -q -F -b 4096 -O ^has_journal "$DEV" && mount -t ext4 "$DEV" /mnt; then
	make_fragmented /mnt/nojournal 16
	expect_refused no_journal_eopnotsupp EOPNOTSUPP /mnt/nojournal
	fsck_ok e2fsck_clean_after_no_journal
else
	fail no_journal_mkfs "mkfs or mount failed"
fi
umount /mnt 2>/dev/null
if mkfs.ext4 -q -F -b 4096 -O bigalloc -C 16384 "$DEV" 2>/dev/null && mount -t ext4 "$DEV" /mnt; then
	dd if=/dev/urandom of=/mnt/big bs=4096 count=64 2>/dev/null
	sync
	expect_refused bigalloc_eopnotsupp EOPNOTSUPP /mnt/big
	fsck_ok e2fsck_clean_after_bigalloc
else
	fail bigalloc_mkfs "mkfs or mount failed"
fi
for case in "writeback::data=writeback" "fast_commit:-O fast_commit:" "nodelalloc::nodelalloc"; do
	name=${case%%:*} rest=${case#*:}
	mkfs_opts=${rest%%:*} mount_opts=${rest#*:}
	umount /mnt 2>/dev/null
	# shellcheck disable=SC2086
	if ! mkfs.ext4 -q -F -b 4096 $mkfs_opts "$DEV" ||
		! mount -t ext4 ${mount_opts:+-o $mount_opts} "$DEV" /mnt; then
		fail "${name}_mkfs" "mkfs or mount failed"
		continue
	fi
	make_fragmented /mnt/f 48
	sum=$(sha /mnt/f) before=$(extent_count /mnt/f)
	out=$(e4defrag /mnt/f 2>&1)
	after=$(extent_count /mnt/f)
	echo 3 > /proc/sys/vm/drop_caches
	if [ "$(sha /mnt/f)" != "$sum" ]; then
		fail "defrag_${name}" "data changed"
	elif [ "$after" -ne 1 ]; then
		fail "defrag_${name}" "$before -> $after extents: $out"
	else
		pass "defrag_${name}"
	fi
	fsck_ok "e2fsck_clean_after_${name}"
done

# The donor is made in the file's directory and inherited its flags: with
# nodelalloc, a directory's data journaling (chattr +j) made
# ext4_move_extents() refuse the donor (EOPNOTSUPP) though the file, made
# before the flag, is not journaled. The donor drops those flags now.
echo "== defrag: the donor's directory journals data (chattr +j)"
umount /mnt 2>/dev/null
if mkfs.ext4 -q -F -b 4096 "$DEV" && mount -t ext4 -o nodelalloc "$DEV" /mnt; then
	mkdir /mnt/j
	make_fragmented /mnt/j/f 24
	chattr +j /mnt/j
	sum=$(sha /mnt/j/f) before=$(extent_count /mnt/j/f)
	out=$(e4defrag /mnt/j/f 2>&1)
	if [ "$(sha /mnt/j/f)" != "$sum" ]; then
		fail donor_drops_inherited_journal_flag "data changed"
	elif [ "$(extent_count /mnt/j/f)" -ne 1 ]; then
		fail donor_drops_inherited_journal_flag "$before -> $(extent_count /mnt/j/f): $out"
	else
		pass donor_drops_inherited_journal_flag
	fi
	# A donor lent from the same directory journals its data (inherited):
	# refused with EOPNOTSUPP before anything is allocated in it (ext4's
	# move refused it too, after the allocation).
	make_fragmented /mnt/j/g 8
	chattr -j /mnt/j/g
	r=$(fraggen defrag-lent /mnt/j/g tmpfile)
	[ "$r" = "EOPNOTSUPP held 0" ] && pass lent_donor_journal_data_eopnotsupp ||
		fail lent_donor_journal_data_eopnotsupp "$r"
	# A file reopened by handle after the dentry cache was dropped has a
	# disconnected dentry, its own parent: the donor goes to the mount's
	# root directory (it failed with EACCES: a regular file as directory).
	# (Outside /mnt/j: a file made there now journals its data itself.)
	make_fragmented /mnt/h 24
	before=$(extent_count /mnt/h) sum=$(sha /mnt/h)
	out=$(fraggen defrag-by-handle /mnt/h)
	if [ "$out" = "ok $before -> 1" ] && [ "$(sha /mnt/h)" = "$sum" ]; then
		pass defrag_by_handle_disconnected_dentry
	else
		fail defrag_by_handle_disconnected_dentry "$out"
	fi
	# A single-file bind mount: the file is its mount's root, whose
	# parent lies outside the mount. No donor there: EXDEV, the file
	# untouched (before the fix the donor was made in /mnt, a directory
	# the caller may not reach through that mount).
	make_fragmented /mnt/bm 8
	before=$(extent_count /mnt/bm) sum=$(sha /mnt/bm)
	touch /tmp/bm && mount --bind /mnt/bm /tmp/bm
	out=$(e4defrag --backend module /tmp/bm 2>&1)
	umount /tmp/bm
	if echo "$out" | grep -q "EXDEV.*single-file bind mount" &&
		[ "$(extent_count /mnt/bm)" = "$before" ] && [ "$(sha /mnt/bm)" = "$sum" ]; then
		pass donor_refused_for_a_single_file_bind_mount
	else
		fail donor_refused_for_a_single_file_bind_mount "$out"
	fi
	# The same calls from a 32-bit program, through ext4's compat_ioctl.
	make_fragmented /mnt/c 24
	before=$(extent_count /mnt/c) sum=$(sha /mnt/c) pblk=$(first_pblk /mnt/c)
	out=$(compat32 /mnt/c)
	echo "== compat32: $(echo "$out" | tr '\n' ' ')"
	if [ "$(echo "$out" | head -1)" != "fibmap $pblk 1" ]; then
		fail compat_ioctl_fibmap "$out (want fibmap $pblk 1)"
	else
		pass compat_ioctl_fibmap
	fi
	if ! echo "$out" | grep -qx "defrag [0-9]* $before 1" || [ "$(sha /mnt/c)" != "$sum" ]; then
		fail compat_ioctl_defrag "$out"
	else
		pass compat_ioctl_defrag
	fi
	fsck_ok e2fsck_clean_after_donor_flags
else
	fail donor_flags_mkfs "mkfs or mount failed"
fi

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

# Blocks freed in the running transaction reach the allocator only at its
# commit: a defrag that needs them commits once and plans again, as
# fallocate does (it failed with ENOSPC before).
echo "== defrag: space freed just before the call"
umount /mnt 2>/dev/null
if mkfs.ext4 -q -F -b 4096 "$DEV" 32M && mount -t ext4 -o commit=60 "$DEV" /mnt; then
	echo 0 > /sys/fs/ext4/vda/reserved_clusters
	make_fragmented /mnt/f 48
	dd if=/dev/zero of=/mnt/hog bs=4096 2>/dev/null
	sync
	sum=$(sha /mnt/f) before=$(extent_count /mnt/f)
	free=$(df /mnt | awk 'NR == 2 { print $4 }')
	rm /mnt/hog
	out=$(fraggen defrag-lent /mnt/f none)
	echo "== ${free} KiB free before the rm: $out"
	if [ "$(sha /mnt/f)" != "$sum" ]; then
		fail defrag_after_free_commits_and_retries "data changed"
	elif [ "$out" != "ok $before -> 1" ]; then
		fail defrag_after_free_commits_and_retries "$out"
	else
		pass defrag_after_free_commits_and_retries
	fi
	fsck_ok e2fsck_clean_after_retry
else
	fail retry_mkfs "mkfs or mount failed"
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

# GOAL_ONLY means the data in the planned run at the goal, or ENOSPC and
# the file untouched: no plan after the first. Six two-block stretches
# between holes give the donor six extents: the fifth needs an
# extent-tree block, which ext4 puts at the first free block of the
# goal's group: here the goal itself is that block (group 1's first free
# one, after the journal), so the tree block lands in the planned run
# (before the fix: planned again elsewhere, and the call succeeded with
# the data out of the run). A failed call with a lent donor leaves the
# donor as it was: no blocks allocated for the call kept in it (before
# the fix: its size grown, the planned blocks held until it is closed).
echo "== defrag: GOAL_ONLY through a donor's extent-tree block, lent donor"
umount /mnt
mkfs.ext4 -q -F -b 4096 "$DEV" && mount -t ext4 -o nodelalloc "$DEV" /mnt ||
	{ fail goal_only_mkfs "mkfs or mount failed"; exit 0; }
fraggen stretches /mnt/gs 6
sync
sum=$(sha /mnt/gs) ext=$(extent_count /mnt/gs)
goal=$(group1_first_free)
r=$(fraggen defrag-lent /mnt/gs goal-only=$goal)
runs=$(data_runs /mnt/gs)
want_runs=$(awk -v g="$goal" 'BEGIN { for (i = 0; i < 6; i++) printf "%d-%d ", g + 2 * i, g + 2 * i + 1 }')
echo "== GOAL_ONLY at $goal: $r; data at $runs"
case $r in
"ok $goal") [ "$runs" = "$want_runs" ] && [ "$(sha /mnt/gs)" = "$sum" ] ;;
"ENOSPC held 0 size 0") [ "$(sha /mnt/gs)" = "$sum" ] && [ "$(extent_count /mnt/gs)" = "$ext" ] ;;
*) false ;;
esac && pass goal_only_in_the_run_or_enospc_untouched ||
	fail goal_only_in_the_run_or_enospc_untouched "$r; data at $runs, planned $want_runs"
fsck_ok e2fsck_clean_after_goal_only
mount -t ext4 -o nodelalloc "$DEV" /mnt || { fail goal_only_remount "mount failed"; exit 0; }

# A missed exact allocation takes no other writer's preallocation: the
# same GOAL_ONLY call as above, on a second such file, misses once (the
# donor's tree block), and before
# patch 0003 made goal-only requests exact, mballoc then discarded the
# filesystem's preallocations (here a locality group's, of a small file
# written just before) and tried again. ext4 counts discarded
# preallocated blocks in mb_stats.
echo "== defrag: a missed exact allocation discards no preallocation"
fraggen stretches /mnt/gs2 6
dd if=/dev/urandom of=/mnt/small bs=4096 count=1 conv=fsync 2>/dev/null
sync
goal=$(group1_first_free)
echo 1 > /sys/fs/ext4/vda/mb_stats
stat_of() { awk -v k="$1:" '$1 == k { print $2 }' /proc/fs/ext4/vda/mb_stats; }
pa=$(stat_of preallocated) d0=$(stat_of discarded)
r=$(fraggen defrag-lent /mnt/gs2 goal-only=$goal)
d1=$(stat_of discarded)
echo "== missed GOAL_ONLY: $r; preallocated $pa, discarded $d0 -> $d1"
if [ -n "$d0" ] && [ "${pa:-0}" -gt 0 ] && [ "$d1" = "$d0" ] && [ "${r%% *}" = ENOSPC ]; then
	pass missed_exact_allocation_discards_nothing
else
	fail missed_exact_allocation_discards_nothing "$r; preallocated $pa, discarded $d0 -> $d1"
fi

# GOAL_ONLY while another writer takes blocks at the goal: an fallocate
# loop extends a 1 MiB file whose last block is just before the goal, so
# that ext4 gives it the goal's blocks one by one. Each round ends with the
# data in one run from the goal, or ENOSPC and the file as it was.
echo "== defrag: GOAL_ONLY while an fallocate loop takes the goal's blocks"
make_fragmented /mnt/gr 32
at=0 refused=0 bad=""
for round in 1 2 3 4; do
	rm -f /mnt/taker
	/usr/sbin/fallocate -l 1M /mnt/taker
	g=$(filefrag -e /mnt/taker | awk -F'[:.]+' '/^ *[0-9]+: / { e = $5 } END { print e + 1 }')
	sum=$(sha /mnt/gr) ext=$(extent_count /mnt/gr)
	(i=1; while [ $i -lt 200 ]; do
		/usr/sbin/fallocate -o $(((255 + i) * 4096)) -l 4096 /mnt/taker || break
		i=$((i + 1)); done) &
	taker=$!
	r=$(fraggen defrag-lent /mnt/gr goal-only=$g)
	wait $taker
	runs=$(data_runs /mnt/gr)
	case $r in
	"ok $g") [ "$runs" = "$g-$((g + 31)) " ] && [ "$(sha /mnt/gr)" = "$sum" ] &&
		at=$((at + 1)) || bad="$bad round $round: $r, data at $runs;" ;;
	"ENOSPC held 0 size 0") [ "$(sha /mnt/gr)" = "$sum" ] && [ "$(extent_count /mnt/gr)" = "$ext" ] &&
		refused=$((refused + 1)) || bad="$bad round $round: $r, the file changed;" ;;
	*) bad="$bad round $round: $r;" ;;
	esac
done
echo "== GOAL_ONLY against an fallocate loop: $at at the goal, $refused ENOSPC"
[ -z "$bad" ] && pass goal_only_against_fallocate_at_goal_or_enospc ||
	fail goal_only_against_fallocate_at_goal_or_enospc "$bad"
fsck_ok e2fsck_clean_after_goal_only_race
mount -t ext4 -o nodelalloc "$DEV" /mnt || { fail goal_only_remount "mount failed"; exit 0; }

# On a RAID-geometry filesystem (s_stripe 16) mballoc accepts a request of
# exactly 16 blocks only stripe-aligned; an exact goal request is not bent
# by that rule (before patch 0003 did so: ENOSPC at any unaligned goal,
# 16 re-plans for a plain goal).
echo "== defrag: a stripe-sized file at an unaligned goal (mke2fs -E stride=16,stripe_width=16)"
umount /mnt
mkfs.ext4 -q -F -b 4096 -E stride=16,stripe_width=16 "$DEV" &&
	mount -t ext4 -o nodelalloc "$DEV" /mnt || { fail stripe_mkfs "mkfs or mount failed"; exit 0; }
make_fragmented /mnt/st 16
sum=$(sha /mnt/st)
g=$(group1_first_free)
g=$(( (g / 16) * 16 + 32 + 5 ))
r=$(fraggen defrag-lent /mnt/st goal-only=$g)
echo "== stripe-sized file, GOAL_ONLY at $g (unaligned): $r"
[ "$r" = "ok $g" ] && [ "$(sha /mnt/st)" = "$sum" ] && [ "$(extent_count /mnt/st)" = 1 ] &&
	pass stripe_sized_file_at_unaligned_goal_only || fail stripe_sized_file_at_unaligned_goal_only "$r"
g=$((g + 64))
out=$(e4defrag --goal $g /mnt/st 2>&1)
echo "== stripe-sized file, --goal $g: $out; now at $(first_pblk /mnt/st)"
[ "$(first_pblk /mnt/st)" = "$g" ] && [ "$(sha /mnt/st)" = "$sum" ] &&
	pass stripe_sized_file_at_unaligned_goal || fail stripe_sized_file_at_unaligned_goal "$out"
fsck_ok e2fsck_clean_after_stripe
mount -t ext4 -o nodelalloc "$DEV" /mnt || { fail stripe_remount "mount failed"; exit 0; }

# A lent donor is claimed per donor for the call (patch 0009): a call
# through another donor runs beside it (before: one global flag, EBUSY);
# the same donor lent to a second call, EXT4_IOC_MOVE_EXT through it, or
# a defrag of the donor itself gets EBUSY; its owner truncating it meanwhile
# leaves the file whole. The long call moves 2000 two-block stretches (4000
# extents, a hole after each stretch) a page per step. A race in which
# the long call ended first proves nothing ("overlap no"): it runs again
# with a file twice as long, three times at most (on a loaded machine the
# second call's planning outlived 2000 stretches). Not "n": make_fragmented
# sets it.
echo "== defrag: lent donors claimed per donor"
for what in own-donor same-donor move-ext defrag-donor truncate; do
	len=2000 try=1
	while :; do
		rm -f /mnt/long /mnt/other
		fraggen stretches /mnt/long $len
		make_fragmented /mnt/other 16
		sl=$(sha /mnt/long) so=$(sha /mnt/other)
		echo "== long: $(extent_count /mnt/long) extents, other: $(extent_count /mnt/other)"
		r=$(fraggen donor-race /mnt/long /mnt/other $what)
		echo "== lent donor race, $what, $len stretches: $r"
		case $r in *"overlap yes") break ;; esac
		[ $try -lt 3 ] || break
		try=$((try + 1)) len=$((len * 2))
	done
	case $what in
	own-donor) want="long ok other ok overlap yes" ;;
	same-donor | move-ext | defrag-donor) want="long ok other EBUSY overlap yes" ;;
	truncate) want="other ok overlap yes" ;;
	esac
	case $r in *"$want") ok=1 ;; *) ok=0 ;; esac
	[ "$what" = truncate ] && case $r in "long ok "* | "long EINVAL "* | "long ENODATA "*) ;; *) ok=0 ;; esac
	[ $ok = 1 ] && [ "$(sha /mnt/long)" = "$sl" ] && [ "$(sha /mnt/other)" = "$so" ] &&
		pass "lent_donor_claim_$what" || fail "lent_donor_claim_$what" "$r (wanted ...$want)"
done
fsck_ok e2fsck_clean_after_donor_claims

# A goal-0 call plans from the bitmaps near the data, not from every
# group's: on a 64 GiB filesystem (512 groups, all free but the data's)
# one dry-run call may build the buddy bitmaps of a few groups only
# (ext4's mb_stats count them; before the outward search: every group).
echo "== defrag: a goal-0 call reads the bitmaps near the data only"
mkdir -p /mnt2
loop=$(losetup -f)
truncate -s 64G /mnt/sparse.img && losetup "$loop" /mnt/sparse.img &&
	mkfs.ext4 -q -F -b 4096 -J size=8 -E lazy_itable_init=1,nodiscard "$loop" &&
	mount -t ext4 -o nodelalloc "$loop" /mnt2 ||
	{ fail sparse64_mkfs "mkfs or mount of the 64 GiB image failed"; exit 0; }
fraggen stretches /mnt2/f 3
umount /mnt2
mount -t ext4 -o nodelalloc "$loop" /mnt2
loopdev=$(basename "$loop")
built() { awk '/buddies_generated/ { split($2, a, "/"); print a[1] }' "/proc/fs/ext4/$loopdev/mb_stats"; }
echo 1 > "/sys/fs/ext4/$loopdev/mb_stats"
b0=$(built)
out=$(e4defrag --dry-run /mnt2/f 2>&1)
b1=$(built)
groups=$(awk '/buddies_generated/ { split($2, a, "/"); print a[2] }' "/proc/fs/ext4/$loopdev/mb_stats")
echo "== one goal-0 dry run on 64 GiB: buddies built for $((b1 - b0)) of $groups groups; $out"
if [ -n "$b0" ] && [ $((b1 - b0)) -le 4 ] && echo "$out" | grep -q "would move"; then
	pass goal0_call_reads_bitmaps_near_the_data
else
	fail goal0_call_reads_bitmaps_near_the_data "$((b1 - b0)) of $groups groups: $out"
fi
umount /mnt2
losetup -d "$loop"
rm -f /mnt/sparse.img
fsck_ok e2fsck_clean_after_sparse64
