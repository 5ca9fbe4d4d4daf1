#!/bin/bash
# make install into a scratch DESTDIR, and what an administrator relies on
# afterwards: the installed tree, the unit running our e4defrag (not the
# distribution's /usr/sbin/e4defrag), a sandbox that lets it write the
# files it moves, the unit's own command line run on a real image, the
# man page and completions generated from the CLI, make uninstall.
#   scripts/check-install.sh    (as root: the run on an image loop-mounts it)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
work=$(mktemp -d)
mnt=$work/mnt
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

root=$work/root
make -s install DESTDIR="$root" > "$work/install.out"
prefix=/usr/local
want="sbin/e4defrag share/man/man8/e4defrag.8 lib/systemd/system/e4defrag.service
lib/systemd/system/e4defrag.timer share/bash-completion/completions/e4defrag
share/zsh/site-functions/_e4defrag share/fish/vendor_completions.d/e4defrag.fish"
for f in $want; do
	[ -f "$root$prefix/$f" ] || fail "make install did not install $prefix/$f"
done
# The module too, when it is built (make test builds it before this).
if [ -f ext4_defrag.ko ]; then
	ko=$(find "$root/lib/modules" -name ext4_defrag.ko 2>/dev/null | head -1)
	[ -n "$ko" ] || fail "ext4_defrag.ko is built but make install did not install it"
	echo "check-install: module installed as ${ko#"$root"}" >&2
fi
echo "check-install: installed tree:" >&2
(cd "$root" && find . -type f | sort | sed 's/^\./  /') >&2

# The unit runs the e4defrag installed here, by its full path.
unit=$root$prefix/lib/systemd/system/e4defrag.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
prog=${exec_start%% *}
[ "$prog" = "$prefix/sbin/e4defrag" ] || fail "the unit runs $prog, not $prefix/sbin/e4defrag"
"$root$prog" --version | grep -qx "e4defrag [0-9.]*" ||
	fail "$prog --version: $("$root$prog" --version 2>&1)"

# Its sandbox must leave every file writable: a setting that makes paths
# read-only or hides them fails the files there (ProtectHome=read-only
# failed everything under /home and /root with EROFS). systemd is not
# PID 1 here (no systemd-run), so the effective settings are read.
bad=$(grep -E '^(ProtectHome=(yes|true|read-only|tmpfs)|ProtectSystem=(yes|true|full|strict)|ReadOnlyPaths=|InaccessiblePaths=|TemporaryFileSystem=|PrivateTmp=(yes|true)|ReadOnlyDirectories=|InaccessibleDirectories=)' "$unit" || true)
[ -z "$bad" ] || fail "the unit's sandbox keeps it from writing files it moves: $bad"
verify=$work/verify
mkdir -p "$verify"
sed "s|^ExecStart=$prog|ExecStart=$root$prog|" "$unit" > "$verify/e4defrag.service"
cp "$root$prefix/lib/systemd/system/e4defrag.timer" "$verify/"
if command -v systemd-analyze > /dev/null; then
	systemd-analyze verify "$verify/e4defrag.service" "$verify/e4defrag.timer"
fi

# The unit's command line, run by hand on a fragmented image (its
# filesystem in place of /, its state file in the scratch directory).
img=$work/fs.img
truncate -s 64M "$img"
mke2fs -q -F -t ext4 "$img"
mkdir -p "$mnt"
mount -o loop,nodelalloc "$img" "$mnt"
mkdir -p "$mnt/home/user"
for i in 0 1 2 3 4 5 6 7; do
	for f in a b; do
		dd if=/dev/urandom of="$mnt/home/user/$f" bs=64k count=1 seek=$i conv=notrunc,fsync status=none
	done
done
sum=$(sha256sum "$mnt/home/user/a" "$mnt/home/user/b")
# shellcheck disable=SC2086
args=$(echo "$exec_start" | sed -e "s|^$prog ||" -e "s| /\$| $mnt|" -e "s|/var/lib/e4defrag/resume|$work/resume|")
rc=0
# shellcheck disable=SC2086
"$root$prog" $args > "$work/run.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "the unit's command line ($prog $args) exited $rc: $(cat "$work/run.out")"
ext=$(filefrag "$mnt/home/user/a" | sed -n 's/.*: \([0-9]*\) extents\{0,1\} found/\1/p')
[ "$ext" = 1 ] || fail "the unit's run left home/user/a in $ext extents: $(cat "$work/run.out")"
[ "$(sha256sum "$mnt/home/user/a" "$mnt/home/user/b")" = "$sum" ] || fail "data changed"
umount "$mnt"
e2fsck -fn "$img" > "$work/fsck.out" 2>&1 || fail "e2fsck: $(cat "$work/fsck.out")"
echo "check-install: the unit's command line ran: $(tail -1 "$work/run.out")" >&2

# The man page and the completions come from the CLI definition: every
# long option of --help is in each.
man=$root$prefix/share/man/man8/e4defrag.8
head -5 "$man" | grep -q '^\.TH e4defrag 8' || fail "e4defrag.8 has no .TH e4defrag 8 line"
grep -q '^e4defrag \\- ext4 goal\\-directed online defragmenter' "$man" ||
	fail "e4defrag.8's NAME line: $(grep -A1 '^\.SH NAME' "$man" | tail -1)"
opts=$("$root$prog" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
for o in $opts; do
	o_man=$(echo "$o" | sed 's/-/\\\\-/g')
	grep -q -- "$o_man" "$man" || fail "$o is not in the man page"
	grep -q -- "$o" "$root$prefix/share/bash-completion/completions/e4defrag" ||
		fail "$o is not in the bash completion"
	grep -q -- "${o#--}" "$root$prefix/share/fish/vendor_completions.d/e4defrag.fish" ||
		fail "$o is not in the fish completion"
	grep -q -- "$o" "$root$prefix/share/zsh/site-functions/_e4defrag" ||
		fail "$o is not in the zsh completion"
done
bash -n "$root$prefix/share/bash-completion/completions/e4defrag" || fail "bash completion: syntax"
# Usage names the program, not the path it was run by.
usage=$("$root$prog" --bogus 2>&1 || true)
grep -q "^Usage: e4defrag " <<< "$usage" || fail "usage does not say 'Usage: e4defrag': $usage"
echo "check-install: man page and completions hold the $(echo "$opts" | wc -l) long options" >&2

make -s uninstall DESTDIR="$root"
left=$(find "$root" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "check-install: passed (make uninstall leaves no file)" >&2
