# Assent build entry points. `make help` lists them.
CARGO ?= cargo
ROOT ?= /

.PHONY: help build test lint fmt fmt-check clippy bench run preview dist size
.PHONY: cross-aarch64 cross-armv7 cross-aarch64-musl cross-armv7-musl cross-build \
	cross-check test-aarch64 test-armv7 test-cross test-cross-core smoke-aarch64 \
	dist-all size-all install hot-functions

help:
	@echo "Everyday (make help: this list)"
	@echo "  make run          the agent on this machine with a local collector (configs/dev.toml)"
	@echo "  make preview      what Assent could collect on this machine (ROOT=dir for a fixture)"
	@echo "  make test         fmt check, clippy -D warnings, all tests (what CI runs natively)"
	@echo "  make build        debug build of every binary"
	@echo "  make lint         fmt-check and clippy;  make fmt  formats;  make fmt-check | clippy"
	@echo "Measuring"
	@echo "  make bench        collection, parsing, store, collector, sync, daemon and memory figures"
	@echo "  make soak         daemon and collector under faults (SOAK_MINUTES=N, default 1)"
	@echo "  make fuzz         every cargo-fuzz target for FUZZ_SECONDS or FUZZ_RUNS (FUZZ_TARGETS=...)"
	@echo "  make size         dist binary sizes (host and every installed cross target)"
	@echo "  make size-check   fails when the aarch64 assent is over 2.5 MiB"
	@echo "  make hot-functions   trace the musl agents under qemu: what the dist link puts first"
	@echo "Other architectures (docs/cross.md)"
	@echo "  make cross-aarch64 | cross-armv7 | cross-aarch64-musl | cross-armv7-musl"
	@echo "                    dist-profile binaries for that target"
	@echo "  make cross-build TARGET=t   the same for any target; cross-check TARGET=t says what is missing"
	@echo "  make test-aarch64 | test-armv7   the workspace's tests under qemu-user"
	@echo "  make test-cross TARGET=t | test-cross-core TARGET=t   all tests / platform and store only"
	@echo "  make smoke-aarch64   the aarch64 dist assent under qemu: consent, collect, store, sync"
	@echo "Shipping"
	@echo "  make dist [DIST_TARGETS=\"t...\"]   tarballs per target (default: this machine)"
	@echo "  make dist-all | size-all           dist / size for this machine and every cross target"
	@echo "  make install DESTDIR=... PREFIX=... [TARGET=t]"

build:
	$(CARGO) build --workspace --bins

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: fmt-check clippy

# Integration tests run the real binaries, so build them first.
# The collector's PostgreSQL tests read ASSENT_TEST_PG; unset, a throw-away cluster is
# started (or reused) under target/pg-test (scripts/pg-test-cluster.sh).
test: lint build
	@pg="$${ASSENT_TEST_PG:-$$(scripts/pg-test-cluster.sh $(CURDIR)/target/pg-test)}" && \
		echo "ASSENT_TEST_PG=\"$$pg\" $(CARGO) test --workspace" && \
		ASSENT_TEST_PG="$$pg" $(CARGO) test --workspace

# The agent in the foreground with configs/dev.toml and a local collector alongside.
run:
	scripts/dev-run.sh

# What Assent could collect on this machine (or ROOT=dir), ignoring consent.
# Built with the same packages as `make run` (one cargo call, same features), so the two
# share one build instead of rebuilding each other's.
preview:
	@$(CARGO) build -q -p assent -p assent-collector
	target/debug/assent collect --preview --root $(ROOT)

