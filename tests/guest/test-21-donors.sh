#!/bin/sh
# Donors: a lent donor (EXT4_DEFRAG_DONOR_FD) and the checks it gets,
# the donor's directory and flags (chattr +j, a file reopened by handle, a
# single-file bind mount, 32-bit callers), lent donors claimed per donor.
# Run in the guest by init (after test-10-fibmap.sh, which leaves the
# module loaded). One "E4D-RESULT" line per check.
. /bin/lib.sh
DEV=/dev/vda

lsmod | grep -q ext4_defrag || insmod $KO

fresh_fs || { fail donors_mkfs "mkfs or mount failed"; exit 0; }
echo "== defrag: a lent donor (EXT4_DEFRAG_DONOR_FD)"
make_fragmented /mnt/lent 64
sum=$(sha /mnt/lent) ext=$(extent_count /mnt/lent)
touch /mnt/linked
unchanged() { [ "$(sha /mnt/lent)" = "$sum" ] && [ "$(extent_count /mnt/lent)" = "$ext" ]; }
r=$(fraggen defrag-lent /mnt/lent /mnt/linked)
[ "$r" = EINVAL ] && unchanged && pass lent_donor_linked_einval ||
	fail lent_donor_linked_einval "$r"
r=$(fraggen defrag-lent /mnt/lent tmpfile-prealloc)
# (Its 64 KiB preallocated past its end stay: the caller's.)
[ "$r" = "EINVAL held 65536" ] && unchanged && pass lent_donor_blocks_past_end_einval ||
	fail lent_donor_blocks_past_end_einval "$r"
# A lent donor gets the checks a made one gets, before anything is
# allocated in it: set-user-ID refused with EINVAL, the donor holding
# nothing (before this round: planned blocks allocated, then EINVAL from
# ext4's move, and the blocks kept in the donor).
r=$(fraggen defrag-lent /mnt/lent tmpfile-setuid)
[ "$r" = "EINVAL held 0" ] && unchanged && pass lent_donor_setuid_einval_nothing_allocated ||
	fail lent_donor_setuid_einval_nothing_allocated "$r"
# A donor with data of its own: the file's blocks go past its end, and
# it keeps the old ones (until closed) next to its 4 KiB, untouched.
r=$(fraggen defrag-lent /mnt/lent tmpfile-data)
echo "== lent donor: $r, extents $ext -> $(extent_count /mnt/lent)"
echo 3 > /proc/sys/vm/drop_caches
[ "$r" = "ok $((64 * 4096 + 4096)) intact" ] && [ "$(extent_count /mnt/lent)" -eq 1 ] &&
	[ "$(sha /mnt/lent)" = "$sum" ] &&
	pass lent_donor_used_and_kept || fail lent_donor_used_and_kept "$r"
fsck_ok e2fsck_clean_after_lent_donor
mount -t ext4 "$DEV" /mnt || { fail lent_donor_remount "mount failed"; exit 0; }

