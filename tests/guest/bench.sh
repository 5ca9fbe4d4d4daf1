#!/bin/sh
# Benchmark (make bench): defragment a 64 MiB file of about 1000 extents
# with move units of 1, 16 and 256 pages, with a goal, with the tool's
# EXT4_IOC_MOVE_EXT backend and with e2fsprogs' e4defrag, each on a freshly
# made copy of the same layout; then one image of scattered and fragmented
# files handled by e4defrag -r with each backend, e4defrag DIR and
# e2fsprogs' e4defrag; then -r with each backend on the seeded layouts
# (bench-layouts.sh). Prints one line per run.
. /bin/lib.sh
DEV=/dev/vda

# e4d.bench=read: the cold-read benchmark of tests/bench.py (make bench);
# e4d.bench=tree: its aged tree (bench-tree.sh);
# e4d.bench=layouts: only the seeded layouts' -r timings;
# e4d.bench=makeroom: only making room on crowded layouts.
case " $(cat /proc/cmdline) " in
*" e4d.bench=read "*) /bin/bench-read.sh; exit 0 ;;
*" e4d.bench=tree "*) /bin/bench-tree.sh; exit 0 ;;
esac
insmod $KO || { echo "bench: insmod failed"; exit 0; }
case " $(cat /proc/cmdline) " in
*" e4d.bench=layouts "*) /bin/bench-layouts.sh; exit 0 ;;
*" e4d.bench=makeroom "*) /bin/bench-makeroom.sh; exit 0 ;;
esac

# uptime_cs: seconds since boot in hundredths.
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }

# layout: a 64 MiB /mnt/victim in 16-block pieces, 100 MiB free in one run.
layout() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F -b 4096 "$DEV" 320M && mount -t ext4 "$DEV" /mnt || return 1
	fallocate -l 100M /mnt/reserve
	blob=x
	i=0
	while [ $i -lt 16 ]; do blob="$blob$blob"; i=$((i + 1)); done
	mkdir /mnt/fill
	i=0
	while printf '%s' "$blob" > /mnt/fill/$i 2>/dev/null; do i=$((i + 1)); done
	sync
	awk -v n="$i" 'BEGIN { for (j = 0; j < n; j += 2) print "/mnt/fill/" j }' | xargs rm -f
	sync
	dd if=/dev/urandom of=/mnt/victim bs=1M count=64 2>/dev/null
	sync
	filefrag -e /mnt/reserve | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }' > /tmp/reserve.start
	rm -f /mnt/reserve
	sync
}

# run NAME COMMAND...: time COMMAND on a fresh layout, check the data.
run() {
	name=$1
	shift
	layout || { echo "bench: $name: layout failed"; return; }
	before=$(extent_count /mnt/victim) sum=$(sha /mnt/victim)
	echo 3 > /proc/sys/vm/drop_caches
	t0=$(uptime_cs)
	"$@" /mnt/victim > /tmp/bench.out 2>&1
	rc=$?
	t1=$(uptime_cs)
	after=$(extent_count /mnt/victim)
	first=$(first_pblk /mnt/victim)
	goal=""
	if [ -f /tmp/goal ]; then
		g=$(cat /tmp/goal) d=$((first - $(cat /tmp/goal)))
		goal=" (goal $g, distance ${d#-})"
		rm /tmp/goal
	fi
	ok=ok
	[ "$(sha /mnt/victim)" = "$sum" ] || ok="DATA CHANGED"
	[ $rc -eq 0 ] || ok="exit $rc: $(tail -1 /tmp/bench.out)"
	printf 'bench: %-30s %4d -> %4d extents  %4d.%02d s  first block %6d%s  %s\n' "$name" \
		"$before" "$after" $(((t1 - t0) / 100)) $(((t1 - t0) % 100)) "$first" "$goal" "$ok"
}

run "EXT4_IOC_DEFRAG 1 page" e4defrag --unit-log2 0
run "EXT4_IOC_DEFRAG 16 pages" e4defrag --unit-log2 4
run "EXT4_IOC_DEFRAG 256 pages" e4defrag --unit-log2 8
run "EXT4_IOC_DEFRAG 2048 pages" e4defrag --unit-log2 11
run "e4defrag --backend move-ext" e4defrag --backend move-ext
run "e2fsprogs e4defrag (MOVE_EXT)" e2fsprogs-e4defrag
# With a goal: the start of the 100 MiB that were freed last.
goal_run() {
	cat /tmp/reserve.start > /tmp/goal
	e4defrag --unit-log2 4 --goal "$(cat /tmp/goal)" "$@"
}
run "EXT4_IOC_DEFRAG 16 pages, goal" goal_run

# One image, three ways: 300 scattered small files and two fragmented
# files; read-order discontinuities and extents before and after.
image() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F -b 4096 "$DEV" 320M && mount -t ext4 "$DEV" /mnt || return 1
	scattered /mnt/boot 300
	make_fragmented /mnt/boot/zz-big 400
	make_fragmented /mnt/boot/zz-big2 200
}
# measure: "discontinuities D, extents E" of /mnt/boot from e4defrag -c.
measure() {
	e4defrag -c /mnt/boot > /tmp/c.out
	d=$(discontinuities < /tmp/c.out)
	e=$(awk '/Total\/best extents/ { split($3, x, "/"); print x[1] }' /tmp/c.out)
	echo "discontinuities $d, extents $e"
}
image_run() {
	name=$1
	shift
	image || { echo "bench: $name: image failed"; return; }
	(cd /mnt/boot && sha256sum * > /tmp/img.sums)
	m0=$(measure)
	sync
	echo 3 > /proc/sys/vm/drop_caches
	t0=$(uptime_cs)
	"$@" > /tmp/bench.out 2>&1
	rc=$?
	t1=$(uptime_cs)
	ok=ok
	(cd /mnt/boot && sha256sum -c /tmp/img.sums > /dev/null 2>&1) || ok="DATA CHANGED"
	[ $rc -eq 0 ] || ok="exit $rc: $(tail -1 /tmp/bench.out)"
	printf 'bench: image %-32s %s -> %s  %d.%02d s  %s\n' "$name" "$m0" "$(measure)" \
		$(((t1 - t0) / 100)) $(((t1 - t0) % 100)) "$ok"
}
image_run "e4defrag -r (module)" e4defrag -r --backend module /mnt/boot
image_run "e4defrag -r (move-ext)" e4defrag -r --backend move-ext /mnt/boot
image_run "e4defrag DIR (module)" e4defrag --backend module /mnt/boot
image_run "e2fsprogs e4defrag DIR" e2fsprogs-e4defrag /mnt/boot
umount /mnt
/bin/bench-layouts.sh
