#!/bin/sh
# Benchmark (make bench): defragment a 64 MiB file of about 1000 extents
# with move units of 1, 16 and 256 pages, and with e2fsprogs' e4defrag
# (EXT4_IOC_MOVE_EXT driven from userspace), each on a freshly made copy
# of the same layout. Prints one line per run.
. /bin/lib.sh
DEV=/dev/vda

insmod $KO || { echo "bench: insmod failed"; exit 0; }

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
	ok=ok
	[ "$(sha /mnt/victim)" = "$sum" ] || ok="DATA CHANGED"
	[ $rc -eq 0 ] || ok="exit $rc: $(tail -1 /tmp/bench.out)"
	printf 'bench: %-28s %4d -> %4d extents  %4d.%02d s  %s\n' "$name" "$before" "$after" \
		$(((t1 - t0) / 100)) $(((t1 - t0) % 100)) "$ok"
}

run "EXT4_IOC_DEFRAG 1 page" e4defrag --unit-log2 0
run "EXT4_IOC_DEFRAG 16 pages" e4defrag --unit-log2 4
run "EXT4_IOC_DEFRAG 256 pages" e4defrag --unit-log2 8
run "e2fsprogs e4defrag (MOVE_EXT)" e2fsprogs-e4defrag
umount /mnt
