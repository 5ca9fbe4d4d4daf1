#!/bin/bash
# make test: each phase through make, timed. Prints a table of the phases
# and the total at the end (also on failure), and warns when a warm run
# (the kernel was cached) took longer than the suite's budget of 12
# minutes (Documentation/ext4-defrag/testing.rst). Fails as soon as a
# phase fails, as make would.
#   scripts/test.sh [QEMU_ARGS...]   (extra arguments for tests/qemu.py)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
budget=720
start=$(date +%s)
phases=()
kernel_built=no

summary() {
	local total=$(( $(date +%s) - start ))
	echo "make test: phases (s):"
	printf '  %s\n' "${phases[@]}"
	echo "make test: total ${total} s ($((total / 60)) min $((total % 60)) s)," \
		"kernel built in this run: $kernel_built"
	if [ "$kernel_built" = no ] && [ $total -gt $budget ]; then
		echo "make test: WARNING: a warm run over the budget of $((budget / 60)) min" \
			"(testing.rst)"
	fi
}

# phase NAME CMD...: runs CMD, records its time under NAME; stops on failure.
phase() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	phases+=("$(printf '%-12s %5d' "$name" $(( $(date +%s) - t0 )))")
	if [ $rc -ne 0 ]; then
		echo "make test: phase $name failed (exit $rc)"
		summary
		exit $rc
	fi
}

phase deps make --no-print-directory deps
[ -f "$(dirname "$(scripts/kernel.sh --kdir)")/built" ] || kernel_built=yes
phase kernel make --no-print-directory kernel
phase module make --no-print-directory module
phase tools make --no-print-directory tool test-tool
phase check-host make --no-print-directory check-host
phase initramfs make --no-print-directory initramfs
# The test boot and the power-cut boot with its replay (tests/qemu.py
# prints each one's time, and each guest script's).
phase guest python3 tests/qemu.py --kernel "$(scripts/kernel.sh --kdir)/arch/x86/boot/bzImage" \
	--initrd build/initramfs.cpio.gz --mode test --log build/qemu-test.log "$@"
phase bench-quick make --no-print-directory bench-quick
summary
