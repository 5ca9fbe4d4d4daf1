#!/bin/bash
# The host's seeded layouts (tests/layouts.sh) with the stock backend,
# seeds 1-20 (E4D_HOST_SEEDS="1 2 3" picks others): a step of
# scripts/check-host.sh, and on its own for a quick loop.
# Environment: E4DEFRAG (default: the test tool; check-host passes the
# release tool).
#   scripts/check-layouts.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/tools/e4defrag/target/test-hooks/release
# The images on tmpfs: on the host's disk each fsync of the generator
# and the tool reached the disk, which took half the step's time.
work=$(mktemp -d -p "$([ -d /dev/shm ] && echo /dev/shm || echo /tmp)")
trap 'rm -rf "$work"' EXIT
seeds=${E4D_HOST_SEEDS:-$(seq 1 20)}
for seed in $seeds; do
	E4DEFRAG=${E4DEFRAG:-$bin/e4defrag} FRAGGEN=$bin/fraggen WORK=$work \
		tests/layouts.sh "$seed" move-ext
done | tee "$work/layouts.log" | grep -v "^E4D-RESULT: PASS"
passed=$(grep -c "^E4D-RESULT: PASS" "$work/layouts.log" || true)
failed=$(grep -c "^E4D-RESULT: FAIL" "$work/layouts.log" || true)
echo "check: layouts: $passed passed, $failed failed" >&2
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
