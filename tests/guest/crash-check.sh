#!/bin/sh
# Second boot of a crash scenario (see crash-run.sh): the journal replays
# at mount, the orphan donor is freed, the data must be intact and
# e2fsck -fn clean.
. /bin/lib.sh
DEV=/dev/vda
name=crash_at_$(sed -n 's/.*e4d\.killat=\([0-9]*\).*/\1/p' /proc/cmdline)_percent

if ! mount -t ext4 "$DEV" /mnt; then
	fail "$name" "mount after the crash failed"
	exit 0
fi
want=$(cat /mnt/victim.sha256)
got=$(sha /mnt/victim)
echo "== $name: extents $(cat /mnt/victim.extents) before, $(extent_count /mnt/victim) now"
umount /mnt
if [ "$want" != "$got" ]; then
	fail "$name" "data changed: $want -> $got"
elif ! e2fsck -fn "$DEV" > /tmp/fsck 2>&1; then
	fail "$name" "e2fsck: $(tail -5 /tmp/fsck | tr '\n' ';')"
else
	pass "$name"
fi
check_kernel_log "${name}_kernel_log_clean"
