# SPDX-License-Identifier: GPL-2.0
# ext4 goal-directed online defragmentation: build and test entry points.
#   make test   everything: host checks, cargo tests, the QEMU end-to-end run
#   make demo   boot the patched kernel and show the module at work
#   make bench  cold reads on the seek-aware disk model and a throttled SSD
#               per variant (seeded set, aged tree, cold start), cost, growth:
#               build/bench/report.md (bench-quick: the small run make test does)
#   make bench-moves  move timings under TCG (units, seeded layouts, making room)
# See README.md and Documentation/ext4-defrag/.

SHELL := /bin/bash
BUILD := $(CURDIR)/build
TOOL_DIR := tools/e4defrag
TOOL := $(TOOL_DIR)/target/release/e4defrag
# The tool as the tests run it: with its test hooks (the `test-hooks`
# feature).
TEST_TOOL := $(TOOL_DIR)/target/test-hooks/release/e4defrag
# The test drivers (fraggen, ioctlfuzz, workload): a crate of their own,
# not part of the product, built into the test tool's target directory,
# where that build has compiled their dependencies already.
DRIVERS_DIR := tests/drivers
DRIVERS := $(TOOL_DIR)/target/test-hooks/release
# Recursively expanded: only computed once the tools are installed.
KMAKE = $(shell . scripts/env.sh && echo $$E4D_KMAKE)
KDIR = $(shell scripts/kernel.sh --kdir)
# Extra arguments for the QEMU runner, e.g. QEMU_ARGS="--accel kvm".
QEMU_ARGS ?=
# Extra arguments for tests/bench.py, e.g. BENCH_ARGS="--only guest".
BENCH_ARGS ?=

.PHONY: all deps kernel module tool test-tool host-tests drivers initramfs check-host test test-group demo bench \
	bench-quick bench-moves clean

all: module tool

deps:
	scripts/deps.sh

kernel: deps
	scripts/kernel.sh >/dev/null

# Warnings, rustc's and clippy's, fail the module build.
module: kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE) CLIPPY=1 KRUSTFLAGS=-Dwarnings modules

tool: deps
	cargo build --release --locked --manifest-path $(TOOL_DIR)/Cargo.toml

test-tool: deps
	cargo build --release --locked --manifest-path $(TOOL_DIR)/Cargo.toml \
		--features test-hooks --target-dir $(TOOL_DIR)/target/test-hooks

# The host tests' binary (tests/host_ext4.rs), built as the test tool is
# (release, test hooks) and copied to a fixed path: the guest runs it with
# the module backend (tests/guest/test-30-tool.sh).
HOST_TESTS := $(BUILD)/host_ext4
host-tests: test-tool
	scripts/host-tests.sh $(TOOL_DIR) $(HOST_TESTS)

drivers: test-tool
	cargo build --release --locked --manifest-path $(DRIVERS_DIR)/Cargo.toml \
		--target-dir $(TOOL_DIR)/target/test-hooks

initramfs: module test-tool drivers host-tests
	scripts/initramfs.sh $(BUILD)/initramfs.cpio.gz ext4_defrag.ko $(TEST_TOOL) $(DRIVERS) \
		$(HOST_TESTS)

check-host: kernel tool drivers
	scripts/check-host.sh $(KDIR)

# scripts/test.sh runs the builds (deps, kernel, module, tools, initramfs),
# then two lanes side by side: the test boot; check-host, the power-cut
# boot and its replay, bench-quick. It prints every phase's time. The
# benchmark's small run closes the test, so that it cannot rot; its
# numbers judge nothing, but a failed run, changed data or a complaint of
# e2fsck fails it.
test:
	scripts/test.sh $(QEMU_ARGS)

# One group of the guest's scenario scripts (tests/guest/groups) in one
# boot, e.g. make test-group GROUP=quick.
GROUP = quick
test-group: initramfs
	python3 tests/qemu.py --kernel $(KDIR)/arch/x86/boot/bzImage \
		--initrd $(BUILD)/initramfs.cpio.gz --mode test --no-powercut \
		--append "e4d.group=$(GROUP)" --log $(BUILD)/qemu-$(GROUP).log $(QEMU_ARGS)

demo: initramfs
	python3 tests/qemu.py --kernel $(KDIR)/arch/x86/boot/bzImage \
		--initrd $(BUILD)/initramfs.cpio.gz --mode demo \
		--log $(BUILD)/qemu-demo.log $(QEMU_ARGS)

# Numbers, not a test (Documentation/ext4-defrag/benchmark.rst). Debian's
# python3, which has python3-matplotlib.
BENCH = /usr/bin/python3 tests/bench.py --kernel $(KDIR)/arch/x86/boot/bzImage \
	--initrd $(BUILD)/initramfs.cpio.gz --tool $(CURDIR)/$(TOOL) \
	--fraggen $(CURDIR)/$(DRIVERS)/fraggen $(BENCH_ARGS)
bench: initramfs tool
	$(BENCH) --out $(BUILD)/bench

bench-quick: initramfs tool
	$(BENCH) --quick --out $(BUILD)/bench-quick

# The older move timings under TCG, where the time is emulation.
bench-moves: initramfs
	python3 tests/qemu.py --kernel $(KDIR)/arch/x86/boot/bzImage \
		--initrd $(BUILD)/initramfs.cpio.gz --mode bench --disk-mib 512 \
		--log $(BUILD)/qemu-bench.log $(QEMU_ARGS)

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE) clean
	rm -rf $(BUILD)
	cargo clean --manifest-path $(TOOL_DIR)/Cargo.toml
	cargo clean --manifest-path $(DRIVERS_DIR)/Cargo.toml
