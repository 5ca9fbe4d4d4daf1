#!/bin/sh
# Property test of one seeded layout (tests/drivers/src/bin/fraggen.rs),
# run by the host checks (stock backend) and in the QEMU guest (module and
# stock backend on two copies of the same image). POSIX sh: busybox in
# the guest, bash on the host.
#   layouts.sh SEED BACKEND...   BACKEND: module | move-ext
#   layouts.sh --prepare SEED    only make the image and its records
# Environment: E4DEFRAG, FRAGGEN (the binaries), WORK (a scratch
# directory on a filesystem with room for two sparse images).
# --prepare leaves $WORK/layout-SEED.img (the image), .sums (the data's
# checksums) and .before (extents per big file) and does nothing else:
# tests/qemu.py makes the guest's images so on the host, at native speed,
# and hands each to the guest as two virtio disks (one per backend, their
# writes kept apart). LAYOUT_DEVS="module:DEV move-ext:DEV" then names
# the disks, and the records are read from $WORK: no image is made.
# Prints one "E4D-RESULT: PASS|FAIL layout-SEED-CHECK[: why]" line per
# check (the form the QEMU runner counts); a failure names the seed, so
#   layouts.sh SEED BACKEND
# replays it. Each backend is checked for: no error on any file, data
# intact, per-file extents never more than before, -r read-order
# discontinuities never more than before, e2fsck -fn clean. With both
# backends: module extents <= move-ext extents per file and module -r
# discontinuities <= move-ext's; and the module places a file at a goal
# exactly where the placement contract says (fraggen expect).
set -u
prepare=no
if [ "$1" = --prepare ]; then
	prepare=yes
	shift
fi
seed=$1
shift
E4DEFRAG=${E4DEFRAG:-e4defrag}
FRAGGEN=${FRAGGEN:-fraggen}
WORK=${WORK:-/tmp}
LAYOUT_DEVS=${LAYOUT_DEVS:-}
name=layout-$seed

pass() { echo "E4D-RESULT: PASS $name-$1"; }
fail() { echo "E4D-RESULT: FAIL $name-$1: $2 (replay: tests/layouts.sh $seed $backends)"; }
backends="$*"

set -- $($FRAGGEN params "$seed")
bs=$1 mib=$2
img=$WORK/layout-$seed.img
rec=$WORK/layout-$seed
mnt=$WORK/layout-$seed.mnt
mkdir -p "$mnt"
# mb_optimize_scan on, as on non-rotational disks: the allocator picks
# groups from per-order lists, which the plan must not depend on.
opts=nodelalloc,noinit_itable,mb_optimize_scan=1
# mount_img IMG: mount IMG (a disk, or an image through a loop device:
# busybox mount -o loop is not reliable with extra options) on $mnt;
# umount_img undoes it.
mount_img() {
	loopdev=
	if [ -b "$1" ]; then
		mount -t ext4 -o $opts "$1" "$mnt"
	else
		loopdev=$(losetup -f) && losetup "$loopdev" "$1" &&
			mount -t ext4 -o $opts "$loopdev" "$mnt"
	fi
}
umount_img() {
	umount "$mnt"
	[ -z "$loopdev" ] || losetup -d "$loopdev"
}
# backend_dev B: the prepared disk of backend B, or nothing.
backend_dev() {
	for d in $LAYOUT_DEVS; do
		[ "${d%%:*}" = "$1" ] && echo "${d#*:}"
	done
}
# extents_of_big: "big/NAME EXTENTS" per big file; extents as ext4 counts
# them (extent records: runs that continue each other logically and
# physically), from e4defrag -c.
extents_of_big() {
	for f in "$mnt"/big/*; do
		echo "big/${f##*/} $($E4DEFRAG -c -v "$f" |
			awk -v f="$f" '$1 == f { split($2, a, "/"); print a[1]; exit }')"
	done
}
# make_image: the seed's image and its records: the files to defragment
# one by one (big/) and the set for -r (boot/), their sums, the big
# files' extents.
make_image() {
	rm -f "$img"
	truncate -s "${mib}M" "$img" 2>/dev/null ||
		dd if=/dev/zero of="$img" bs=1M count=0 seek="$mib" 2>/dev/null
	mkfs.ext4 -q -F -b "$bs" -E lazy_itable_init=1,nodiscard "$img" ||
		{ fail mkfs "mke2fs failed"; return 1; }
	mount_img "$img" || { fail mount "mount failed"; return 1; }
	echo "== $($FRAGGEN build "$seed" "$mnt" 2>&1)"
	(cd "$mnt" && find big boot -type f | sort > "$rec.files" &&
		xargs sha256sum < "$rec.files" > "$rec.sums")
	extents_of_big > "$rec.before"
	umount_img
}