bench:
	$(CARGO) build -q --release -p assent -p assent-collector
	$(CARGO) bench -q -p assent-integration-tests --bench preview
	$(CARGO) bench -q -p assent-platform --bench packages
	$(CARGO) bench -q -p assent-store --bench append
	$(CARGO) bench -q -p assent-collector --bench ingest
	ASSENT_TEST_PG="$${ASSENT_TEST_PG_BENCH:-$$(ASSENT_PG_FSYNC=on scripts/pg-test-cluster.sh target/pg-bench 55433)}" \
		$(CARGO) bench -q -p assent-collector --bench backends
	ASSENT_TEST_PG="$${ASSENT_TEST_PG_BENCH:-$$(ASSENT_PG_FSYNC=on scripts/pg-test-cluster.sh target/pg-bench 55433)}" \
		$(CARGO) bench -q -p assent-collector --bench console
	$(CARGO) bench -q -p assent-integration-tests --bench sync
	$(CARGO) bench -q -p assent-integration-tests --bench inventory
	$(CARGO) bench -q -p assent --bench event_line
	$(CARGO) bench -q -p assent-integration-tests --bench daemon
	@$(MAKE) --no-print-directory cross-build TARGET=$(MEMORY_TARGET) >/dev/null
	ASSENT_DIST_AGENT=$(CURDIR)/$(call dist_dir,$(MEMORY_TARGET))/assent \
		$(CARGO) bench -q -p assent-integration-tests --bench memory

# The memory bench measures the static musl build, the one for small devices
# (docs/performance.md); MEMORY_TARGET=$(HOST_TARGET) measures the glibc one.
MEMORY_TARGET ?= $(firstword $(subst -, ,$(HOST_TARGET)))-unknown-linux-musl

# Regenerates scripts/hot-functions.txt from the static musl builds, traced under qemu.
HOT_TARGETS ?= x86_64-unknown-linux-musl aarch64-unknown-linux-musl
hot-functions:
	@for t in $(HOT_TARGETS); do $(MAKE) --no-print-directory cross-build TARGET=$$t; done
	scripts/trace-hot-functions.sh $(HOT_TARGETS)
	@# cargo does not see the list as an input: removing the linked agents makes it relink.
	rm -f target/*/dist/assent target/*/dist/deps/assent-????????????????

# One tarball per target in DIST_TARGETS (default: this machine), in target/pkg/:
# stripped dist-profile binaries, configs/ (less the build-system recipes and dev.toml), the
# systemd unit when configs/ has one, and an INSTALL note (docs/INSTALL-dist.md).
dist:
	@set -e; for t in $(DIST_TARGETS); do \
		$(MAKE) --no-print-directory cross-build TARGET=$$t; \
		$(MAKE) --no-print-directory dist-tarball TARGET=$$t; \
	done

# Sizes of the dist binaries for the host and every cross target whose toolchain is
# installed here, or for SIZE_TARGETS (each is built first; cargo skips what is up to date).
SIZE_TARGETS ?= $(HOST_TARGET) $(INSTALLED_CROSS)
size:
	@set -e; for t in $(SIZE_TARGETS); do \
		$(MAKE) --no-print-directory -s cross-build TARGET=$$t CARGO="$(CARGO) -q" >/dev/null; \
		for b in $(DIST_BINS); do \
			f=$(call dist_dir,$$t)/$$b; \
			[ -f "$$f" ] || continue; \
			stat -c %s "$$f" | awk -v b=$$b -v t=$$t \
				'{printf "%-18s %-32s %9d bytes (%.2f MiB)\n", b, t, $$1, $$1/1048576}'; \
		done; \
	done
	@for t in $(filter-out $(INSTALLED_CROSS) $(SIZE_TARGETS),$(CROSS_TARGETS)); do \
		echo "$$t: skipped, toolchain not installed (make cross-check TARGET=$$t)"; done

