#!/bin/sh
# The benchmark's aged tree (make bench, e4d.bench=tree; tests/bench.py
# ages the image on the host with tests/agetree.py: successive releases of
# a real package installed over each other). Disks:
#   vda  the seek-aware hard disk model (tests/nbd_disk.py over NBD)
#   vdb  the aged image (the master every variant starts from)
# e4d.params=FS_MIB,RUNS. For each variant: the master onto vda, the
# variant's work timed (with the model's service time), the data checked
# against the master's checksums, then RUNS cold reads of the tree the way
# tools read trees: grep -r of an absent string (every file's data, in
# readdir order), tar c (the same, with the archive written to a pipe), du
# (a stat walk: directories and inodes only). e2fsck at the end.
. /bin/lib.sh
set -- $(sed -n 's/.*e4d\.params=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ $# -eq 2 ] || { echo "E4D-BENCH: error no e4d.params"; exit 0; }
fs_mib=$1 runs=$2
master=/dev/vdb sums=/tmp/tree.sums
opts=nodelalloc

say() { echo "E4D-BENCH: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; model_drop vda; }

insmod $KO || { say "error insmod failed"; exit 0; }
echo 1 > /sys/block/vda/queue/rotational
m=$(model_stats vda)
case $m in reads=*) ;; *) say "error vda is not the disk model (its control block says: $m)"; exit 0 ;; esac

mount -t ext4 -o ro "$master" /mnt || { say "error the aged image does not mount"; exit 0; }
(cd /mnt && find tree -type f | sort | xargs sha256sum) > $sums
ideal_sum=$(cd /mnt && find tree -type f | xargs cat | sha256sum | cut -d' ' -f1)
say "tnote files=$(wc -l < $sums) kib=$(du -sk /mnt/tree | cut -f1) extents=$(find /mnt/tree -type f | xargs filefrag | awk '{ s += $(NF-2) } END { print s }')"
umount /mnt

# defrag VARIANT: the variant's work on /mnt/tree.
defrag() {
	case $1 in
	aged) true ;;
	e2fsprogs) e2fsprogs-e4defrag /mnt/tree ;;
	files-module) e4defrag --backend module /mnt/tree ;;
	r-module) e4defrag -r --backend module /mnt/tree ;;
	r-module-path) e4defrag -r --backend module --order-by path /mnt/tree ;;
	r-move-ext) e4defrag -r --backend move-ext /mnt/tree ;;
	# A fresh copy: what cp -a and a new checkout give, on the same disk.
	copy) cp -a /mnt/tree /mnt/tree.new && rm -rf /mnt/tree && mv /mnt/tree.new /mnt/tree ;;
	# The tree's data in one contiguous file, read in one sweep.
	ideal) (cd /mnt && find tree -type f | xargs cat) > /mnt/ideal && sync &&
		e4defrag --backend module /mnt/ideal ;;
	esac
}

# read WHAT: one cold read of the tree (of the ideal file for the ideal).
read_tree() {
	case $1 in
	grep) grep -r e4d-absent-string-zq /mnt/tree ;;
	tar) tar cf - -C /mnt tree | cat ;;
	du) du -s /mnt/tree ;;
	ideal) cat /mnt/ideal ;;
	esac > /dev/null
}

for v in aged e2fsprogs files-module r-module r-module-path r-move-ext copy ideal; do
	umount /mnt 2>/dev/null
	dd if=$master of=/dev/vda bs=4M count=$((fs_mib / 4)) conv=fsync 2>/dev/null &&
		mount -t ext4 -o $opts /dev/vda /mnt || { say "error $v: restore failed"; continue; }
	cold
	m0=$(model_stats vda)
	t0=$(now)
	defrag $v > /tmp/defrag.out 2>&1
	rc=$?
	sync
	say "tdefrag variant=$v secs=$(since "$t0") $(model_delta vda "$m0") rc=$rc"
	[ $rc -eq 0 ] || say "error tree $v exit $rc: $(tail -1 /tmp/defrag.out)"
	if [ $v = ideal ]; then
		[ "$(sha /mnt/ideal)" = "$ideal_sum" ] && data=intact || data=CHANGED
		whats=ideal
	else
		(cd /mnt && sha256sum -c $sums > /dev/null 2>&1) && data=intact || data=CHANGED
		whats="grep tar du"
	fi
	say "tlayout variant=$v extents=$(find /mnt/tree /mnt/ideal -type f 2>/dev/null | xargs filefrag | awk '{ s += $(NF-2) } END { print s }') data=$data"
	[ $data = intact ] || say "error tree $v data changed"
	r=1
	while [ $r -le "$runs" ]; do
		for what in $whats; do
			cold
			m0=$(model_stats vda)
			t0=$(now)
			read_tree $what
			say "tread variant=$v what=$what run=$r secs=$(since "$t0") $(model_delta vda "$m0")"
		done
		r=$((r + 1))
	done
	umount /mnt
	e2fsck -fn /dev/vda > /tmp/fsck 2>&1 || say "error tree $v e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"
done
say "end"
