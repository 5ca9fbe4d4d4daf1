#!/bin/sh
# Making room (module backend): a -r set larger than any free run. The
# filesystem is filled with 64-block files ("others"), every other one is
# deleted (64-block holes), and the set's 40 files of 24 blocks are
# written into the holes. e4defrag -r must clear a region (moving other
# files whole into holes elsewhere), put the set there with no read-order
# jump, route around immutable files and a running program's file, leave
# every file's data and every other file's extent count as they were, and
# keep e2fsck clean; with a tight --max-evacuate it must stop and say so,
# moving nothing. A file that no free run holds makes room for itself the
# same way. --free-space makes a run of a given size, or the largest one a
# --max-move budget can make; an interrupted clearing loses nothing.
. /bin/lib.sh
DEV=/dev/vda
lsmod | grep -q ext4_defrag || insmod $KO

# layout: a fresh filesystem crowded as described above; layout_done
# NAME: its immutable files unlocked, unmounted, e2fsck -fn clean.
layout() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F -b 4096 "$DEV" 64M && mount -t ext4 "$DEV" /mnt || return 1
	crowded_set /mnt
}
layout_done() {
	lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i
	fsck_ok "$1"
}

# state: every file's checksum, extents, first block and mtime,ctime (ns),
# one per line (four calls for all files: one per file costs minutes
# under TCG).
state() {
	files=$(ls -d /mnt/others/* /mnt/set/* /mnt/big 2>/dev/null)
	sha256sum $files | awk '{ print $2, $1 }' > /tmp/st.sum
	e4defrag -c -v $files | awk '$2 ~ /^[0-9]+\/[0-9]+$/ { split($2, a, "/"); print $1, a[1] }' > /tmp/st.ext
	stat -c '%n %y %z' $files | awk '{ print $1, $2 "T" $3 "," $5 "T" $6 }' > /tmp/st.time
	e4defrag --backend module --map $files |
		sed -n 's/^\(.*\): block 0: physical \([0-9]*\),.*/\1 \2/p' > /tmp/st.map
	awk 'FILENAME == ARGV[1] { sum[$1] = $2; next } FILENAME == ARGV[2] { ext[$1] = $2; next }
		FILENAME == ARGV[3] { t[$1] = $2; next }
		{ print $1, sum[$1], ext[$1], $2, t[$1] }' /tmp/st.sum /tmp/st.ext /tmp/st.time /tmp/st.map | sort
}

# colocate NAME PATTERN: e4defrag -r of the set, its line printed, the
# state after in /tmp/after; NAME passes when the line matches PATTERN (a
# case pattern, no quotes inside).
colocate() {
	e4defrag -r /mnt/set > /tmp/out 2>&1
	line=$(grep "read-order discontinuities" /tmp/out)
	echo "== $line"
	state > /tmp/after
	case $line in
	$2) pass "$1" ;;
	*) fail "$1" "$(tail -3 /tmp/out | tr '\n' ';')" ;;
	esac
}

