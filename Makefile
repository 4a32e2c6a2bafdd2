# Bastion: the two commands a newcomer needs are `make testnet` and `make test`.
# Everything builds in ONE profile (release): tests, clippy, benches and binaries share it.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: prereqs build test testnet sim-soak bench lint fmt clippy fuzz soak bench-e2e bench-wan

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

## Every fuzz target (tests named fuzz_*, corpora in fuzz/corpus/) with many more cases.
fuzz: prereqs
	FUZZ_CASES=$${FUZZ_CASES:-200000} $(CARGO) test --release --workspace fuzz_ -- --nocapture

## The long versions (not run in CI, each bounded): thousands of simulation seeds,
## 20 random validator crashes under load, and 30 s at twice the sustainable rate.
soak: prereqs
	$(CARGO) build --release -p bastion-node --bin bastion-node
	SIM_SEEDS=$${SIM_SEEDS:-5000} $(CARGO) test --release -p bastion-tests --test simulation_tests sweep -- --nocapture
	CRASH_EVENTS=$${CRASH_EVENTS:-20} LOAD_SECS=$${LOAD_SECS:-30} $(CARGO) test --release -p bastion-tests \
		--test crash_e2e_tests --test storage_fault_e2e_tests -- --nocapture

## Criterion benchmarks of the hot paths, then the paired ed25519 ratio (ours vs dalek).
bench: prereqs
	$(CARGO) bench -p bastion-benches
	$(CARGO) run --release -p bastion-benches --example ed25519_ratio

## End-to-end sweeps on fresh local 4-validator testnets (signed, then consensus-only);
## writes ${CARGO_TARGET_DIR:-target}/bench/e2e.json. Knobs: BENCH_RATES, BENCH_DURATION,
## BENCH_OPAQUE_RATES, BENCH_WAN=1, BENCH_SOAK=1, BENCH_PROFILE=0 (see scripts/bench-e2e.sh).
bench-e2e: prereqs
	CARGO="$(CARGO)" bash scripts/bench-e2e.sh

## WAN emulation: validator traffic through the testnet's relay, delayed 0 / 25 / 50 ms each
## way (0 / 50 / 100 ms round trips); writes ${CARGO_TARGET_DIR:-target}/bench/wan.json.
bench-wan: prereqs
	CARGO="$(CARGO)" BENCH_MODES=wan BENCH_NAME=wan bash scripts/bench-e2e.sh

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
