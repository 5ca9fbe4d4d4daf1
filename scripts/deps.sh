#!/bin/bash
# Install everything the build and the tests need, from Debian and crates.io.
# Idempotent: a second run only checks.
set -euo pipefail
. "$(dirname "$0")/env.sh"

PKGS=(linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web
      clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev
      libssl-dev cpio busybox-static kmod qemu-system-x86 e2fsprogs
      python3 python3-ply python3-matplotlib gcc make xz-utils dmsetup
      gcc-multilib time systemd nbdkit nbdkit-plugin-python rsync python3-pip
      qemu-utils)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >&2
fi

# Debian's bindgen is too old for 6.12's Rust support.
if ! "$E4D_BINDGEN" --version 2>/dev/null | grep -q "0.73.2"; then
	echo "deps: installing bindgen-cli 0.73.2" >&2
	cargo install --locked --quiet bindgen-cli --version 0.73.2 \
		--root "$E4D_CACHE/bindgen" >&2
fi

# cargo's build directory (the tool's, the test tool's, the test drivers':
# all under tools/e4defrag/target) is kept outside the repository, as the
# kernel is: a clone without one links it to the cache, so that a clean
# clone compiles the crates.io dependencies once, not in every run (70 s
# of the builds and 60 s of the host checks on 2 cores). cargo's own
# fingerprints decide what is stale; clones share it under its lock.
target=$(dirname "$0")/../tools/e4defrag/target
if [ ! -e "$target" ] && [ ! -L "$target" ]; then
	mkdir -p "$E4D_CACHE/cargo-target"
	ln -s "$E4D_CACHE/cargo-target" "$target"
fi
