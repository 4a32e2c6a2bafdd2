# Bastion: the two commands a newcomer needs are `make testnet` and `make test`.
# Everything builds in ONE profile (release): tests, clippy, benches and binaries share it.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: prereqs build test testnet sim-soak bench lint fmt clippy

prereqs:
	@bash scripts/install-prereqs.sh

build: prereqs
	$(CARGO) build --release --workspace

## Run every test (unit, property, deterministic simulation sweep), bounded to minutes.
test: prereqs
	$(CARGO) test --workspace --release

## Start a local 4-validator testnet in the foreground (Ctrl-C stops it).
testnet: build
	@echo "starting a local 4-validator testnet (Ctrl-C stops it)"
	$(CARGO) run --release --quiet --bin bastion -- testnet up --validators $${VALIDATORS:-4}

## Thousands of simulation seeds (not run in CI).
sim-soak:
	SIM_SEEDS=$${SIM_SEEDS:-5000} $(CARGO) test --release -p bastion-tests --test simulation_tests sweep -- --nocapture

## Criterion benchmarks of the hot paths.
bench: prereqs
	$(CARGO) bench -p bastion-benches

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
