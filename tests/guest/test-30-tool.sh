#!/bin/sh
# e4defrag, the tool, with the module backend: the host tests'
# (tools/e4defrag/tests/host_ext4.rs) scenarios on the patched kernel.
# One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

fresh_fs() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F -b 4096 "$DEV" 128M && mount -t ext4 "$DEV" /mnt
}

# stamps FILE: atime, mtime and ctime in nanoseconds.
stamps() { stat -c '%X %Y %Z' "$1"; }

# discont DIR [ARGS]: read-order discontinuities e4defrag -c reports.
discont() {
	e4defrag -c "$@" | discontinuities
}

echo "== tool: fragmented files, module backend"
fresh_fs || { fail tool_mkfs "mkfs or mount failed"; exit 0; }
make_fragmented /mnt/a 64
make_fragmented /mnt/b 48
sums="$(sha /mnt/a) $(sha /mnt/b)"
times="$(stamps /mnt/a) $(stamps /mnt/b)"
ea=$(extent_count /mnt/a) eb=$(extent_count /mnt/b)
out=$(e4defrag --backend module /mnt/a /mnt/b 2>&1)
echo "== $out"
if [ "$(extent_count /mnt/a)" -eq 1 ] && [ "$(extent_count /mnt/b)" -eq 1 ] &&
	[ "$ea" -ge 32 ] && [ "$eb" -ge 24 ]; then
	pass tool_module_fewer_extents
else
	fail tool_module_fewer_extents "$ea/$eb -> $(extent_count /mnt/a)/$(extent_count /mnt/b): $out"
fi
[ "$(stamps /mnt/a) $(stamps /mnt/b)" = "$times" ] && pass tool_module_timestamps_kept ||
	fail tool_module_timestamps_kept "$times -> $(stamps /mnt/a) $(stamps /mnt/b)"
echo 3 > /proc/sys/vm/drop_caches
[ "$(sha /mnt/a) $(sha /mnt/b)" = "$sums" ] && pass tool_module_data_intact ||
	fail tool_module_data_intact "checksums changed"

echo "== tool: -c on known layouts"
make_fragmented /mnt/ten 10
dd if=/dev/urandom of=/mnt/flat bs=4096 count=10 conv=fsync 2>/dev/null
out=$(e4defrag -c -v /mnt/ten /mnt/flat)
echo "$out" | grep -q "^/mnt/ten .* 10/1 .* 90.00%" &&
	echo "$out" | grep -q "^/mnt/flat .* 1/1 .* 0.00%" &&
	echo "$out" | grep -q "Fragmentation score       89.00" &&
	pass tool_check_known_layouts || fail tool_check_known_layouts "$out"
e4defrag --json -c /mnt/ten | grep -q '"extents": 10' && pass tool_check_json ||
	fail tool_check_json "$(e4defrag --json -c /mnt/ten)"
fsck_ok tool_e2fsck_after_files

echo "== tool: -r on a scattered directory, module backend"
fresh_fs || { fail tool_mkfs "mkfs or mount failed"; exit 0; }
scattered /mnt/boot 300
(cd /mnt/boot && sha256sum f*) > /tmp/boot.sums
stamps /mnt/boot/f7 > /tmp/f7.stamps
before=$(discont /mnt/boot)
out=$(e4defrag -r --backend module /mnt/boot 2>&1)
after=$(discont /mnt/boot)
echo "== $out"
echo "== -r: read-order discontinuities $before -> $after"
if [ "$before" -ge 100 ] && [ "$after" -le 3 ]; then
	pass tool_module_colocate
else
	fail tool_module_colocate "$before -> $after: $out"
fi
echo 3 > /proc/sys/vm/drop_caches
(cd /mnt/boot && sha256sum -c /tmp/boot.sums > /dev/null) && pass tool_module_colocate_data_intact ||
	fail tool_module_colocate_data_intact "checksums changed"
[ "$(stamps /mnt/boot/f7)" = "$(cat /tmp/f7.stamps)" ] && pass tool_module_colocate_timestamps ||
	fail tool_module_colocate_timestamps "changed"
[ "$(ls /mnt/boot | wc -l)" -eq 300 ] && pass tool_no_donor_left || fail tool_no_donor_left "$(ls /mnt/boot | wc -l) entries"
# Without --order, -r places a tree as find (and grep -r, tar, cp -a)
# reads it: readdir order, not sorted paths.
find /mnt/boot -type f > /tmp/find.list
in_find=$(discont -r --order /tmp/find.list /mnt/boot)
in_path=$(discont --order-by path /mnt/boot)
echo "== -r: find's order $in_find, path order $in_path discontinuities"
[ "$in_find" -le 3 ] && [ "$in_path" -ge 100 ] && pass tool_module_colocate_walk_order ||
	fail tool_module_colocate_walk_order "find's order $in_find, path order $in_path"
