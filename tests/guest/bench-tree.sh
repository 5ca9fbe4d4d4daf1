#!/bin/sh
# The benchmark's aged tree (make bench, e4d.bench=tree; tests/bench.py
# ages the image on the host with tests/agetree.py: successive releases of
# a real package installed over each other). Disks:
#   vda  the seek-aware hard disk model (tests/nbd_disk.py over NBD)
#   vdb  the aged image, read-only: the master every variant starts from
#        (the model copies it over vda on the host: model_restore)
# e4d.params=FS_MIB,RUNS. Two workloads on it. The tree: for each
# variant, the master onto vda, the
# variant's work timed (with the model's service time), the data checked
# against the master's checksums, then RUNS cold reads of the tree the way
# tools read trees: grep -r of an absent string (every file's data, in
# readdir order), tar c (the same, with the archive written to a pipe), du
# (a stat walk: directories and inodes only). e2fsck at the end. Only the
# variant's work and the reads wait for the model (model_pace): restores,
# checksums and e2fsck run at the host's speed and are not measured. Then a
# program's cold start on the same image (see below), with the boot
# workflow's record and colocate among its variants.
. /bin/lib.sh
set -- $(sed -n 's/.*e4d\.params=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ $# -eq 2 ] || { echo "E4D-BENCH: error no e4d.params"; exit 0; }
runs=$2
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
# Every file of the image: the variants of the cold start move more than
# the tree.
(cd /mnt && find . -path ./lost+found -prune -o -type f -print | sort | xargs sha256sum) > $sums
ideal_sum=$(cd /mnt && find tree -type f | xargs cat | sha256sum | cut -d' ' -f1)
say "tnote files=$(wc -l < $sums) kib=$(du -sk /mnt/tree | cut -f1) extents=$(find /mnt/tree -type f | xargs filefrag | awk '{ s += $(NF-2) } END { print s }')"
umount /mnt

# defrag VARIANT: the variant's work on /mnt/tree.
defrag() {
	case $1 in
	aged) true ;;
	e2fsprogs) e2fsprogs-e4defrag /mnt/tree ;;
	# Every file of the filesystem on its own, as the weekly unit's
	# whole-device run does: it must not make the tree's walk slower.
	files-module) e4defrag --backend module /mnt ;;
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
	model_pace vda 0
	model_restore vda && mount -t ext4 -o $opts /dev/vda /mnt ||
		{ say "error $v: restore failed"; continue; }
	cold
	model_pace vda 1
	m0=$(model_stats vda)
	t0=$(now)
	defrag $v > /tmp/defrag.out 2>&1
	rc=$?
	sync
	say "tdefrag variant=$v secs=$(since "$t0") $(model_delta vda "$m0") rc=$rc"
	model_pace vda 0
	echo "tree $v: $(tail -1 /tmp/defrag.out)"
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
	# Where the metadata is now, for the model's reads by kind.
	model_map vda /mnt
	r=1
	while [ $r -le "$runs" ]; do
		for what in $whats; do
			cold
			model_pace vda 1
			m0=$(model_stats vda)
			t0=$(now)
			read_tree $what
			say "tread variant=$v what=$what run=$r secs=$(since "$t0") $(model_delta vda "$m0")"
			model_pace vda 0
		done
		r=$((r + 1))
	done
	umount /mnt
	e2fsck -fn /dev/vda > /tmp/fsck 2>&1 || say "error tree $v e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"
done

# A program's cold start: python3 (on the image, with its standard
# library) sets Django up and imports about 600 modules of the standard
# library, the aged package and its dependencies. It prints how many
# modules it has: every variant must print the same.
PY='import sys
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth",
                    "django.contrib.contenttypes", "django.contrib.sessions",
                    "django.contrib.messages", "django.contrib.staticfiles"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
