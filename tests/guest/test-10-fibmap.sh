#!/bin/sh
# End-to-end scenarios, run in the guest by init. Each prints one
# "E4D-RESULT: PASS|FAIL name" line for the host runner (tests/qemu.py).
. /bin/lib.sh
DEV=/dev/vda

# check_map NAME BACKEND FILE BLOCK...: the tool's answer through BACKEND
# equals filefrag's for every block.
check_map() {
	name=$1 backend=$2 file=$3
	shift 3
	if ! want=$(filefrag_map "$file" "$@"); then
		fail "$name" "filefrag -e $file failed"
		return
	fi
	got=$(tool_map "$backend" "$file" "$@")
	if [ -n "$want" ] && [ "$want" = "$got" ]; then
		pass "$name"
	else
		fail "$name" "$(printf 'filefrag: %s / e4defrag: %s' "$want" "$got" | tr '\n' ';' | cut -c1-400)"
	fi
}

# blocks_of FILE [EXTRA]: every logical block of FILE plus EXTRA beyond EOF.
blocks_of() {
	n=$(( ($(stat -c %s "$1") + 4095) / 4096 + ${2:-1} ))
	seq 0 $((n - 1))
}

echo "== making ext4 on $DEV"
mkfs.ext4 -q -F -b 4096 "$DEV" || { fail mkfs "mkfs.ext4 failed"; exit 0; }
mount -t ext4 "$DEV" /mnt || { fail mount "mount failed"; exit 0; }

echo "== making files"
echo hello > /mnt/small
dd if=/dev/urandom of=/mnt/big bs=1M count=8 2>/dev/null
for b in 0 100 101; do
	dd if=/dev/urandom of=/mnt/sparse bs=4096 count=1 seek=$b conv=notrunc 2>/dev/null
done
fallocate -l 1048576 /mnt/unwritten
dd if=/dev/urandom of=/mnt/unwritten bs=4096 count=1 seek=16 conv=notrunc 2>/dev/null
: > /mnt/empty
mkdir -p /mnt/dir/sub /mnt/bigdir
awk 'BEGIN { for (i = 0; i < 600; i++) printf "/mnt/bigdir/a-rather-long-file-name-%04d\n", i }' |
	xargs touch
sync
make_fragmented /mnt/frag 200
frag_extents=$(extent_count /mnt/frag)
echo "== /mnt/frag has $frag_extents extents"
if [ "$frag_extents" -ge 50 ]; then
	pass setup_fragmented_file
else
	fail setup_fragmented_file "only $frag_extents extents"
fi

echo "== without the module"
if e4defrag --map --backend module /mnt/small 2>/tmp/err; then
	fail enotty_without_module "the ioctl answered without the module"
elif grep -q ENOTTY /tmp/err; then
	pass enotty_without_module
else
	fail enotty_without_module "$(cat /tmp/err)"
fi
check_map auto_falls_back_to_fiemap auto /mnt/big 0 1 2047 2048
tool_map auto /mnt/small 0 >/dev/null
e4defrag --map /mnt/small | grep -q "(fiemap)$" &&
	pass auto_reports_fiemap_source || fail auto_reports_fiemap_source "$(e4defrag --map /mnt/small)"

echo "== loading the module"
if load_module; then
	pass module_loads
else
	fail module_loads "insmod failed"
	exit 0
fi
print_ktap

echo "== block query vs filefrag"
for backend in module fiemap; do
	check_map "${backend}_small" $backend /mnt/small 0 1
	check_map "${backend}_big" $backend /mnt/big 0 1 1000 2047 2048
	check_map "${backend}_sparse" $backend /mnt/sparse 0 1 50 99 100 101 102 1000
	check_map "${backend}_unwritten" $backend /mnt/unwritten 0 15 16 17 255 256
	check_map "${backend}_empty" $backend /mnt/empty 0 1
	# shellcheck disable=SC2046
	check_map "${backend}_fragmented_every_block" $backend /mnt/frag $(blocks_of /mnt/frag)
	check_map "${backend}_root_dir" $backend /mnt 0 1
	check_map "${backend}_dir" $backend /mnt/dir 0 1
	check_map "${backend}_subdir" $backend /mnt/dir/sub 0
	# shellcheck disable=SC2046
	check_map "${backend}_multiblock_dir" $backend /mnt/bigdir $(blocks_of /mnt/bigdir)
done
bigdir_blocks=$(blocks_of /mnt/bigdir 0 | wc -l)
[ "$bigdir_blocks" -ge 4 ] && pass setup_multiblock_dir ||
	fail setup_multiblock_dir "/mnt/bigdir has only $bigdir_blocks blocks"