# The donor is made in the file's directory and inherited its flags: with
# nodelalloc, a directory's data journaling (chattr +j) made
# ext4_move_extents() refuse the donor (EOPNOTSUPP) though the file, made
# before the flag, is not journaled. The donor drops those flags now.
echo "== defrag: the donor's directory journals data (chattr +j)"
umount /mnt 2>/dev/null
if mkfs.ext4 -q -F -b 4096 "$DEV" && mount -t ext4 -o nodelalloc "$DEV" /mnt; then
	mkdir /mnt/j
	make_fragmented /mnt/j/f 24
	chattr +j /mnt/j
	sum=$(sha /mnt/j/f) before=$(extent_count /mnt/j/f)
	out=$(e4defrag /mnt/j/f 2>&1)
	if [ "$(sha /mnt/j/f)" != "$sum" ]; then
		fail donor_drops_inherited_journal_flag "data changed"
	elif [ "$(extent_count /mnt/j/f)" -ne 1 ]; then
		fail donor_drops_inherited_journal_flag "$before -> $(extent_count /mnt/j/f): $out"
	else
		pass donor_drops_inherited_journal_flag
	fi
	# A donor lent from the same directory journals its data (inherited):
	# refused with EOPNOTSUPP before anything is allocated in it (ext4's
	# move refused it too, after the allocation).
	make_fragmented /mnt/j/g 8
	chattr -j /mnt/j/g
	r=$(fraggen defrag-lent /mnt/j/g tmpfile)
	[ "$r" = "EOPNOTSUPP held 0" ] && pass lent_donor_journal_data_eopnotsupp ||
		fail lent_donor_journal_data_eopnotsupp "$r"
	# A file reopened by handle after the dentry cache was dropped has a
	# disconnected dentry, its own parent: the donor goes to the mount's
	# root directory (it failed with EACCES: a regular file as directory).
	# (Outside /mnt/j: a file made there now journals its data itself.)
	make_fragmented /mnt/h 24
	before=$(extent_count /mnt/h) sum=$(sha /mnt/h)
	out=$(fraggen defrag-by-handle /mnt/h)
	if [ "$out" = "ok $before -> 1" ] && [ "$(sha /mnt/h)" = "$sum" ]; then
		pass defrag_by_handle_disconnected_dentry
	else
		fail defrag_by_handle_disconnected_dentry "$out"
	fi
	# A single-file bind mount: the file is its mount's root, whose
	# parent lies outside the mount. No donor there: EXDEV, the file
	# untouched (before the fix the donor was made in /mnt, a directory
	# the caller may not reach through that mount).
	make_fragmented /mnt/bm 8
	before=$(extent_count /mnt/bm) sum=$(sha /mnt/bm)
	touch /tmp/bm && mount --bind /mnt/bm /tmp/bm
	out=$(e4defrag --backend module /tmp/bm 2>&1)
	umount /tmp/bm
	if echo "$out" | grep -q "EXDEV.*single-file bind mount" &&
		[ "$(extent_count /mnt/bm)" = "$before" ] && [ "$(sha /mnt/bm)" = "$sum" ]; then
		pass donor_refused_for_a_single_file_bind_mount
	else
		fail donor_refused_for_a_single_file_bind_mount "$out"
	fi
	# The same calls from a 32-bit program, through ext4's compat_ioctl
	# (built when the host has a 32-bit C library: gcc-multilib).
	if require_cmd compat32 compat_ioctl "no 32-bit compiler on the host (gcc-multilib)"; then
		make_fragmented /mnt/c 24
		before=$(extent_count /mnt/c) sum=$(sha /mnt/c) pblk=$(first_pblk /mnt/c)
		out=$(compat32 /mnt/c)
		echo "== compat32: $(echo "$out" | tr '\n' ' ')"
		if [ "$(echo "$out" | head -1)" != "fibmap $pblk 1" ]; then
			fail compat_ioctl_fibmap "$out (want fibmap $pblk 1)"
		else
			pass compat_ioctl_fibmap
		fi
		if ! echo "$out" | grep -qx "defrag [0-9]* $before 1" || [ "$(sha /mnt/c)" != "$sum" ]; then
			fail compat_ioctl_defrag "$out"
		else
			pass compat_ioctl_defrag
		fi
	fi
	fsck_ok e2fsck_clean_after_donor_flags
else
	fail donor_flags_mkfs "mkfs or mount failed"
fi

mount -t ext4 -o nodelalloc "$DEV" /mnt || { fail donor_claims_mount "mount failed"; exit 0; }
# A lent donor is claimed per donor for the call (patch 0009): a call
# through another donor runs beside it (before: one global flag, EBUSY);
# the same donor lent to a second call, EXT4_IOC_MOVE_EXT through it, or
# a defrag of the donor itself gets EBUSY; its owner truncating it meanwhile
# leaves the file whole. The long call moves 2000 two-block stretches (4000
# extents, a hole after each stretch) a page per step. A race in which
# the long call ended first proves nothing ("overlap no"): it runs again
# with a file twice as long, three times at most (on a loaded machine the
# second call's planning outlived 2000 stretches).
echo "== defrag: lent donors claimed per donor"
for what in own-donor same-donor move-ext defrag-donor truncate; do
	len=2000 try=1
	while :; do
		rm -f /mnt/long /mnt/other
		fraggen stretches /mnt/long $len
		make_fragmented /mnt/other 16
		sl=$(sha /mnt/long) so=$(sha /mnt/other)
		echo "== long: $(extent_count /mnt/long) extents, other: $(extent_count /mnt/other)"
		r=$(fraggen donor-race /mnt/long /mnt/other $what)
		echo "== lent donor race, $what, $len stretches: $r"
		case $r in *"overlap yes") break ;; esac
		[ $try -lt 3 ] || break
		try=$((try + 1)) len=$((len * 2))
	done
	case $what in
	own-donor) want="long ok other ok overlap yes" ;;
	same-donor | move-ext | defrag-donor) want="long ok other EBUSY overlap yes" ;;
	truncate) want="other ok overlap yes" ;;
	esac
	case $r in *"$want") ok=1 ;; *) ok=0 ;; esac
	[ "$what" = truncate ] && case $r in "long ok "* | "long EINVAL "* | "long ENODATA "*) ;; *) ok=0 ;; esac
	[ $ok = 1 ] && [ "$(sha /mnt/long)" = "$sl" ] && [ "$(sha /mnt/other)" = "$so" ] &&
		pass "lent_donor_claim_$what" || fail "lent_donor_claim_$what" "$r (wanted ...$want)"
done
fsck_ok e2fsck_clean_after_donor_claims