# Fails when the shipped agent is over its budget (2.5 MiB, docs/size.md) for any target in
# SIZE_CHECK_TARGETS. The aarch64 file grows in 64 KiB steps, so a small change can cross
# the line: this is what catches it.
SIZE_LIMIT_BYTES ?= 2621440
SIZE_CHECK_TARGETS ?= aarch64-unknown-linux-gnu
.PHONY: size-check
size-check:
	@set -e; for t in $(SIZE_CHECK_TARGETS); do \
		$(MAKE) --no-print-directory -s cross-build TARGET=$$t CARGO="$(CARGO) -q" >/dev/null; \
		f=$(call dist_dir,$$t)/assent; n=$$(stat -c %s "$$f"); \
		if [ "$$n" -gt $(SIZE_LIMIT_BYTES) ]; then \
			echo "size-check: $$f is $$n bytes, over the $(SIZE_LIMIT_BYTES)-byte budget (docs/size.md)"; exit 1; \
		fi; \
		echo "size-check: $$f is $$n bytes, $$(( $(SIZE_LIMIT_BYTES) - n )) under the budget"; \
		o=$$(ls -t $(call dist_dir,$$t)/deps/assent-*.order-summary 2>/dev/null | head -n1); \
		if [ -n "$$o" ]; then echo "size-check: $$t code layout: $$(cat "$$o") (scripts/hot-functions.txt)"; fi; \
		r=$$(ls -t $(call dist_dir,$$t)/deps/assent-*.rodata-summary 2>/dev/null | head -n1); \
		if [ -n "$$r" ]; then echo "size-check: $$t data layout: $$(cat "$$r") (scripts/hot-rodata.py)"; fi; \
	done

# ---------------------------------------------------------------------------------------
# Cross builds (docs/cross.md). Each target needs its rustup target, its C cross compiler
# (bundled SQLite and ring are C) and, to run tests, qemu-user. `.cargo/config.toml`
# gives each target its linker and runner; the C compiler is exported here.

HOST_TARGET := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
CROSS_TARGETS := aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf \
	aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf x86_64-unknown-linux-musl
# Cross targets whose rustup target and C cross compiler are both here.
INSTALLED_CROSS = $(foreach t,$(CROSS_TARGETS),$(if $(and $(filter $(t),$(RUST_TARGETS)),$(shell command -v $(GCC_$(t))-gcc)),$(t)))
RUST_TARGETS = $(shell rustup target list --installed 2>/dev/null)
DIST_TARGETS ?= $(HOST_TARGET)
TARGET ?= $(HOST_TARGET)
# Every binary that ships; one not built yet (no [[bin]] so far) is reported, not packed.
DIST_BINS := assent assent-collector
# Built one cargo call each, so that the collector's features (rustls logging, hyper
# server) are not unified into the agent that ships to devices (docs/size.md).
DIST_PKGS := assent assent-collector
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

# GCC_<target>: the Debian cross gcc prefix; DEB_<target>: its package;
# QEMU_<target>: how to run one of its binaries here.
GCC_aarch64-unknown-linux-gnu := aarch64-linux-gnu
GCC_aarch64-unknown-linux-musl := aarch64-linux-gnu
GCC_armv7-unknown-linux-gnueabihf := arm-linux-gnueabihf
GCC_armv7-unknown-linux-musleabihf := arm-linux-gnueabihf
GCC_x86_64-unknown-linux-musl := x86_64-linux-gnu
GCC_x86_64-unknown-linux-gnu := x86_64-linux-gnu
DEB_aarch64-linux-gnu := gcc-aarch64-linux-gnu
DEB_arm-linux-gnueabihf := gcc-arm-linux-gnueabihf
# The cross gcc only recommends its C library headers, so --no-install-recommends
# leaves them out; bundled SQLite and ring need them (musl builds too: see below).
LIBC_DEB_aarch64-linux-gnu := libc6-dev-arm64-cross
LIBC_DEB_arm-linux-gnueabihf := libc6-dev-armhf-cross
DEB_x86_64-linux-gnu := gcc
LIBC_DEB_x86_64-linux-gnu := libc6-dev
# Where each gcc's C library headers are: the host's own are in /usr/include.
HEADERS_aarch64-linux-gnu := /usr/aarch64-linux-gnu/include
HEADERS_arm-linux-gnueabihf := /usr/arm-linux-gnueabihf/include
HEADERS_x86_64-linux-gnu := /usr/include
QEMU_aarch64-unknown-linux-gnu := qemu-aarch64 -L /usr/aarch64-linux-gnu
QEMU_aarch64-unknown-linux-musl := qemu-aarch64
QEMU_armv7-unknown-linux-gnueabihf := qemu-arm -L /usr/arm-linux-gnueabihf
QEMU_armv7-unknown-linux-musleabihf := qemu-arm

