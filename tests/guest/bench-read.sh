#!/bin/sh
# The benchmark's guest part (make bench, make bench-quick; the host side
# is tests/bench.py, which reads the E4D-BENCH lines and writes the
# report). Disks:
#   vda  the seek-aware hard disk model (tests/nbd_disk.py over NBD)
#   vdb  throttled like a SATA SSD
#   vdc  the master image (unthrottled; the model copies it over vda on
#        the host) vdd... one growth image each
# e4d.params=SEED,FILES,BIGS,BIG_MIB,FS_MIB,RUNS,EXTENTS,BLOCKS (EXTENTS
# colon-separated) sizes it. For each profile and variant: the master
# image written to the throttled disk, the variant's defragmentation timed
# (disk bytes read and written from /sys/block), the data checked, then
# RUNS cold reads (caches dropped) of the set in its read order and of the
# big files, each timed with the requests it took (on vda also with the
# model's service time, seeks and read-ahead hits); e2fsck at the end.
# On vda only the measured phases wait for the model (m_pace); the
# restores, checks and e2fsck run at the host's speed.
# The variant boot records the set's read with e4defrag --record first
# and colocates what it recorded with -r --only-listed on the mount.
. /bin/lib.sh
set -- $(sed -n 's/.*e4d\.params=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ $# -eq 8 ] || { echo "E4D-BENCH: error no e4d.params"; exit 0; }
seed=$1 files=$2 bigs=$3 big_mib=$4 fs_mib=$5 runs=$6 extents=$(echo "$7" | tr : ' ') blocks=$8
master=/dev/vdc order=/tmp/order.list sums=/tmp/sums
opts=nodelalloc

say() { echo "E4D-BENCH: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# io DEV: "requests-read sectors-read requests-written sectors-written"
io() { awk '{ print $1, $3, $5, $7 }' "/sys/block/$1/stat"; }
# io_delta DEV BEFORE...: the I/O since BEFORE, as key=value (MiB).
io_delta() {
	d=$1
	shift
	set -- "$@" $(io "$d")
	awk -v r0="$1" -v rs0="$2" -v w0="$3" -v ws0="$4" -v r1="$5" -v rs1="$6" -v w1="$7" -v ws1="$8" \
		'BEGIN { printf "read_reqs=%d read_mib=%.1f write_reqs=%d written_mib=%.1f", r1 - r0, (rs1 - rs0) / 2048, w1 - w0, (ws1 - ws0) / 2048 }'
}
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# m_before DEV, m_since DEV BEFORE: the model's counters, and what it did
# since (vda only: the other disks print nothing).
m_before() { [ "$1" != vda ] || model_stats vda; }
m_since() { [ "$1" != vda ] || model_delta vda "$2"; }
# m_pace DEV 0|1: the model waits only in measured phases (model_pace).
m_pace() { [ "$1" != vda ] || model_pace vda "$2"; }
# extents LIST: the extents of the files LIST names, together.
extents() { xargs filefrag < "$1" | awk '{ s += $(NF-2) } END { print s + 0 }'; }

insmod $KO || { say "error insmod failed"; exit 0; }
# virtio-blk cannot say the model is a rotating disk; ext4's allocator
# (mb_optimize_scan) and the block layer ask.
echo 1 > /sys/block/vda/queue/rotational
m=$(model_stats vda)
case $m in reads=*) say "note hdd: the seek-aware model: $m" ;;
*) say "error vda is not the disk model (its control block says: $m)"; exit 0 ;; esac

# The master image, once: every variant starts from a copy of it.
mkfs.ext4 -q -F -m 0 -b 4096 -E nodiscard "$master" "${fs_mib}M" &&
	mount -t ext4 -o $opts "$master" /mnt || { say "error master mkfs/mount failed"; exit 0; }
