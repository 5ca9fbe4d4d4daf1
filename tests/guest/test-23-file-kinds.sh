#!/bin/sh
# What is refused and what is moved by kind of file and filesystem:
# block-mapped files, inline data, data=journal, no journal, bigalloc,
# data=writeback, fast commits, nodelalloc.
# Run in the guest by init (after test-10-fibmap.sh, which leaves the
# module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

echo "== defrag: block-mapped file"
fresh_fs -O ^extent,^64bit,^flex_bg || { fail indirect_mkfs "mkfs failed"; exit 0; }
dd if=/dev/urandom of=/mnt/old bs=4096 count=16 2>/dev/null
# The module refuses it (the call made directly); the tool does not ask:
# it skips the file (exit 0, the reason given), a failure with --strict.
r=$(fraggen defrag-unit /mnt/old 11)
[ "$r" = EOPNOTSUPP ] && pass block_mapped_eopnotsupp || fail block_mapped_eopnotsupp "module: $r"
expect_refused block_mapped_strict block-mapped /mnt/old --strict
if e4defrag /mnt/old > /tmp/out 2>&1 && grep -q "skipped (block-mapped" /tmp/out; then
	pass block_mapped_skipped
else
	fail block_mapped_skipped "$(cat /tmp/out)"
fi
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