# The cc crate reads CC_<target>/AR_<target> only when building for that target, so
# exporting them for every target leaves native builds alone.
export CC_aarch64_unknown_linux_gnu ?= aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu ?= aarch64-linux-gnu-ar
export CC_armv7_unknown_linux_gnueabihf ?= arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf ?= arm-linux-gnueabihf-ar
# musl: Debian has no musl cross gcc, so the glibc cross gcc compiles the C parts.
# SQLITE_DISABLE_LFS keeps glibc's headers from renaming open/stat/... to open64/stat64,
# which musl (1.2.4+) does not export; off_t is 64-bit on aarch64 either way.
export CC_aarch64_unknown_linux_musl ?= aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl ?= aarch64-linux-gnu-ar
export CFLAGS_aarch64_unknown_linux_musl ?= -DSQLITE_DISABLE_LFS
export CC_armv7_unknown_linux_musleabihf ?= arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_musleabihf ?= arm-linux-gnueabihf-ar
export CC_x86_64_unknown_linux_musl ?= x86_64-linux-gnu-gcc
export AR_x86_64_unknown_linux_musl ?= x86_64-linux-gnu-ar
export CFLAGS_x86_64_unknown_linux_musl ?= -DSQLITE_DISABLE_LFS

# Where cargo puts a target's dist binaries. The dist build always names its target, even
# the host's, so that DIST_RUSTFLAGS reach only the shipped code, never build scripts or
# proc-macros (which unwind).
dist_dir = target/$(1)/dist
# Dist builds only (docs/size.md): the link drops the unwind tables, which panic=abort
# never reads. Test and debug builds keep them: tests unwind. The link is done by the
# rust-lld that ships with the Rust toolchain (through the target's gcc driver, which
# still supplies the C runtime): on aarch64, GNU ld 2.40 pads the file so that RELRO ends
# on a 64 KiB boundary, while lld leaves that padding out of the file, so the dist
# binaries keep full RELRO within the size budget.
LLD_DIR := $(shell rustc --print sysroot 2>/dev/null)/lib/rustlib/$(HOST_TARGET)/bin/gcc-ld
DIST_RUSTFLAGS := -C link-arg=-Wl,-T,$(CURDIR)/scripts/no-eh-frame.ld \
	-C link-arg=-fuse-ld=lld -C link-arg=-B$(LLD_DIR)
