#!/bin/sh
# Deep extent trees: moved into a shallow one (4 KiB and 1 KiB blocks,
# a sparse file, more tree blocks than one shrink pass handled).
# Run in the guest by init (after test-10-fibmap.sh, which leaves the
# module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

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
make_holey /mnt/deep 4000
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