e4defrag -r --backend module --order-by path /mnt/boot > /tmp/out 2>&1
in_path=$(discont --order-by path /mnt/boot)
[ "$in_path" -le 3 ] && pass tool_module_colocate_path_order ||
	fail tool_module_colocate_path_order "path order $in_path: $(tail -1 /tmp/out)"

echo "== tool: -r --order"
ls /mnt/boot | sort -r > /tmp/order
e4defrag -r --backend module --order /tmp/order /mnt/boot > /tmp/out 2>&1
in_list=$(discont -r --order /tmp/order /mnt/boot)
in_path=$(discont --order-by path /mnt/boot)
echo "== --order: list order $in_list, path order $in_path discontinuities"
[ "$in_list" -le 3 ] && [ "$in_path" -ge 100 ] && pass tool_module_order ||
	fail tool_module_order "list $in_list path $in_path: $(cat /tmp/out)"
fsck_ok tool_e2fsck_after_colocate

echo "== tool: a device"
fresh_fs || { fail tool_mkfs "mkfs or mount failed"; exit 0; }
mkdir /mnt/d
make_fragmented /mnt/d/x 32
make_fragmented /mnt/y 32
sums="$(sha /mnt/d/x) $(sha /mnt/y)"
out=$(e4defrag --backend module $DEV 2>&1)
echo "== $out"
[ "$(extent_count /mnt/d/x)" -eq 1 ] && [ "$(extent_count /mnt/y)" -eq 1 ] &&
	[ "$(sha /mnt/d/x) $(sha /mnt/y)" = "$sums" ] && pass tool_module_device ||
	fail tool_module_device "$out"

echo "== tool: bad input"
# expect_fail NAME PATTERN ARGS...: e4defrag exits 1 saying PATTERN.
expect_fail() {
	name=$1 pattern=$2
	shift 2
	if e4defrag "$@" > /tmp/out 2>&1; then
		fail "$name" "succeeded: $(cat /tmp/out)"
	elif ! grep -q "$pattern" /tmp/out; then
		fail "$name" "wanted '$pattern': $(cat /tmp/out)"
	else
		pass "$name"
	fi
}
make_fragmented /mnt/z 16
sum=$(sha /mnt/z) ext=$(extent_count /mnt/z)
expect_fail tool_missing_path "ENOENT" /mnt/nothing-here
expect_fail tool_not_ext4 "not on an ext4 filesystem" /proc/version
chattr +i /mnt/z
expect_fail tool_immutable "EPERM" --backend module /mnt/z
chattr -i /mnt/z
mount -o remount,ro /mnt
expect_fail tool_read_only "read-only" /mnt/z
mount -o remount,rw /mnt
[ "$(sha /mnt/z)" = "$sum" ] && [ "$(extent_count /mnt/z)" = "$ext" ] &&
	pass tool_refusals_change_nothing || fail tool_refusals_change_nothing "the file changed"
fsck_ok tool_e2fsck_after_device

echo "== tool: -r leaves a set that would read worse, module backend"
# 20 files a few jumps from packed; the rest of a small filesystem filled
# and every other 8-block filler deleted: free space only in small holes
# (ext4's own reserve set to 0, or it stays one free run). Placing the set
# there would add jumps: without making room (--max-evacuate 0) nothing may
# move. Making room (the default) then moves fillers out of a region and
# packs the set.
umount /mnt 2>/dev/null
mkfs.ext4 -q -F -b 4096 "$DEV" 32M && mount -t ext4 -o nodelalloc "$DEV" /mnt ||
	{ fail tool_mkfs "mkfs or mount failed"; exit 0; }
sysfs=/sys/fs/ext4/$(basename "$(awk '$2 == "/mnt" { print $1 }' /proc/mounts)")
echo 1000000 > $sysfs/mb_stream_req
echo 0 > $sysfs/reserved_clusters
mkdir /mnt/set /mnt/fill
i=0
while [ $i -lt 20 ]; do
	[ $i -eq 19 ] && dd if=/dev/zero of=/mnt/fill/between bs=4096 count=256 conv=fsync 2>/dev/null
	taskset -c 0 dd if=/dev/urandom of=/mnt/set/f$i bs=4096 count=3 conv=fsync 2>/dev/null
	i=$((i + 1))
done
(cd /mnt/set && sha256sum f*) > /tmp/set.sums
blob=x
i=0
while [ $i -lt 15 ]; do blob="$blob$blob"; i=$((i + 1)); done
n=0
while printf '%s' "$blob" > /mnt/fill/g$n 2>/dev/null; do n=$((n + 1)); done
m=0
while echo > /mnt/fill/h$m 2>/dev/null; do m=$((m + 1)); done
sync
awk -v n="$n" 'BEGIN { for (j = 0; j < n; j += 2) print "/mnt/fill/g" j }' | xargs rm -f
sync
# Written in path order: in that order the set has one jump.
before=$(discont --order-by path /mnt/set)
out=$(e4defrag -r --backend module --max-evacuate 0 --order-by path /mnt/set 2>&1)
after=$(discont --order-by path /mnt/set)
echo "== $out"
echo "== worse set: $n + $m fillers, discontinuities $before -> $after"
if [ "$before" -ge 1 ] && [ "$after" -eq "$before" ] &&
	echo "$out" | grep -q "0 done, 20 nothing to gain"; then
	pass tool_module_set_not_made_worse
