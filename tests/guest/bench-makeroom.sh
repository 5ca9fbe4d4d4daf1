#!/bin/sh
# Making room, in numbers (make bench with e4d.bench=makeroom): on crowded
# seeded layouts (fraggen crowd: a disk filled with small files, a share
# of them deleted, then a set of 200-300 files and an 8 MiB file written
# into the holes, so that no free run holds either), each variant runs on
# a fresh copy of the same image:
#   stock   e4defrag -r --backend move-ext: one donor fallocated for the
#           whole set, the files moved into it in order (what fstests'
#           e4compact does); then the big file the same way
#   module  e4defrag -r --backend module: clears a region first; then
#           the big file
#   free    e4defrag --free-space --max-move (the set's size): the largest
#           free run that moving that much can make
# and prints, per seed and variant: read-order discontinuities, span
# ratio and modeled HDD read time of the set before -> after (see
# tools/e4defrag/src/readtime.rs), blocks of other files moved, the big
# file's extents, other files whose extent count grew, and whether the
# checksums and e2fsck -fn held. Seeds: e4d.seeds= on the command line.
. /bin/lib.sh
DEV=/dev/vda
seeds=$(cmdline_seeds "1 2 3")
mkdir -p /tmp/crowd
mount -t tmpfs -o size=60% tmpfs /tmp/crowd
img=/tmp/crowd/img

# out: every line the bench prints, also kept for the table at the end.
out() { echo "makeroom-bench: $*" | tee -a /tmp/crowd/lines; }

# fresh: the untouched image on $DEV, mounted on /mnt, no reserved
# clusters (the layout was made without them).
fresh() {
	umount /mnt 2>/dev/null
	dd if=$img of=$DEV bs=1M conv=fsync 2>/dev/null &&
		mount -t ext4 $DEV /mnt || return 1
	echo 0 > "/sys/fs/ext4/$(basename $DEV)/reserved_clusters"
}

# extents_of DIR: "PATH EXTENTS" per file under DIR.
extents_of() {
	e4defrag -c -v "$1" | awk '$2 ~ /^[0-9]+\/[0-9]+$/ { split($2, a, "/"); print $1, a[1] }' | sort
}

# finish NAME: checksums, other files' extents, e2fsck; one line.
finish() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
	(cd /mnt && sha256sum -c /tmp/crowd/sums > /dev/null 2>&1) && data=intact || data=CHANGED
	extents_of /mnt/others > /tmp/crowd/others.after
	worse=$(awk 'NR == FNR { was[$1] = $2; next } $2 > was[$1]' \
		/tmp/crowd/others.before /tmp/crowd/others.after | wc -l)
	umount /mnt
	e2fsck -fn $DEV > /tmp/crowd/fsck 2>&1 && fsck=clean || fsck=ERRORS
	out "seed $seed $1: data $data, other files with more extents $worse, e2fsck $fsck"
}

# set_numbers TEXT: "D1 -> D2, ratio R1 -> R2, read T1 -> T2 ms" from an -r line.
set_numbers() {
	echo "$1" | sed -n 's/.*discontinuities \([0-9]* -> [0-9]*\), span .*(ratio \([0-9.]* -> [0-9.]*\)), modeled HDD read \([0-9]* -> [0-9]*\) ms.*/discontinuities \1, span ratio \2, modeled HDD read \3 ms/p'
}

for seed in $seeds; do
	set -- $(fraggen crowd-params "$seed")
	bs=$1 mib=$2
	rm -f $img
	truncate -s "${mib}M" $img
	mkfs.ext4 -q -F -m 0 -b "$bs" -E nodiscard $img || { out "seed $seed: mkfs failed"; continue; }
	loop=$(losetup -f) && losetup "$loop" $img && mount -t ext4 -o nodelalloc "$loop" /mnt ||
		{ out "seed $seed: mount failed"; continue; }
	echo 0 > "/sys/fs/ext4/$(basename "$loop")/reserved_clusters"
	layout=$(fraggen crowd "$seed" /mnt 2>&1)
	out "$layout"
	(cd /mnt && find others set big -type f | sort | xargs sha256sum) > /tmp/crowd/sums
	extents_of /mnt/others > /tmp/crowd/others.before
	before=$(e4defrag -c /mnt/set | grep "read in order")
	out "seed $seed before: $before"
	umount /mnt
	losetup -d "$loop"
	case $layout in *"not a crowded layout"*) continue ;; esac

	for b in move-ext module; do
		name=stock
		[ $b = module ] && name=module
		fresh || { out "seed $seed $name: copy or mount failed"; continue; }
		t0=$(cut -d' ' -f1 /proc/uptime)
		r=$(e4defrag --backend $b -r /mnt/set 2>&1)
		t1=$(cut -d' ' -f1 /proc/uptime)
		line=$(echo "$r" | grep "read-order")
		room=$(echo "$line" | sed -n 's/.*room made at block \([0-9]*\): \([0-9]*\) blocks of \([0-9]*\) other files.*/room at \1, \2 blocks of \3 other files moved/p')
		out "seed $seed $name -r: $(set_numbers "$line")${room:+, $room}, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
		echo "$r" | grep "^e4defrag: " | while read -r w; do out "seed $seed $name -r: $w"; done
		big=$(e4defrag --backend $b /mnt/big 2>&1)
		out "seed $seed $name big: $(echo "$big" | grep "^/mnt/big")"
		echo "$big" | grep "^e4defrag: " | while read -r w; do out "seed $seed $name big: $w"; done
		finish "$name"
	done

	fresh || { out "seed $seed free: copy or mount failed"; continue; }
	set_blocks=$(echo "$layout" | sed -n 's/.*files of \([0-9]*\) blocks, big.*/\1/p')
	doc=$(e4defrag --free-space --max-move $((set_blocks * bs)) --json /mnt 2>&1 | tr -d ' \n')
	was=$(echo "$doc" | sed -n 's/.*"before":{[^}]*"largest_run":\([0-9]*\).*/\1/p')
	now=$(echo "$doc" | sed -n 's/.*"after":{[^}]*"largest_run":\([0-9]*\).*/\1/p')
	moved=$(echo "$doc" | sed -n 's/.*"moved_blocks":\([0-9]*\).*/\1/p')
	out "seed $seed free: --max-move $set_blocks blocks: largest free run $was -> $now blocks, ${moved:-0} blocks moved"
	[ -n "$now" ] || out "seed $seed free: $(echo "$doc" | head -c 600)"
	finish free
done
umount /tmp/crowd
