#!/bin/bash
# The host tests' binary (tools/e4defrag/tests/host_ext4.rs), built in
# release mode beside the test tool (the test hooks, its target directory,
# where everything but the test itself is compiled already), copied to
# OUT, stripped: the test guest runs the same tests with the module
# backend (tests/guest/test-30-tool.sh).
#   scripts/host-tests.sh TOOL_DIR OUT
set -euo pipefail
tool_dir=$1 out=$2
exe=$(cargo test --release --locked --features test-hooks --manifest-path "$tool_dir/Cargo.toml" \
	--target-dir "$tool_dir/target/test-hooks" --test host_ext4 --no-run \
	--message-format=json |
	python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "host_ext4" \
            and m.get("executable"):
        print(m["executable"])')
[ -n "$exe" ] || { echo "host-tests: cargo built no host_ext4 test binary" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
install -s -m 755 "$exe" "$out"
