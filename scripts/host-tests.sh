#!/bin/bash
# The host tests' binary (tools/e4defrag/tests/host_ext4.rs), built as
# scripts/check-host.sh's `cargo test --features test-hooks` builds it (so
# that the two share the build), copied to OUT, stripped: the test guest
# runs the same tests with the module backend (tests/guest/test-30-tool.sh).
#   scripts/host-tests.sh TOOL_DIR OUT
set -euo pipefail
tool_dir=$1 out=$2
exe=$(cargo test --locked --features test-hooks --manifest-path "$tool_dir/Cargo.toml" \
	--test host_ext4 --no-run --message-format=json |
	python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "host_ext4" \
            and m.get("executable"):
        print(m["executable"])')
[ -n "$exe" ] || { echo "host-tests: cargo built no host_ext4 test binary" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
install -s -m 755 "$exe" "$out"
