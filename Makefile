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

# The daemon and the collector on loopback behind the fault proxy for SOAK_MINUTES
# minutes: steady emitters, consent toggles, collector restarts, a buffer small enough to
# evict; checks conservation and a flat footprint. Not part of `make test`.
SOAK_MINUTES ?= 1
.PHONY: soak
soak:
	$(CARGO) build -q --release -p assent -p assent-collector
	SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench -q -p assent-integration-tests --bench soak