# kept NAME: every file of /tmp/before has its data and timestamps in
# /tmp/after, and no other file has more extents.
kept() {
	bad=$(awk 'NR == FNR { sum[$1] = $2; ext[$1] = $3; t[$1] = $5; next }
		$2 != sum[$1] { print $1 " data"; next }
		NF != 5 || $5 == "" { print $1 " no timestamps in the state"; next }
		$5 != t[$1] { print $1 " mtime,ctime " t[$1] " -> " $5; next }
		$1 ~ /others/ && $3 > ext[$1] { print $1 " extents " ext[$1] " -> " $3 }' \
		/tmp/before /tmp/after)
	[ -z "$bad" ] && pass "$1" || fail "$1" "$bad"
}

echo "== make room: a set larger than any free run"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
# Files with journaled data (chattr +j) among the others: the module does
# not move them (EOPNOTSUPP), so the region must avoid them too.
j=3
while [ -f /mnt/others/o$j ]; do
	chattr +j /mnt/others/o$j
	j=$((j + 30))
done
# A running program among the others: it cannot be opened for writing
# (ETXTBSY), so the region must avoid it too.
cp /bin/busybox /mnt/others/busy
sync
/mnt/others/busy sleep 600 &
busy=$!
# First with a tight --max-evacuate: it must stop, say so and move no
# other file.
state | grep others > /tmp/before
e4defrag -r --max-evacuate 0.05 /mnt/set > /tmp/out 2>&1
state | grep others > /tmp/after
if grep -q "more than --max-evacuate allows" /tmp/out && cmp -s /tmp/before /tmp/after; then
	pass makeroom_max_evacuate_stops
else
	fail makeroom_max_evacuate_stops "$(grep -i "evacuate\|room" /tmp/out | head -2 | tr '\n' ';')"
fi
state > /tmp/before
colocate makeroom_set_packed '*discontinuities * -> 0,*room made at block*'
# Data: every file as it was. Others: no more extents than before;
# immutable and data-journaled ones where they were.
kept makeroom_data_and_extents_kept
moved_immutable=$(for f in $(lsattr /mnt/others | awk '$1 ~ /[ij]/ { print $2 }'); do
	grep "^$f " /tmp/before | cut -d' ' -f4 > /tmp/a
	grep "^$f " /tmp/after | cut -d' ' -f4 > /tmp/b
	cmp -s /tmp/a /tmp/b || echo "$f"
done)
[ -z "$moved_immutable" ] && pass makeroom_immutable_routed_around ||
	fail makeroom_immutable_routed_around "$moved_immutable"
if [ "$(grep "^/mnt/others/busy " /tmp/before | cut -d' ' -f4)" = \
	"$(grep "^/mnt/others/busy " /tmp/after | cut -d' ' -f4)" ]; then
	pass makeroom_busy_file_routed_around
else
	fail makeroom_busy_file_routed_around "the running program's file moved"
fi
kill $busy
wait $busy 2>/dev/null
layout_done e2fsck_clean_after_makeroom

# A file no free run holds, though the free space does: it makes room for
# itself (its own blocks stay obstacles: nothing holds it elsewhere) and
# ends in one extent.
echo "== make room: a file larger than any free run"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
rm -rf /mnt/set
dd if=/dev/urandom of=/mnt/big bs=4096 count=1200 conv=fsync 2>/dev/null
state > /tmp/before
out=$(e4defrag /mnt/big 2>&1)
echo "== $out"
state > /tmp/after
if [ "$(extent_count /mnt/big)" -eq 1 ] && echo "$out" | grep -q "room made at block"; then
	pass makeroom_big_file_one_extent
else
	fail makeroom_big_file_one_extent "$out"
fi
kept makeroom_big_file_others_kept
layout_done e2fsck_clean_after_makeroom_big_file

# Free-space consolidation on its own. With a budget alone: the largest
# free run that moving at most 1 MiB (256 blocks) of files can make, as
# one JSON document; then a run of 960 blocks (3840K) where the largest
# was 64; nothing else changed.
echo "== make room: --free-space"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
state > /tmp/before
largest() { e4defrag -c --json /mnt | tr -d ' \n' | sed -n 's/.*"largest_run":\([0-9]*\).*/\1/p'; }
doc=$(e4defrag --free-space --max-move 1M --json /mnt 2>/tmp/err | tr -d ' \n')
field() { echo "$doc" | sed -n "s/.*\"$1\":{[^}]*\"largest_run\":\([0-9]*\).*/\1/p"; }
was=$(field before) now=$(field after)
moved=$(echo "$doc" | sed -n 's/.*"moved_blocks":\([0-9]*\).*/\1/p')
echo "== --max-move 1M: largest run $was -> $now, ${moved:-?} blocks moved"
if echo "$doc" | grep -q '"outcome":"made"' && [ "$now" -gt "$was" ] &&
	[ "${moved:-999}" -le 256 ] && [ "$now" -eq "$(largest)" ]; then
	pass free_space_max_move
else
	fail free_space_max_move "largest $was -> $now, moved ${moved:-?}: $(head -c 300 /tmp/err)"
fi
out=$(e4defrag --free-space --target-run 3840K /mnt 2>&1)
now=$(largest)
echo "$out" | grep "made at\|largest run" | sed 's/^/== /'
state > /tmp/after
if echo "$out" | grep -q "free run of 960 blocks made at block" && [ "$now" -ge 960 ]; then
	pass free_space_run_made
else
	fail free_space_run_made "largest run -> $now: $(echo "$out" | tail -3 | tr '\n' ';')"
fi
kept free_space_files_kept
layout_done e2fsck_clean_after_free_space

# Interrupted while files are moved out of the region: once stopped just
# before the third move (exactly two files moved), then at three moments
# of a run. Each time every file holds its data, no file has more
# extents and e2fsck is clean; a last run completes the set. SIGTERM, not
# SIGINT: a shell without job control starts background commands with
# SIGINT ignored; both end the tool the same way (default action).
echo "== make room: interrupted"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
state > /tmp/before
E4DEFRAG_TEST_STOP_BEFORE=evacuate:2 e4defrag -r /mnt/set > /tmp/out 2>&1 &
pid=$!
n=0
while [ "$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null)" != T ] && kill -0 $pid 2>/dev/null &&
	[ $n -lt 600 ]; do
	sleep 0.1
	n=$((n + 1))
done
kill -TERM $pid
kill -CONT $pid
wait $pid
rc=$?
state > /tmp/after
moved=$(awk 'NR == FNR { at[$1] = $4; next } $4 != at[$1]' /tmp/before /tmp/after | wc -l)
echo "== stopped before the third move, SIGTERM: exit $rc, $moved files moved"
[ $rc -eq 143 ] && [ "$moved" -eq 2 ] && pass makeroom_interrupted_between_moves ||
	fail makeroom_interrupted_between_moves "exit $rc, $moved files moved: $(tail -2 /tmp/out | tr '\n' ';')"
kept makeroom_interrupted_between_moves_kept
for delay in 0.2 0.5 1; do
	e4defrag -r /mnt/set > /tmp/out 2>&1 &
	pid=$!
	sleep $delay
	kill -TERM $pid 2>/dev/null
	wait $pid
	echo "== SIGTERM after $delay s: exit $?"
	state > /tmp/after
	kept "makeroom_interrupted_after_${delay}s_kept"
done
colocate makeroom_after_interruptions_completes '*discontinuities * -> 0,*'
kept makeroom_after_interruptions_kept
layout_done e2fsck_clean_after_interruptions