t0=$(now)
say "note $(fraggen bench "$seed" /mnt "$files" "$bigs" "$big_mib" $order)"
ls /mnt/big/* > /tmp/big.list
# shellcheck disable=SC2046
sha256sum $(cat $order /tmp/big.list) > $sums
ideal_set=$(xargs cat < $order | sha256sum | cut -d' ' -f1)
ideal_big=$(xargs cat < /tmp/big.list | sha256sum | cut -d' ' -f1)
say "master secs=$(since "$t0") set_extents=$(extents $order) big_extents=$(extents /tmp/big.list)"
umount /mnt

# restore DEV: the master image onto DEV, mounted at /mnt (onto the
# model by the host: model_restore).
restore() {
	umount /mnt 2>/dev/null
	if [ "$1" = vda ]; then
		model_restore vda
	else
		dd if=$master of="/dev/$1" bs=4M count=$((fs_mib / 4)) conv=fsync 2>/dev/null
	fi && echo 3 > /proc/sys/vm/drop_caches && mount -t ext4 -o $opts "/dev/$1" /mnt
}

# defrag VARIANT: the variant's work on /mnt (the ideal's copy is made
# in variant, as two timed steps).
defrag() {
	case $1 in
	none) true ;;
	e2fsprogs) e2fsprogs-e4defrag /mnt/boot /mnt/big ;;
	r-module) e4defrag -r --backend module --order $order /mnt/boot ;;
	r-move-ext) e4defrag -r --backend move-ext --order $order /mnt/boot ;;
	files-module) e4defrag --backend module /mnt/big ;;
	files-move-ext) e4defrag --backend move-ext /mnt/big ;;
	unit-*) e4defrag --backend module --unit-log2 "${1#unit-}" /mnt/big ;;
	boot) e4defrag -r --backend module --order /tmp/rec.list --only-listed /mnt ;;
	# A fresh copy of the set's and the big files' directories (cp -a),
	# the old ones removed: what copying a tree anew gives.
	copy) for t in boot big; do
		cp -a /mnt/$t /mnt/$t.new && rm -rf /mnt/$t && mv /mnt/$t.new /mnt/$t || return 1
	done ;;
	esac
}

# record_boot PROFILE: the boot workflow's first half: e4defrag --record
# while the set is read cold in its order; how much of the order the
# recorded list has in the same place.
record_boot() {
	cold
	start_recording /tmp/rec.list /mnt /tmp/rec.err
	xargs cat < $order > /dev/null
	kill -INT $rec
	wait $rec || say "error $1 boot: record failed: $(tail -2 /tmp/rec.err | tr '\n' ' ')"
	same=$(paste -d ' ' $order /tmp/rec.list | awk '$1 == $2' | wc -l)
	say "record profile=$1 listed=$(wc -l < /tmp/rec.list) same_place=$same of=$(wc -l < $order)"
	# The colocation that follows starts cold, as every variant's does.
	cold
}

# check VARIANT: the data is what the master holds.
check() {
	if [ "$1" = ideal ]; then
		[ "$(sha /mnt/ideal-set)" = "$ideal_set" ] && [ "$(sha /mnt/ideal-big)" = "$ideal_big" ]
	else
		sha256sum -c $sums > /dev/null 2>&1
	fi
}

# variant PROFILE DEV VARIANT: one variant on one profile.
variant() {
	p=$1 d=$2 v=$3
	m_pace "$d" 0
	restore "$d" || { say "error $p $v restore failed"; return; }
	set_list=$order big_list=/tmp/big.list
	[ "$v" = boot ] && record_boot "$p"
	sync
	m_pace "$d" 1
	m0=$(m_before "$d") before=$(io "$d")
	t0=$(now)
	if [ "$v" = ideal ]; then
		xargs cat < $order > /mnt/ideal-set && sync
		say "copy profile=$p what=set secs=$(since "$t0") $(io_delta "$d" $before) $(m_since "$d" "$m0")"
		m0=$(m_before "$d") before=$(io "$d")
		t0=$(now)
		xargs cat < /tmp/big.list > /mnt/ideal-big && sync
		say "copy profile=$p what=big secs=$(since "$t0") $(io_delta "$d" $before) $(m_since "$d" "$m0")"
		m_pace "$d" 0
		# Then (not timed) each into one run, where the free space allows.
		e4defrag --backend module /mnt/ideal-set /mnt/ideal-big > /dev/null 2>&1
		echo /mnt/ideal-set > /tmp/ideal-set.list
		echo /mnt/ideal-big > /tmp/ideal-big.list
		set_list=/tmp/ideal-set.list big_list=/tmp/ideal-big.list
		rc=0
	else
		defrag "$v" > /tmp/defrag.out 2>&1
		rc=$?
		sync
		say "defrag profile=$p variant=$v secs=$(since "$t0") $(io_delta "$d" $before) $(m_since "$d" "$m0") rc=$rc"
		m_pace "$d" 0
		[ $rc -eq 0 ] || say "error $p $v exit $rc: $(tail -1 /tmp/defrag.out)"
	fi
	check "$v" && data=intact || data=CHANGED
	say "layout profile=$p variant=$v set_extents=$(extents $set_list) big_extents=$(extents $big_list) data=$data"
	[ $data = intact ] || say "error $p $v data changed"
	case $v in unit-*) ;; *)
		# Where the metadata is now, for the model's reads by kind.
		[ "$d" != vda ] || model_map vda /mnt
		r=1
		while [ $r -le "$runs" ]; do
			for what in set big; do
				[ $what = set ] && l=$set_list || l=$big_list
				cold
				[ "$d" != vda ] || model_drop vda
				m_pace "$d" 1
				m0=$(m_before "$d") before=$(io "$d")
				t0=$(now)
				xargs cat < "$l" > /dev/null
				say "read profile=$p variant=$v what=$what run=$r secs=$(since "$t0") $(io_delta "$d" $before) $(m_since "$d" "$m0")"
				m_pace "$d" 0
			done
			r=$((r + 1))
		done ;;
	esac
	if [ "$p" = hdd ]; then
		case $v in none | e2fsprogs | r-module | r-move-ext)
			fraggen blockmap /mnt $order | sed "s/^/E4D-BENCH: map variant=$v /" ;;
		esac
	fi
	umount /mnt
	if e2fsck -fn "/dev/$d" > /tmp/fsck 2>&1; then
		say "fsck profile=$p variant=$v clean"
	else
		say "error $p $v e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"
	fi
}

for v in none e2fsprogs r-module r-move-ext files-module files-move-ext boot copy ideal; do
	variant hdd vda $v
	variant ssd vdb $v
done
# The move-unit sweep on the hard disk: per-step costs.
for u in 0 4 8; do
	variant hdd vda unit-$u
done

# Unattended runs over the whole device (the HDD): --time-limit 5s runs
# until one reaches the end; how many it took and how long in all.
m_pace vda 0
restore vda || say "error device restore failed"
rm -f /tmp/dev.resume
m_pace vda 1
runs=0 t0=$(now)
while [ $runs -lt 100 ]; do
	runs=$((runs + 1))
	e4defrag --backend module --json --time-limit 5s --state /tmp/dev.resume /dev/vda \
		> /tmp/dev.json 2> /tmp/dev.err || say "error device run $runs: $(tail -1 /tmp/dev.err)"
	grep -q '"time_limit_reached": true' /tmp/dev.json || break
done
secs=$(since "$t0")
m_pace vda 0
check device && data=intact || data=CHANGED
say "device profile=hdd runs=$runs secs=$secs files=$(find /mnt -type f | wc -l) data=$data"
[ $data = intact ] || say "error device data changed"
umount /mnt
e2fsck -fn /dev/vda > /tmp/fsck 2>&1 || say "error device e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"

# How the module's time grows with a file's extents: the same size each
# time (1 KiB blocks, BLOCKS blocks), EXTENTS extents, one image each on
# vdd, vde, ... (made on the host by fraggen fragfile: under TCG making
# the 100,000-extent file alone takes minutes).
n=0
for e in $extents; do
	d=/dev/vd$(echo defghijk | cut -c$((n + 1)))
	n=$((n + 1))
	mount -t ext4 -o $opts "$d" /mnt || { say "error growth $e: no image on $d"; continue; }
	got=$(extent_count /mnt/g/frag)
	s=$(sha /mnt/g/frag)
	cold
	t0=$(now)
	e4defrag --backend module /mnt/g/frag > /tmp/defrag.out 2>&1
	rc=$?
	secs=$(since "$t0")
	[ "$(sha /mnt/g/frag)" = "$s" ] && data=intact || data=CHANGED
	say "growth extents=$got after=$(extent_count /mnt/g/frag) blocks=$blocks secs=$secs rc=$rc data=$data"
	[ $rc -eq 0 ] && [ $data = intact ] || say "error growth $e: rc $rc, data $data: $(tail -1 /tmp/defrag.out)"
	umount /mnt
	e2fsck -fn "$d" > /tmp/fsck 2>&1 || say "error growth $e e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"
done
say "end"
