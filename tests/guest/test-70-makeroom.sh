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
# same way.
. /bin/lib.sh
DEV=/dev/vda
lsmod | grep -q ext4_defrag || insmod $KO

# layout: a fresh filesystem crowded as described above.
layout() {
	umount /mnt 2>/dev/null
	mkfs.ext4 -q -F -b 4096 "$DEV" 64M && mount -t ext4 "$DEV" /mnt || return 1
	crowded_set /mnt
}

# state: every file's checksum, extents and first block, one per line.
state() {
	for f in /mnt/others/* /mnt/set/* /mnt/big; do
		[ -f "$f" ] || continue
		echo "$f $(sha "$f") $(extent_count "$f") $(first_pblk "$f")"
	done
}

# kept NAME: every file of /tmp/before has its data in /tmp/after, and
# no other file has more extents.
kept() {
	bad=$(awk 'NR == FNR { sum[$1] = $2; ext[$1] = $3; next }
		$2 != sum[$1] { print $1 " data"; next }
		$1 ~ /others/ && $3 > ext[$1] { print $1 " extents " ext[$1] " -> " $3 }' \
		/tmp/before /tmp/after)
	[ -z "$bad" ] && pass "$1" || fail "$1" "$bad"
}

echo "== make room: a set larger than any free run"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
# A running program among the others: it cannot be opened for writing
# (ETXTBSY), so the region must avoid it too.
cp /bin/busybox /mnt/others/busy
sync
/mnt/others/busy sleep 600 &
busy=$!
state > /tmp/before
e4defrag -r /mnt/set > /tmp/out 2>&1
line=$(grep "read-order discontinuities" /tmp/out)
echo "== $line"
state > /tmp/after
case $line in
*"discontinuities "*" -> 0,"*"room made at block"*) pass makeroom_set_packed ;;
*) fail makeroom_set_packed "$(tail -3 /tmp/out | tr '\n' ';')" ;;
esac
# Data: every file as it was. Others: no more extents than before;
# immutable ones where they were.
kept makeroom_data_and_extents_kept
moved_immutable=$(for f in $(lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }'); do
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
lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i
fsck_ok e2fsck_clean_after_makeroom

echo "== make room: --max-evacuate stops it"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
state | grep others > /tmp/before
e4defrag -r --max-evacuate 0.05 /mnt/set > /tmp/out 2>&1
state | grep others > /tmp/after
if grep -q "more than --max-evacuate allows" /tmp/out && cmp -s /tmp/before /tmp/after; then
	pass makeroom_max_evacuate_stops
else
	fail makeroom_max_evacuate_stops "$(grep -i "evacuate\|room" /tmp/out | head -2 | tr '\n' ';')"
fi
lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i
fsck_ok e2fsck_clean_after_max_evacuate

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
lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i
fsck_ok e2fsck_clean_after_makeroom_big_file

# Free-space consolidation on its own: a free run of 960 blocks (3840K)
# where the largest was 64 blocks, nothing else changed.
echo "== make room: --free-space"
layout || { fail makeroom_mkfs "mkfs or mount failed"; exit 0; }
state > /tmp/before
largest() { e4defrag -c --json /mnt | tr -d ' \n' | sed -n 's/.*"largest_run":\([0-9]*\).*/\1/p'; }
was=$(largest)
out=$(e4defrag --free-space --target-run 3840K /mnt 2>&1)
now=$(largest)
echo "$out" | grep "made at\|largest run" | sed 's/^/== /'
state > /tmp/after
if echo "$out" | grep -q "free run of 960 blocks made at block" && [ "$now" -ge 960 ]; then
	pass free_space_run_made
else
	fail free_space_run_made "largest run $was -> $now: $(echo "$out" | tail -3 | tr '\n' ';')"
fi
kept free_space_files_kept
lsattr /mnt/others | awk '$1 ~ /i/ { print $2 }' | xargs chattr -i
fsck_ok e2fsck_clean_after_free_space