django.setup()
import django.contrib.admin.sites, django.core.management, django.test.client
import django.db.backends.sqlite3.base, django.forms, django.template.defaulttags
print(len(sys.modules))'
pystart() {
	PYTHONPATH=/tree:/deps PYTHONDONTWRITEBYTECODE=1 chroot /mnt /usr/bin/python3 -c "$PY"
}
# record_start: the files the cold start opens, in order (e4defrag
# --record), into /tmp/py.list.
record_start() {
	cold
	start_recording /tmp/py.list /mnt /tmp/rec.err
	pystart > /dev/null 2>&1
	kill -INT $rec
	wait $rec || say "error start: record failed: $(tail -2 /tmp/rec.err | tr '\n' ' ')"
	cold
}
# copy_all: a fresh copy of everything on /mnt: each top directory copied,
# the old one removed, the copy renamed (symbolic links stay as they are).
copy_all() {
	local d
	for d in /mnt/*; do
		[ -d "$d" ] && [ ! -L "$d" ] && [ "$d" != /mnt/lost+found ] || continue
		cp -a "$d" "$d.new" && rm -rf "$d" && mv "$d.new" "$d" || return 1
	done
}
want_modules=
for v in aged e2fsprogs files-module r-module r-module-path r-move-ext boot-module boot-move-ext copy ideal; do
	umount /mnt 2>/dev/null
	model_pace vda 0
	model_restore vda && mount -t ext4 -o $opts /dev/vda /mnt ||
		{ say "error start $v: restore failed"; continue; }
	case $v in boot-* | ideal) record_start ;; esac
	cold
	model_pace vda 1
	m0=$(model_stats vda)
	t0=$(now)
	case $v in
	aged) true ;;
	e2fsprogs) e2fsprogs-e4defrag /mnt ;;
	files-module) e4defrag --backend module /mnt ;;
	r-module) e4defrag -r --backend module /mnt ;;
	r-module-path) e4defrag -r --backend module --order-by path /mnt ;;
	r-move-ext) e4defrag -r --backend move-ext /mnt ;;
	boot-module) e4defrag -r --backend module --order /tmp/py.list --only-listed /mnt ;;
	boot-move-ext) e4defrag -r --backend move-ext --order /tmp/py.list --only-listed /mnt ;;
	copy) copy_all ;;
	# What the recorded files' data costs read in one sweep: the bound.
	ideal) xargs cat < /tmp/py.list > /mnt/ideal && sync && e4defrag --backend module /mnt/ideal ;;
	esac > /tmp/defrag.out 2>&1
	rc=$?
	sync
	say "sdefrag variant=$v secs=$(since "$t0") $(model_delta vda "$m0") listed=$(wc -l < /tmp/py.list 2>/dev/null || echo 0) rc=$rc"
	model_pace vda 0
	# What the tool said last, for the console log.
	echo "start $v: $(tail -1 /tmp/defrag.out)"
	[ $rc -eq 0 ] || say "error start $v exit $rc: $(tail -1 /tmp/defrag.out)"
	(cd /mnt && sha256sum -c $sums > /dev/null 2>&1) || say "error start $v data changed"
	model_map vda /mnt
	r=1
	while [ $r -le "$runs" ]; do
		cold
		model_pace vda 1
		m0=$(model_stats vda)
		t0=$(now)
		if [ $v = ideal ]; then
			cat /mnt/ideal > /dev/null
			got=$want_modules
		else
			got=$(pystart 2>/tmp/py.err)
		fi
		say "sread variant=$v run=$r secs=$(since "$t0") $(model_delta vda "$m0") modules=$got"
		model_pace vda 0
		[ -n "$want_modules" ] || want_modules=$got
		[ -n "$got" ] && [ "$got" = "$want_modules" ] ||
			say "error start $v: $got modules, not $want_modules: $(tail -1 /tmp/py.err)"
		r=$((r + 1))
	done
	umount /mnt
	e2fsck -fn /dev/vda > /tmp/fsck 2>&1 || say "error start $v e2fsck: $(tail -3 /tmp/fsck | tr '\n' ';')"
done
say "end"