# Panic messages name their source file; a crate's file is named from the crate's own
# directory ("hyper-1.12.0/src/proto/h1/io.rs"), not from cargo's registry below $HOME: 194
# such names lose 59 bytes each, from the read-only data that the hot code's strings
# share (docs/performance.md, "Read-only data"). The registry is found after `cargo fetch`.
registry_remap = $$(for d in $${CARGO_HOME:-$$HOME/.cargo}/registry/src/*/; do \
	if [ -d "$$d" ]; then printf ' %s' "--remap-path-prefix=$${d%/}="; fi; done)
# The dist link goes through scripts/link-hot-first.sh, which puts the functions the agent
# runs all day first in .text (scripts/hot-functions.txt; docs/performance.md, "Code
# layout"); ASSENT_LINKER is the target's own gcc driver (cc for a host not listed here).
DIST_LINK_ENV = CARGO_TARGET_$(shell echo $(TARGET) | tr a-z- A-Z_)_LINKER=$(CURDIR)/scripts/link-hot-first.sh \
	ASSENT_LINKER=$(if $(GCC_$(TARGET)),$(GCC_$(TARGET))-gcc,cc)

cross-aarch64: ; @$(MAKE) --no-print-directory cross-build TARGET=aarch64-unknown-linux-gnu
cross-armv7: ; @$(MAKE) --no-print-directory cross-build TARGET=armv7-unknown-linux-gnueabihf
cross-aarch64-musl: ; @$(MAKE) --no-print-directory cross-build TARGET=aarch64-unknown-linux-musl
cross-armv7-musl: ; @$(MAKE) --no-print-directory cross-build TARGET=armv7-unknown-linux-musleabihf

# Fails, saying exactly what to install, when TARGET's toolchain is not complete.
# NEED_QEMU=1 checks the emulator too (for the test targets).
cross-check:
	@if [ "$(TARGET)" = "$(HOST_TARGET)" ]; then exit 0; fi; \
	case " $(CROSS_TARGETS) " in *" $(TARGET) "*) ;; \
		*) echo "unknown target $(TARGET); known: $(CROSS_TARGETS)"; exit 1;; esac; \
	missing=0; \
	if ! rustup target list --installed 2>/dev/null | grep -qx '$(TARGET)'; then \
		echo "missing: the Rust standard library for $(TARGET)"; \
		echo "  install: rustup target add $(TARGET)"; missing=1; fi; \
	if ! command -v $(GCC_$(TARGET))-gcc >/dev/null; then \
		echo "missing: $(GCC_$(TARGET))-gcc (C cross compiler for bundled SQLite and ring)"; \
		echo "  install: apt-get install $(DEB_$(GCC_$(TARGET)))"; missing=1; fi; \
	if [ ! -f $(HEADERS_$(GCC_$(TARGET)))/stdio.h ]; then \
		echo "missing: the C library headers for $(GCC_$(TARGET))"; \
		echo "  install: apt-get install $(LIBC_DEB_$(GCC_$(TARGET)))"; missing=1; fi; \
	if [ "$(NEED_QEMU)" = 1 ] && ! command -v $(firstword $(QEMU_$(TARGET))) >/dev/null; then \
		echo "missing: $(firstword $(QEMU_$(TARGET))) (runs $(TARGET) binaries here)"; \
		echo "  install: apt-get install qemu-user"; missing=1; fi; \
	exit $$missing

cross-build: cross-check
	@set -e; if [ ! -x "$(LLD_DIR)/ld.lld" ]; then \
		echo "missing: $(LLD_DIR)/ld.lld (rust-lld, part of rustup's rustc component)"; \
		exit 1; fi; \
	$(CARGO) fetch -q; flags="$(DIST_RUSTFLAGS)$(registry_remap)"; \
	for p in $(DIST_PKGS); do \
		echo "$(DIST_LINK_ENV) RUSTFLAGS=\"$$flags\" $(CARGO) build --profile dist --target $(TARGET) -p $$p --bins"; \
		$(DIST_LINK_ENV) RUSTFLAGS="$$flags" $(CARGO) build --profile dist --target $(TARGET) -p $$p --bins; \
	done

dist-tarball:
	@set -e; t=$(TARGET); name=assent-$(VERSION)-$$t; stage=target/pkg/$$name; \
	rm -rf $$stage; mkdir -p $$stage/bin; \
	for b in $(DIST_BINS); do \
		f=$(call dist_dir,$$t)/$$b; \
		if [ -f "$$f" ]; then install -m 0755 "$$f" $$stage/bin/; \
		else echo "note: $$b has no binary yet; not in $$name.tar.gz"; fi; \
	done; \
	mkdir -p $$stage/configs; \
	find configs -maxdepth 1 -type f ! -name 'dev*' -exec cp {} $$stage/configs/ \; ; \
	cp docs/INSTALL-dist.md $$stage/INSTALL; \
	tar -C target/pkg --owner=0 --group=0 --numeric-owner -czf target/pkg/$$name.tar.gz $$name; \
	echo "target/pkg/$$name.tar.gz"; tar -tzvf target/pkg/$$name.tar.gz | awk '{print "  " $$3, $$6}'

dist-all: ; @$(MAKE) --no-print-directory dist DIST_TARGETS="$(HOST_TARGET) $(CROSS_TARGETS)"
size-all: size

# Installs TARGET's dist binaries, the example config and the systemd unit (when
# configs/ has one) under DESTDIR, for packaging systems. Builds first if needed.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=
install: cross-build
	@set -e; for b in $(DIST_BINS); do \
		f=$(call dist_dir,$(TARGET))/$$b; \
		if [ -f "$$f" ]; then install -D -m 0755 "$$f" "$(DESTDIR)$(BINDIR)/$$b"; \
			echo "$(DESTDIR)$(BINDIR)/$$b"; fi; \
	done; \
	install -D -m 0644 configs/assent.toml "$(DESTDIR)$(SYSCONFDIR)/assent/assent.toml.example"; \
	echo "$(DESTDIR)$(SYSCONFDIR)/assent/assent.toml.example"; \
	for u in configs/*.service configs/*.timer; do \
		[ -f "$$u" ] || continue; \
		install -D -m 0644 "$$u" "$(DESTDIR)$(UNITDIR)/$$(basename $$u)"; \
		echo "$(DESTDIR)$(UNITDIR)/$$(basename $$u)"; \
	done

# ---------------------------------------------------------------------------------------
# Tests under qemu-user. Integration tests that spawn `assent` wrap it in qemu through
# ASSENT_TEST_RUNNER (testkit/src/binaries.rs). Left out under emulation, each for a
# reason that is qemu's, not the target's (docs/cross.md):
# - netlink::tests::live_controller_resolves_its_own_family: qemu-user emulates only
#   NETLINK_ROUTE/UEVENT/AUDIT sockets, so a generic netlink socket is EPROTONOSUPPORT;
# - live::live_values_match_independent_tools: compares with host tools (uname -m says
#   x86_64 while the emulated binary rightly says aarch64);
# - sigkill_never_loses_an_accepted_event and the power_cuts_ tests: they re-execute
#   themselves without the qemu runner (no binfmt_misc here);
# - sync::, daemon::, reliability::, nginx::, stalled_collector::, dev_run::,
#   protocol_fallback::, inventory:: and first_hour's withdrawal test: they start
#   the target's collector binary, which needs binfmt (the smoke syncs the target's agent
#   to a native collector instead);
# - clock::: libfaketime cannot reach an emulated binary;
# - nspawn::: the target's agent runs inside a container, where no qemu runner wraps it.
# The collector's own tests run natively only (it is a server, not shipped to
# devices): test-cross excludes the crate.
QEMU_SKIP := --skip netlink::tests::live_controller_resolves_its_own_family \
	--skip live::live_values_match_independent_tools \
	--skip sigkill_never_loses_an_accepted_event --skip power_cuts_ \
	--skip sync:: --skip daemon:: --skip reliability:: --skip clock:: --skip dev_run:: \
	--skip nspawn:: --skip nginx:: --skip stalled_collector:: --skip protocol_fallback:: \
	--skip inventory:: --skip first_hour::a_withdrawal_reaches_the_collector \
	--skip first_hour::new_data_waits_for_the_sync_interval

test-aarch64: ; @$(MAKE) --no-print-directory test-cross TARGET=aarch64-unknown-linux-gnu
test-armv7: ; @$(MAKE) --no-print-directory test-cross TARGET=armv7-unknown-linux-gnueabihf

test-cross:
	@$(MAKE) --no-print-directory cross-check NEED_QEMU=1
	$(CARGO) build --workspace --bins --target $(TARGET)
	ASSENT_TEST_RUNNER="$(QEMU_$(TARGET))" \
		$(CARGO) test --no-fail-fast --workspace --exclude assent-collector --target $(TARGET) -- $(QEMU_SKIP)

# The platform and store tests only (what CI runs at the least).
test-cross-core:
	@$(MAKE) --no-print-directory cross-check NEED_QEMU=1
	$(CARGO) test --no-fail-fast --target $(TARGET) -p assent-platform -p assent-store \
		-- $(QEMU_SKIP)

# End to end on aarch64: the dist binary under qemu grants the required categories,
# collects from the Raspberry Pi fixture, stores, and syncs over TLS to a collector
# running natively on this host (scripts/smoke-cross.sh).
SMOKE_TARGET ?= aarch64-unknown-linux-gnu
SMOKE_ROOT ?= tests/fixtures/roots/rpi4-raspios64
smoke-aarch64:
	@$(MAKE) --no-print-directory cross-check TARGET=$(SMOKE_TARGET) NEED_QEMU=1
	@command -v sqlite3 >/dev/null || { echo "missing: sqlite3; install: apt-get install sqlite3"; exit 1; }
	@$(MAKE) --no-print-directory cross-build TARGET=$(SMOKE_TARGET)
	scripts/smoke-cross.sh "$(QEMU_$(SMOKE_TARGET))" "$(call dist_dir,$(SMOKE_TARGET))/assent" $(SMOKE_ROOT)

# The daemon and the collector on loopback behind the fault proxy for SOAK_MINUTES
# minutes: steady emitters, consent toggles, collector restarts, a buffer small enough to
# evict; checks conservation and a flat footprint. Not part of `make test`.
SOAK_MINUTES ?= 1
.PHONY: soak
soak:
	$(CARGO) build -q --release -p assent -p assent-collector
	SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench -q -p assent-integration-tests --bench soak

# Fuzzing (libFuzzer via cargo-fuzz): each target in fuzz/ for FUZZ_SECONDS, one after
# another. Seeds are read from fuzz/corpus/<target>/ and never written; what a run
# learns goes to fuzz/work/<target>/ (ignored), crashes to fuzz/artifacts/<target>/.
# Runs on stable: RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z sanitizer flags.
# FUZZ_RUNS=N stops each target after N executions instead of FUZZ_SECONDS. The fuzzed
# parsers are safe Rust with no C underneath, so AddressSanitizer finds nothing there that
# a panic or a debug assertion would not, and costs 3 to 4 times the executions:
# FUZZ_SANITIZER=none is the default, FUZZ_SANITIZER=address is there for C code.
FUZZ_SECONDS ?= 30
FUZZ_RUNS ?=
FUZZ_SANITIZER ?= none
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
FUZZ_TARGETS ?= $(shell sed -n 's/^name = "\([a-z0-9_]*\)"$$/\1/p' fuzz/Cargo.toml | grep -v '^assent-fuzz$$')

.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || { \
	  echo "make fuzz needs cargo-fuzz; install it with:"; \
	  echo "    cargo install cargo-fuzz"; \
	  echo "(it also needs a C++ compiler for libFuzzer: apt-get install g++)"; \
	  exit 1; }
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -s $(FUZZ_SANITIZER) -a
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
	  mkdir -p work/$$t; \
	  start=$$(date +%s); \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s $(FUZZ_SANITIZER) -a $$t work/$$t corpus/$$t -- \
	    $(FUZZ_LIMIT) -print_final_stats=1 > work/$$t.log 2>&1 \
	    || { tail -40 work/$$t.log; echo "fuzz: $$t FAILED (crash input in fuzz/artifacts/$$t/)"; exit 1; }; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' work/$$t.log); \
	  printf 'fuzz: %-24s %12s executions in %s s\n' $$t "$$execs" $$(( $$(date +%s) - start )); \
	done