else
	fail tool_module_set_not_made_worse "$before -> $after: $out"
fi
(cd /mnt/set && sha256sum -c /tmp/set.sums > /dev/null) && pass tool_module_worse_set_data_intact ||
	fail tool_module_worse_set_data_intact "checksums changed"
out=$(e4defrag -r --backend module /mnt/set 2>&1)
echo "== $out"
if [ "$(discont /mnt/set)" -eq 0 ] && echo "$out" | grep -q "room made at block" &&
	(cd /mnt/set && sha256sum -c /tmp/set.sums > /dev/null); then
	pass tool_module_set_packed_after_making_room
else
	fail tool_module_set_packed_after_making_room "$out"
fi
fsck_ok tool_e2fsck_after_worse_set

echo "== tool: the boot workflow (record, --only-listed, --time-limit)"
fresh_fs || { fail tool_boot_mkfs "mkfs or mount failed"; exit 0; }
for d in usr/bin usr/lib etc var/lib srv; do scattered /mnt/$d 12; done
find /mnt -path '*.fill' -prune -o -type f -print | sort > /tmp/all.files
xargs sha256sum < /tmp/all.files > /tmp/all.sums
start_recording /tmp/boot.list /mnt /tmp/record.err
# A "boot": every other file of each directory, interleaved, each read;
# a repeat and a directory add nothing.
: > /tmp/boot.want
for f in 0 2 4 6 8 10; do
	for d in usr/bin usr/lib etc var/lib srv; do
		cat /mnt/$d/f$f > /dev/null
		echo /mnt/$d/f$f >> /tmp/boot.want
	done
done
cat /mnt/etc/f0 > /dev/null
ls /mnt/usr > /dev/null
kill -INT $rec
wait $rec
rc=$?
if [ $rc -eq 0 ] && cmp -s /tmp/boot.list /tmp/boot.want; then
	pass tool_record_lists_the_open_order
else
	fail tool_record_lists_the_open_order "exit $rc, $(wc -l < /tmp/boot.list) lines: $(head -3 /tmp/boot.list | tr '\n' ' '); $(tail -2 /tmp/record.err | tr '\n' ' ')"
fi
# Where the files not listed are, before and after.
grep -vxF -f /tmp/boot.want /tmp/all.files > /tmp/others.files
where() { xargs filefrag -e < "$1" | grep -E '^ +[0-9]+:' | md5sum; }
others=$(where /tmp/others.files)
before=$(discont -r --order /tmp/boot.list --only-listed /mnt)
out=$(e4defrag -r --backend module --order /tmp/boot.list --only-listed /mnt 2>&1)
after=$(discont -r --order /tmp/boot.list --only-listed /mnt)
echo "== $out"
echo "== listed: discontinuities $before -> $after"
if [ "$before" -ge 20 ] && [ "$after" -le 1 ] && [ "$(where /tmp/others.files)" = "$others" ]; then
	pass tool_module_only_listed_colocated_nothing_else
else
	fail tool_module_only_listed_colocated_nothing_else "$before -> $after, others moved: $out"
fi
# Time-limited runs over the whole mount: every file once, then done.
rm -f /tmp/resume
: > /tmp/seen
runs=0
while [ $runs -lt 200 ]; do
	runs=$((runs + 1))
	e4defrag --backend module --json --time-limit 1ms --state /tmp/resume /mnt > /tmp/run.json 2> /dev/null
	sed -n 's/^ *"path": "\(.*\)",$/\1/p' /tmp/run.json >> /tmp/seen
	grep -q '"time_limit_reached": true' /tmp/run.json || break
done
find /mnt -type f | sort > /tmp/now.files
echo "== time-limited runs: $runs runs for $(wc -l < /tmp/now.files) files"
if [ $runs -ge 2 ] && [ $runs -lt 200 ] && sort /tmp/seen | cmp -s - /tmp/now.files &&
	[ "$(sort /tmp/seen | uniq -d | wc -l)" -eq 0 ]; then
	pass tool_time_limited_runs_cover_every_file_once
else
	fail tool_time_limited_runs_cover_every_file_once "$runs runs, $(wc -l < /tmp/seen) seen of $(wc -l < /tmp/now.files)"
fi
xargs sha256sum < /tmp/all.files | cmp -s - /tmp/all.sums && pass tool_boot_workflow_data_intact ||
	fail tool_boot_workflow_data_intact "checksums changed"
fsck_ok tool_e2fsck_after_boot_workflow
