#!/bin/bash
# make test: each phase through make, timed. The builds run one after the
# other; then two lanes run side by side, one per core (alone, a guest's
# second vCPU takes some of the other core too, so each lane runs slower
# than it would alone; the pair still ends sooner than one after the other):
#   boot      the test boot (tests/guest/test-*.sh)
#   rest      the release tool, the host checks, the power-cut boot and its
#             replay, bench-quick (with cargo's build directory cached, the
#             host checks' seeded layouts went back here from the boot
#             lane, where they ran for a while: the lanes end together)
# Each lane's output is shown with its name in front and kept in
# build/test/LANE.log. At the end (also on failure) a table of the phases,
# each boot's, guest script's and replay's time, the results and the total;
# a warning when a warm run (the kernel was cached) took longer than the
# suite's budget of 12 minutes (Documentation/ext4-defrag/testing.rst).
# Fails when a build fails (at once) or when either lane failed.
#   scripts/test.sh [QEMU_ARGS...]   (extra arguments for tests/qemu.py)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
budget=720
start=$(date +%s)
out=$top/build/test
rm -rf "$out"
mkdir -p "$out"
kernel_built=no

summary() {
	local total=$(( $(date +%s) - start ))
	echo "make test: phases (s; the lanes ran side by side):"
	cat "$out"/times 2>/dev/null | sed 's/^/  /'
	echo "make test: inside the phases (s):"
	# LANE LINE: the lane it ran in first.
	grep -E "^check: .* took|^qemu: .* boot ran|^qemu: .* made on the host|^powercut: replay took|^== test-.* took|^bench: .* ran" \
		"$out"/*.log 2>/dev/null | sed "s|^$out/\([a-z]*\)\.log:|  \1 |"
	grep -hE "^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$" "$out"/*.log 2>/dev/null |
		awk '{ p += $1; f += $3; s += $5 } END { if (NR) printf "make test: guest results: %d passed, %d failed, %d skipped\n", p, f, s }'
	echo "make test: total ${total} s ($((total / 60)) min $((total % 60)) s)," \
		"kernel built in this run: $kernel_built"
	if [ "$kernel_built" = no ] && [ $total -gt $budget ]; then
		echo "make test: WARNING: a warm run over the budget of $((budget / 60)) min" \
			"(testing.rst)"
	fi
}

# phase NAME CMD...: runs CMD, records its time under NAME (and its lane).
phase() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	printf '%-6s %-12s %5d%s\n' "${LANE:-build}" "$name" $(( $(date +%s) - t0 )) \
		"$([ $rc -eq 0 ] || echo "  failed (exit $rc)")" >> "$out/times"
	return $rc
}

# build NAME CMD...: a phase before the lanes; stops the test on failure.
build() {
	phase "$@" && return
	local rc=$?
	echo "make test: phase $1 failed (exit $rc)"
	summary
	exit $rc
}

build deps make --no-print-directory deps
[ -f "$(dirname "$(scripts/kernel.sh --kdir)")/built" ] || kernel_built=yes
build kernel make --no-print-directory kernel
build module make --no-print-directory module
# What the test boot needs; the release tool (the host checks', the
# benchmark's) is built in the other lane.
build tools make --no-print-directory test-tool drivers host-tests
build initramfs make --no-print-directory initramfs

# --strict: a skipped check fails (deps.sh installed all that any needs).
# The script's arguments come last, so that an --append of theirs wins.
extra=("$@")
qemu=(python3 tests/qemu.py --kernel "$(scripts/kernel.sh --kdir)/arch/x86/boot/bzImage"
	--initrd build/initramfs.cpio.gz --strict)
lane_boot() {
	phase test-boot "${qemu[@]}" --mode test --no-powercut --log build/qemu-test.log \
		--append e4d.group=auto "${extra[@]}"
}
lane_rest() {
	phase tool make --no-print-directory tool &&
	phase check-host make --no-print-directory check-host &&
	phase powercut "${qemu[@]}" --mode test --powercut-only --log build/qemu-powercut.log "${extra[@]}" &&
	phase bench-quick make --no-print-directory bench-quick
}

# run_lane NAME: lane_NAME in the background; its exit status goes to
# build/test/NAME.rc.
run_lane() {
	{
		LANE=$1 "lane_$1" 2>&1
		echo $? > "$out/$1.rc"
	} | tee "$out/$1.log" | sed -u "s/^/[$1] /" &
}
run_lane boot
run_lane rest
wait

rc=0
for lane in boot rest; do
	lrc=$(cat "$out/$lane.rc" 2>/dev/null || echo 1)
	if [ "$lrc" -ne 0 ]; then
		echo "make test: lane $lane failed (exit $lrc; its output: build/test/$lane.log)"
		rc=1
	fi
done
summary
exit $rc
