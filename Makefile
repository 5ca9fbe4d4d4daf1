# SPDX-License-Identifier: GPL-2.0
# ext4 goal-directed online defragmentation: build and test entry points.
#   make test   everything: host checks, cargo tests, the QEMU end-to-end run
#   make demo   boot the patched kernel and show the module at work
#   make bench  cold reads on the seek-aware disk model and a throttled SSD
#               per variant (seeded set, aged tree, cold start), cost, growth:
#               build/bench/report.md (bench-quick: the small run make test does)
#   make bench-moves  move timings under TCG (units, seeded layouts, making room)
#   make install      the tool, its man page, completions and systemd units
#               (PREFIX=/usr/local, DESTDIR=), and the module when it is built;
#               make uninstall removes them
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
	bench-quick bench-moves install uninstall clean

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

# Installed where the distribution's own e4defrag (e2fsprogs',
# /usr/sbin/e4defrag on Debian) is not: /usr/local by default. The unit's
# ExecStart is written from SBINDIR, so it runs the e4defrag installed
# here. systemd reads units from /usr/local/lib/systemd/system as well.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
GEN := $(TOOL_DIR)/target/release/e4defrag-gen
INSTALLED := $(SBINDIR)/e4defrag $(MANDIR)/man8/e4defrag.8 $(UNITDIR)/e4defrag.service \
	$(UNITDIR)/e4defrag.timer $(BASHCOMPDIR)/e4defrag $(ZSHCOMPDIR)/_e4defrag \
	$(FISHCOMPDIR)/e4defrag.fish

# Built when missing (make tool builds them again when the sources changed);
# install itself needs no kernel, bindgen or Debian packages.
$(TOOL) $(GEN):
	cargo build --release --locked --manifest-path $(TOOL_DIR)/Cargo.toml

install: $(TOOL) $(GEN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $(TOOL) $(DESTDIR)$(SBINDIR)/e4defrag
	gen=$$(mktemp -d) && $(GEN) man $$gen && $(GEN) completions $$gen && \
		install -m 644 $$gen/e4defrag.8 $(DESTDIR)$(MANDIR)/man8/e4defrag.8 && \
		install -m 644 $$gen/e4defrag.bash $(DESTDIR)$(BASHCOMPDIR)/e4defrag && \
		install -m 644 $$gen/_e4defrag $(DESTDIR)$(ZSHCOMPDIR)/_e4defrag && \
		install -m 644 $$gen/e4defrag.fish $(DESTDIR)$(FISHCOMPDIR)/e4defrag.fish && \
		rm -rf $$gen
	sed 's|@SBINDIR@|$(SBINDIR)|g' $(TOOL_DIR)/systemd/e4defrag.service.in > \
		$(DESTDIR)$(UNITDIR)/e4defrag.service
	chmod 644 $(DESTDIR)$(UNITDIR)/e4defrag.service
	install -m 644 $(TOOL_DIR)/systemd/e4defrag.timer $(DESTDIR)$(UNITDIR)/e4defrag.timer
	@# Into a DESTDIR (a package) without depmod: the package's own
	@# install runs it where the module lands.
	@if [ -f ext4_defrag.ko ]; then \
		$(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE) INSTALL_MOD_PATH=$(DESTDIR)/ \
			$(if $(DESTDIR),DEPMOD=true) modules_install; \
	else \
		echo "install: ext4_defrag.ko is not built (make module, on the patched kernel): not installed"; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	if [ -d $(DESTDIR)/lib/modules ]; then \
		find $(DESTDIR)/lib/modules -name ext4_defrag.ko -delete; \
		$(if $(DESTDIR),:,depmod -a); \
	fi

clean:
	-[ -d "$(KDIR)" ] && $(MAKE) -C $(KDIR) M=$(CURDIR) $(KMAKE) clean
	rm -rf $(BUILD)
	cargo clean --manifest-path $(TOOL_DIR)/Cargo.toml
	cargo clean --manifest-path $(DRIVERS_DIR)/Cargo.toml