if [ -n "$LAYOUT_DEVS" ]; then
	[ -s "$rec.sums" ] && [ -s "$rec.before" ] ||
		{ fail records "no $rec.sums or $rec.before beside the prepared disks"; exit 0; }
else
	make_image || exit 0
	[ $prepare = no ] || exit 0
fi
# uptime_s: seconds since boot, to 10 ms; elapsed A B: B - A.
uptime_s() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# run_backend B: per-file defrag of big/*, then -r boot; records per-file
# extents and the set's discontinuities in $WORK/layout.B.*.
run_backend() {
	b=$1
	# Each backend works on its own copy of the untouched image: its
	# prepared disk, or a copy made only now, so that two copies never
	# take room at once.
	bimg=$(backend_dev "$b")
	if [ -z "$bimg" ]; then
		bimg=$WORK/layout-$seed-$b.img
		$FRAGGEN copy "$img" "$bimg" || { fail "$b-copy" "cannot copy the image to $WORK"; return; }
	fi
	mount_img "$bimg" || { fail "$b-mount" "mount failed"; return; }
	# Each phase is timed from a clean page cache and journal, so that it
	# does not pay for writing back what the phase before left dirty (the
	# module's -r starts with syncfs(), MOVE_EXT's does not).
	sync -f "$mnt"
	start=$(uptime_s)
	if out=$($E4DEFRAG --backend "$b" "$mnt"/big/* 2>&1); then
		pass "$b-files-no-error"
	else
		fail "$b-files-no-error" "$(echo "$out" | grep -v '^$' | tail -3)"
	fi
	echo "== $b: $(echo "$out" | tail -1)"
	sync -f "$mnt"
	mid=$(uptime_s)
	if rout=$($E4DEFRAG --backend "$b" -r "$mnt"/boot 2>&1); then
		pass "$b-set-no-error"
	else
		fail "$b-set-no-error" "$(echo "$rout" | grep -v '^$' | tail -3)"
	fi
	end=$(uptime_s)
	echo "== $b: $(echo "$rout" | grep 'read-order') ($(elapsed "$start" "$mid") s files and their write-back, $(elapsed "$mid" "$end") s set)"
	echo "$rout" | sed -n 's/.*discontinuities \([0-9]*\) -> \([0-9]*\).*/\1 \2/p' | head -1 \
		> "$WORK/layout.$b.set"
	read -r dbefore dafter < "$WORK/layout.$b.set" || { dbefore=0; dafter=-1; }
	if [ "$dafter" -ge 0 ] && [ "$dafter" -le "$dbefore" ]; then
		pass "$b-set-not-worse"
	else
		fail "$b-set-not-worse" "discontinuities $dbefore -> $dafter"
	fi
	extents_of_big > "$WORK/layout.$b.after"
	worse=$(paste -d' ' "$rec.before" "$WORK/layout.$b.after" |
		awk '$4 > $2 { print $1 ": " $2 " -> " $4 }')
	[ -z "$worse" ] && pass "$b-files-not-worse" || fail "$b-files-not-worse" "$worse"
	echo "== $b extents: $(paste -d' ' "$rec.before" "$WORK/layout.$b.after" |
		awk '{ printf "%s %s -> %s; ", $1, $2, $4 }')"
	if [ "$b" = module ]; then
		check_goal
	fi
	sync -f "$mnt"
	echo 3 > /proc/sys/vm/drop_caches
	if (cd "$mnt" && sha256sum -c "$rec.sums" > /dev/null 2>&1); then
		pass "$b-data-intact"
	else
		fail "$b-data-intact" "checksums differ"
	fi
	umount_img
	if e2fsck -fn "$bimg" > "$WORK/layout.fsck" 2>&1; then
		pass "$b-e2fsck"
	else
		fail "$b-e2fsck" "$(grep -v '^e2fsck\|^Pass' "$WORK/layout.fsck" | head -3)"
	fi
	[ -b "$bimg" ] || rm -f "$bimg"
}

