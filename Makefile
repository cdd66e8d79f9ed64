# Assent build entry points. `make help` lists them.
CARGO ?= cargo
ROOT ?= /

.PHONY: help build test lint fmt fmt-check clippy bench run preview dist size

help:
	@echo "make run        the agent on this machine with a local collector (configs/dev.toml)"
	@echo "make preview    what Assent could collect on this machine (ROOT=dir for a fixture)"
	@echo "make test       fmt check, clippy -D warnings, all tests"
	@echo "make build      debug build of every binary"
	@echo "make lint       fmt check and clippy"
	@echo "make bench      print collection, parsing and store figures"
	@echo "make dist       shipping-profile binaries for this machine"
	@echo "make size       dist binary sizes"

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
test: lint build
	$(CARGO) test --workspace

# The agent in the foreground with configs/dev.toml and a local collector alongside.
run:
	scripts/dev-run.sh

# What Assent could collect on this machine (or ROOT=dir), ignoring consent.
preview:
	$(CARGO) run -q -p assent -- collect --preview --root $(ROOT)

bench:
	$(CARGO) build -q --release -p assent -p assent-collector
	$(CARGO) bench -q -p assent-integration-tests --bench preview
	$(CARGO) bench -q -p assent-platform --bench packages
	$(CARGO) bench -q -p assent-store --bench append
	$(CARGO) bench -q -p assent-collector --bench ingest

dist:
	$(CARGO) build --profile dist -p assent

size: dist
	@ls -l target/dist/assent | awk '{printf "assent (dist, host): %d bytes (%.2f MiB)\n", $$5, $$5/1048576}'

# Fuzzing (libFuzzer via cargo-fuzz): each target in fuzz/ for FUZZ_SECONDS, one after
# another. Seeds are read from fuzz/corpus/<target>/ and never written; what a run
# learns goes to fuzz/work/<target>/ (ignored), crashes to fuzz/artifacts/<target>/.
# Runs on stable: RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z sanitizer flags.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= $(shell sed -n 's/^name = "\([a-z0-9_]*\)"$$/\1/p' fuzz/Cargo.toml | grep -v '^assent-fuzz$$')

.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || { \
	  echo "make fuzz needs cargo-fuzz; install it with:"; \
	  echo "    cargo install cargo-fuzz"; \
	  echo "(it also needs a C++ compiler for libFuzzer: apt-get install g++)"; \
	  exit 1; }
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
	  mkdir -p work/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t work/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 > work/$$t.log 2>&1 \
	    || { tail -40 work/$$t.log; echo "fuzz: $$t FAILED (crash input in fuzz/artifacts/$$t/)"; exit 1; }; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' work/$$t.log); \
	  printf 'fuzz: %-24s %12s executions in %s s\n' $$t "$$execs" $(FUZZ_SECONDS); \
	done
