#!/bin/bash
# Host-side checks of `make test`: formatting, lints, the tool's cargo tests
# (unit tests and the ABI check against the C header), the benchmark's disk
# model, checkpatch on the
# kernel patches, and that the ioctl numbers collide with nothing in 6.12.
#   scripts/check-host.sh KDIR
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=$1
cd "$top"

# step NAME: the next check begins; the one before it gets its time
# (scripts/test.sh gathers these lines into its summary).
step_name= step_t0=
step() {
	local now
	now=$(date +%s)
	[ -z "$step_name" ] || echo "check: $step_name took $((now - step_t0)) s" >&2
	step_name=$1 step_t0=$now
	[ -z "$1" ] || echo "check: $1" >&2
}

step "rustfmt (module, kernel style)"
/usr/bin/rustfmt --check --edition 2021 --config-path "$kdir/.rustfmt.toml" rust/ext4_defrag_main.rs

step "cargo fmt, clippy (tool)"
manifest=(--manifest-path tools/e4defrag/Cargo.toml)
cargo fmt "${manifest[@]}" --check
cargo clippy "${manifest[@]}" --locked --all-targets -- -D warnings
cargo clippy "${manifest[@]}" --locked --all-targets --features test-hooks -- -D warnings
step "cargo test (tool: unit, ABI, tests/host_ext4.rs)"
# Release, as the test tool is built (overflow checks on, Cargo.toml):
# its target directory has every dependency and the host tests' binary
# compiled already, where a debug build compiled them all again (31 s).
# The tests' images on tmpfs, where their O_SYNC writes cost no disk
# flush (the host tests took 15 s on /tmp, 6 s there).
TMPDIR=$([ -d /dev/shm ] && echo /dev/shm || echo /tmp) \
	cargo test "${manifest[@]}" --locked --release --features test-hooks \
	--target-dir tools/e4defrag/target/test-hooks

step "cargo fmt, clippy (test drivers)"
cargo fmt --manifest-path tests/drivers/Cargo.toml --check
cargo clippy --manifest-path tests/drivers/Cargo.toml --target-dir tools/e4defrag/target \
	--locked --all-targets -- -D warnings

step "no test hook in the release binary"
! grep -q E4DEFRAG_TEST_STOP_BEFORE tools/e4defrag/target/release/e4defrag ||
	{ echo "check: the release e4defrag contains the tests' stop hook" >&2; exit 1; }

step "the seek-aware disk model (tests/test_diskmodel.py)"
python3 -m unittest tests/test_diskmodel.py

step "seeded layouts, stock backend (tests/layouts.sh)"
# The module's counterpart runs in QEMU (tests/guest/test-40-layouts.sh).
E4DEFRAG=$top/tools/e4defrag/target/release/e4defrag scripts/check-layouts.sh

step "make install, the installed unit and man page (scripts/check-install.sh)"
scripts/check-install.sh

step "the guest's scenario groups (tests/guest/groups)"
# Every scenario script has a line there, and every line a script.
scripts=$(cd tests/guest && ls test-[0-9]*.sh | sed 's/^test-\([0-9]*\)-.*/\1/' | grep -vx 99 | sort)
listed=$(awk '!/^#/ && NF { print $1 }' tests/guest/groups | sort)
if [ "$scripts" != "$listed" ]; then
	echo "check: tests/guest/groups lists $(echo $listed), the scripts are $(echo $scripts)" >&2
	exit 1
fi

step "checkpatch (patches/)"
(cd "$kdir" && scripts/checkpatch.pl --quiet "$top"/patches/*.patch)

step "ioctl numbers"
# Every 'f' command in the kernel's headers, as (nr) in decimal.
used=$(grep -rhoE "_IO(R|W|WR)?\('f', *(0x[0-9a-fA-F]+|[0-9]+)" \
	"$kdir/include/uapi" "$kdir/fs/ext4" |
	sed -E "s/.*'f', *//" | while read -r n; do echo $((n)); done | sort -un)
for nr in 0x60 0x61; do
	if grep -qx "$((nr))" <<< "$used"; then
		echo "check: ioctl 'f' $nr is already used in the kernel" >&2
		exit 1
	fi
done
step ""
echo "check: host checks passed" >&2
