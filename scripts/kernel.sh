#!/bin/bash
# Build the patched test kernel once and cache it, keyed by everything that
# goes into it. Prints the kernel build directory (KDIR) on stdout.
#   scripts/kernel.sh          build if needed, print KDIR
#   scripts/kernel.sh --kdir   only print where KDIR is (or will be)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/env.sh"

src_tar=/usr/src/linux-source-6.12.tar.xz
key=$( {
	dpkg-query -W -f='${Version}\n' linux-source-6.12
	# What goes into the tree: each patch's diff, without its changelog
	# and its blob hashes, so that rewording a changelog costs no build.
	for p in "$top"/patches/*.patch; do
		sed -n '/^diff --git /,$p' "$p" | grep -v '^index [0-9a-f]*\.\.[0-9a-f]*' |
			sed '/^-- $/,$d'
	done
	cat "$top/patches/kernel.config"
	/usr/bin/rustc --version; clang-19 --version | head -1
	"$E4D_BINDGEN" --version
} 2>/dev/null | sha256sum | cut -c1-16)
kroot=$E4D_CACHE/kernel-$key
kdir=$kroot/linux-source-6.12

if [ "${1:-}" = "--kdir" ]; then
	echo "$kdir"
	exit 0
fi
if [ -f "$kroot/built" ]; then
	echo "$kdir"
	exit 0
fi

log=$E4D_CACHE/kernel-$key.log
echo "kernel: building $kdir (log: $log), about 8 minutes on 2 cores" >&2
rm -rf "$kroot"
mkdir -p "$kroot"
start=$(date +%s)
{
	tar -C "$kroot" -xf "$src_tar"
	cd "$kdir"
	for p in "$top"/patches/*.patch; do
		patch -p1 --quiet < "$p"
	done
	# shellcheck disable=SC2086
	make $E4D_KMAKE allnoconfig
	# shellcheck disable=SC2086
	scripts/kconfig/merge_config.sh -m .config "$top/patches/kernel.config"
	# shellcheck disable=SC2086
	make $E4D_KMAKE olddefconfig
} > "$log" 2>&1
cd "$kdir"
# merge_config only warns when a symbol cannot be set; refuse to go on.
bad=0
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) ;; *) continue ;; esac
	grep -qx "$line" .config || { echo "kernel: $line did not stick" >&2; bad=1; }
done < "$top/patches/kernel.config"
[ $bad -eq 0 ] || exit 1
# shellcheck disable=SC2086
if ! make $E4D_KMAKE -j"$(nproc)" all >> "$log" 2>&1; then
	tail -40 "$log" >&2
	exit 1
fi
touch "$kroot/built"
# Older builds are dead weight (about 2 GB each): keep only this one.
find "$E4D_CACHE" -maxdepth 1 -name 'kernel-*' ! -name "kernel-$key*" -exec rm -rf {} +
echo "kernel: built in $(( $(date +%s) - start )) s" >&2
echo "$kdir"