echo "== dirty data is written back before answering"
dd if=/dev/urandom of=/mnt/fresh bs=4096 count=4 2>/dev/null
got=$(tool_map module /mnt/fresh 0)
case $got in
"0 0 "*) fail delalloc_written_back "module answered $got" ;;
*" mapped") check_map delalloc_written_back module /mnt/fresh 0 1 2 3 4 ;;
*) fail delalloc_written_back "module answered $got" ;;
esac

echo "== bad requests"
if e4defrag --map --backend module -b 4294967295 /mnt/small 2>/tmp/err; then
	fail block_out_of_range_einval "block 2^32-1 was answered"
else
	grep -q EINVAL /tmp/err && pass block_out_of_range_einval ||
		fail block_out_of_range_einval "$(cat /tmp/err)"
fi
check_map last_block_is_a_hole module /mnt/small 4294967294

echo "== rmmod and insmod race with a loop of queries"
# The queries run until the last cycle is done (at most 300): the ones
# after it raced nothing, and each costs a process start under TCG.
rm -f /tmp/cycles.done
(
	i=0
	while [ $i -lt 300 ] && [ ! -e /tmp/cycles.done ]; do
		e4defrag --map -b 0 /mnt/big >/dev/null 2>&1
		i=$((i + 1))
	done
	echo $i > /tmp/queries.count
) &
busy=0 cycles=0
while [ $cycles -lt 15 ]; do
	if rmmod ext4_defrag 2>/dev/null; then
		insmod $KO || break
	else
		busy=$((busy + 1))
	fi
	cycles=$((cycles + 1))
done
touch /tmp/cycles.done
wait
echo "== $cycles rmmod attempts, $busy refused, $(cat /tmp/queries.count) queries meanwhile"
lsmod | grep -q ext4_defrag || insmod $KO
check_map unload_while_in_use module /mnt/big 0 2047

echo "== rmmod is refused while a call is in flight"
# A query on a file with 64 MiB of dirty data spends its time writing it
# back inside the ioctl, holding the module; rmmod must fail meanwhile.
ok=0 round=0
while [ $ok -eq 0 ] && [ $round -lt 5 ]; do
	round=$((round + 1))
	refused=0
	rm -f /mnt/dirty
	dd if=/dev/zero of=/mnt/dirty bs=1M count=64 2>/dev/null
	e4defrag --map --backend module /mnt/dirty > /tmp/dirty.out 2>&1 &
	query=$!
	# Wait until the call holds the module (its reference count rises).
	i=0
	while [ "$(cat /sys/module/ext4_defrag/refcnt)" = 0 ] && kill -0 $query 2>/dev/null &&
		[ $i -lt 5000 ]; do
		i=$((i + 1))
	done
	while kill -0 $query 2>/dev/null; do
		if rmmod ext4_defrag 2>/dev/null; then
			insmod $KO
		else
			refused=$((refused + 1))
		fi
	done
	wait $query
	rc=$?
	echo "== round $round: rmmod refused $refused times; query: $(cat /tmp/dirty.out)"
	[ $refused -gt 0 ] && [ $rc -eq 0 ] && grep -q " mapped (module)$" /tmp/dirty.out && ok=1
done
if [ $ok -eq 1 ]; then
	pass rmmod_refused_during_call
else
	fail rmmod_refused_during_call "refused $refused times, query rc $rc: $(cat /tmp/dirty.out)"
fi
lsmod | grep -q ext4_defrag || insmod $KO

rmmod ext4_defrag
if e4defrag --map --backend module /mnt/small 2>/tmp/err; then
	fail enotty_after_unload "the ioctl answered after rmmod"
else
	grep -q ENOTTY /tmp/err && pass enotty_after_unload ||
		fail enotty_after_unload "$(cat /tmp/err)"
fi
insmod $KO && pass module_reloads || fail module_reloads "insmod failed"

umount /mnt
if e2fsck -fn "$DEV" > /tmp/fsck 2>&1; then
	pass e2fsck_clean
else
	fail e2fsck_clean "$(tail -5 /tmp/fsck | tr '\n' ';')"
fi

echo "== block-mapped (no extents) filesystem"
if mkfs.ext4 -q -F -b 4096 -O ^extent,^64bit,^flex_bg "$DEV" &&
	mount -t ext4 "$DEV" /mnt; then
	pass mkfs_block_mapped
	dd if=/dev/urandom of=/mnt/indirect bs=4096 count=64 2>/dev/null
	mkdir /mnt/d
	sync
	# shellcheck disable=SC2046
	check_map indirect_mapped_file module /mnt/indirect $(blocks_of /mnt/indirect)
	check_map indirect_mapped_dir module /mnt/d 0 1
	umount /mnt
	e2fsck -fn "$DEV" > /tmp/fsck 2>&1 && pass e2fsck_clean_block_mapped ||
		fail e2fsck_clean_block_mapped "$(tail -5 /tmp/fsck | tr '\n' ';')"
else
	fail mkfs_block_mapped "mkfs.ext4 -O ^extent or mount failed"
fi