# check_goal: a file placed at a goal lands where the contract says: at
# the goal when the free run there holds it (a goal inside the largest
# free run), else the nearest run that does (a seeded goal); with
# --goal-only and no room at the goal, ENOSPC and nothing changed.
check_goal() {
	blocks=$(( (mib << 20) / bs ))
	for g in fit $(( (seed * 7919) % (blocks - 1) + 1 )); do
		f=$(ls "$mnt"/big/* | tail -1)
		[ "$g" = fit ] && f=$(ls "$mnt"/big/* | head -2 | tail -1)
		# Blocks freed just before (the set's donor closed, the last
		# goal's donor dropped) count as free for the allocator only once
		# the journal commits them: commit now, or the expectation below
		# and the module could see different free space.
		sync -f "$mnt"
		set -- $($FRAGGEN expect "$f" "$g")
		goal=$1
		if [ "$2" = none ]; then
			echo "== goal $g: no free run holds $f"
			continue
		fi
		want_start=$2 want_dist=$3
		if [ "$want_dist" -ne 0 ]; then
			check_goal_only "$f" "$goal"
		fi
		first() { filefrag -e "$1" | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }'; }
		was=$(first "$f") ext_was=$($E4DEFRAG -c -v "$f" | awk -v f="$f" '$1 == f { print $2 }')
		$E4DEFRAG --backend module --goal "$goal" "$f" > "$WORK/layout.out" 2>&1
		got=$(first "$f")
		echo "== goal $goal: expected start $want_start (distance $want_dist), got $got"
		# The improvement rule keeps a file that is already as near to
		# the goal in as few extents: then it must not have moved.
		dist_was=$((was > goal ? was - goal : goal - was))
		if [ "$got" = "$want_start" ]; then
			pass "module-goal-placement-$g"
		elif [ "$got" = "$was" ] && [ "$dist_was" -le "$want_dist" ] &&
			[ "$ext_was" = "$($E4DEFRAG -c -v "$f" | awk -v f="$f" '$1 == f { print $2 }')" ] &&
			grep -q "moved 0 blocks" "$WORK/layout.out"; then
			echo "== goal $goal: already $dist_was blocks from it, left in place"
			pass "module-goal-placement-$g"
		else
			fail "module-goal-placement-$g" "goal $goal: expected $want_start, got $got: $(cat "$WORK/layout.out")"
		fi
	done
}

# check_goal_only FILE GOAL: no room at GOAL: ENOSPC, file unchanged.
check_goal_only() {
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	map=$(filefrag -e "$1" | md5sum)
	if $E4DEFRAG --backend module --goal "$2" --goal-only "$1" > "$WORK/layout.out" 2>&1; then
		fail module-goal-only-enospc "no error for goal $2"
	elif grep -q ENOSPC "$WORK/layout.out" &&
		[ "$(filefrag -e "$1" | md5sum)" = "$map" ] &&
		[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sum" ]; then
		pass module-goal-only-enospc
	else
		fail module-goal-only-enospc "$(cat "$WORK/layout.out")"
	fi
}

for b in $backends; do
	run_backend "$b"
done

# The module against the stock path on the same layout.
both=no
echo " $backends " | grep -q " module " && echo " $backends " | grep -q " move-ext " && both=yes
if [ $both = yes ]; then
	worse=$(paste -d' ' "$WORK/layout.module.after" "$WORK/layout.move-ext.after" |
		awk '$2 > $4 { print $1 ": module " $2 ", move-ext " $4 }')
	[ -z "$worse" ] && pass module-files-vs-move-ext || fail module-files-vs-move-ext "$worse"
	read -r _ dm < "$WORK/layout.module.set"
	read -r _ dx < "$WORK/layout.move-ext.set"
	if [ "${dm:-1}" -le "${dx:-0}" ]; then
		pass module-set-vs-move-ext
	else
		fail module-set-vs-move-ext "discontinuities module $dm, move-ext $dx"
	fi
fi
rm -f "$img"
rmdir "$mnt" 2>/dev/null
exit 0
