#!/usr/bin/env bash
# End-to-end load sweep of fresh local 4-validator testnets (`make bench-e2e`, `make bench-wan`).
#
# Builds the release binaries once, copies them aside (so a concurrent rebuild cannot swap
# them mid-run), and for each mode starts a FRESH testnet in a temporary directory, runs
# `bastion bench --json` at increasing rates, stops the testnet and records every point:
#
#   signed   executed, signed transfers (BENCH_RATES), then, at the highest sustained rate,
#            one run with a `perf` profile of validator 0 (BENCH_PROFILE=1, the default)
#            and, with BENCH_SOAK=1, one long run (BENCH_SOAK_DURATION, default 300 s);
#   opaque   a `--consensus-only` testnet, opaque BENCH_TX_SIZE-byte transactions
#            (BENCH_OPAQUE_RATES);
#   wan      (BENCH_WAN=1, or BENCH_MODES=wan) a `--faults` testnet whose user-space relay
#            delays every datagram by each of BENCH_WAN_DELAYS ms (round trip 2 x delay),
#            at BENCH_WAN_RATE signed tx/s.
#
# Every run offers at most BENCH_CONCURRENCY (1024) requests in flight, each carrying up
# to BENCH_BATCH (256) transactions (`POST /v1/transactions/batch`; 1 = one request per
# transaction); a sweep ends after BENCH_STOP_AFTER (2) unsustained points in a row.
#
# A point is "sustained" when every transaction was sent on schedule (offered load at least
# 95 % of the rate: the client kept up), admitted (no 429, no
# error) and committed (zero lost), with p99 latency under BENCH_P99_LIMIT_MS (2000).
# During every run each validator's RSS is sampled (/proc/PID/status VmRSS) and the CPU
# time of validator 0's threads is split by thread name. The load average and the number
# of other builds (rustc) and other bastion-node processes on the host are recorded next
# to each point, since they share its cores.
#
# Writes $CARGO_TARGET_DIR/bench/$BENCH_NAME.json (default target/bench/e2e.json) and
# prints its path. Exits non-zero if any run lost a transaction or failed; always stops
# the testnets it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
NAME=${BENCH_NAME:-e2e}
OUT=$TARGET/bench/$NAME.json
CARGO=${CARGO:-cargo}

RATES=${BENCH_RATES:-"2000 5000 8000 10000 12000 14000 16000 18000 20000 22000 24000 26000"}
DURATION=${BENCH_DURATION:-10}
OPAQUE_RATES=${BENCH_OPAQUE_RATES:-"10000 20000 30000 40000 45000 50000 55000 60000"}
TX_SIZE=${BENCH_TX_SIZE:-512}
MODES=${BENCH_MODES:-"signed opaque"}
if [[ ${BENCH_WAN:-0} == 1 && " $MODES " != *" wan "* ]]; then MODES="$MODES wan"; fi
WAN_RATE=${BENCH_WAN_RATE:-2000}
WAN_DELAYS=${BENCH_WAN_DELAYS:-"0 25 50"}
SOAK=${BENCH_SOAK:-0}
SOAK_DURATION=${BENCH_SOAK_DURATION:-300}
PROFILE=${BENCH_PROFILE:-1}
PROFILE_SECS=${BENCH_PROFILE_SECS:-10}
P99_LIMIT_MS=${BENCH_P99_LIMIT_MS:-2000}
STOP_AFTER=${BENCH_STOP_AFTER:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-1024}
BATCH=${BENCH_BATCH:-256}
SETTLE_SECS=${BENCH_SETTLE_SECS:-3}
VALIDATORS=4
HELPER=$ROOT/scripts/bench_e2e.py

die() { echo "bench-e2e: $*" >&2; exit 1; }
log() { echo "bench-e2e: $*" >&2; }

command -v python3 >/dev/null || die "python3 is required"
for n in $CONCURRENCY $BATCH $RATES $OPAQUE_RATES $WAN_RATE $WAN_DELAYS $DURATION $SOAK_DURATION $PROFILE_SECS $TX_SIZE; do
    [[ $n =~ ^[0-9]+$ ]] || die "not a whole number: '$n' (check the BENCH_* variables)"
done

# --- state the trap cleans up ------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bastion-bench.XXXXXX")
BIN=$WORK/bin
POINTS=$WORK/points.jsonl
STARTED=()      # testnet dirs we started
BACKGROUND=()   # pids of samplers / perf / bench we started
FAILED=0

cleanup() {
    local status=$?
    set +e
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null; done
    for dir in "${STARTED[@]}"; do
        "$BIN/bastion" testnet down --dir "$dir" >/dev/null 2>&1 || log "could not stop the testnet in $dir"
    done
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build once, then run a private copy ---------------------------------------------------
if [[ ${BENCH_BUILD:-1} == 1 ]]; then
    log "building release binaries (bastion, bastion-node)"
    (cd "$ROOT" && $CARGO build --release -p bastion-node -p bastion-client --bins)
fi
mkdir -p "$BIN" "$TARGET/bench"
for b in bastion bastion-node; do
    [[ -x $TARGET/release/$b ]] || die "$TARGET/release/$b is missing (build with BENCH_BUILD=1)"
    cp "$TARGET/release/$b" "$BIN/$b"
done
export BASTION_NODE_BIN=$BIN/bastion-node
BASTION=$BIN/bastion

PERF=""
if [[ $PROFILE == 1 ]]; then
    PERF=$(command -v perf || ls /usr/bin/perf_* 2>/dev/null | head -1 || true)
    [[ -n $PERF ]] || log "perf not found (Debian: apt-get install linux-perf); profiling falls back to the thread CPU split"
fi

# --- testnets ------------------------------------------------------------------------------
# up DIR [FLAGS...]: a fresh detached testnet in DIR.
up() {
    local dir=$1; shift
    STARTED+=("$dir")
    "$BASTION" testnet up --validators "$VALIDATORS" --dir "$dir" --detach --reset "$@" >"$dir.up.log" 2>&1 \
        || { cat "$dir.up.log" >&2; die "testnet up failed in $dir"; }
    log "testnet up in $dir ($*)"
}

# forget PID: it has ended; the trap must not signal a pid that may be reused.
forget() {
    local kept=() p
    for p in "${BACKGROUND[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    BACKGROUND=("${kept[@]}")
}

down() {
    local dir=$1
    "$BASTION" testnet down --dir "$dir" >/dev/null 2>&1 || log "could not stop the testnet in $dir"
    local kept=()
    for d in "${STARTED[@]}"; do [[ $d == "$dir" ]] || kept+=("$d"); done
    STARTED=("${kept[@]}")
}

# The validators' pids, one line each, in index order.
pids() { python3 "$HELPER" pids "$1/testnet.json"; }

# sample_rss DIR FILE: every second, the max VmRSS (KiB) seen per validator so far → FILE.
sample_rss() {
    local dir=$1 file=$2 i pid rss tick=0
    local -a list max now
    mapfile -t list < <(pids "$dir")
    for i in "${!list[@]}"; do max[i]=0; done
    while true; do
        for i in "${!list[@]}"; do
            pid=${list[i]}
            rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
            now[i]=${rss:-0}
            [[ -n $rss && $rss -gt ${max[i]} ]] && max[i]=$rss
        done
        echo "${max[*]}" >"$file.tmp" && mv "$file.tmp" "$file"
        ((tick % 10 == 0)) && echo "$tick ${now[*]}" >>"$file.series"
        tick=$((tick + 1))
        sleep 1
    done
}

# run_point MODE DIR RATE DURATION EXTRA_JSON [BENCH FLAGS...]: one `bastion bench` run,
# appended to POINTS. Returns 0 if the point is sustained.
run_point() {
    local mode=$1 dir=$2 rate=$3 duration=$4 extra=$5; shift 5
    local tag=$WORK/$mode-$rate-$duration-$RANDOM
    local pid0 sampler rc=0
    pid0=$(pids "$dir" | sed -n 1p)
    python3 "$HELPER" host "$dir/testnet.json" >"$tag.host.json"
    python3 "$HELPER" threads "$pid0" >"$tag.threads0"
    sample_rss "$dir" "$tag.rss" &
    sampler=$!
    BACKGROUND+=("$sampler")
    log "$mode: $rate tx/s for $duration s ..."
    BASTION_TESTNET_DIR=$dir "$BASTION" bench --json --rate "$rate" --duration "$duration" \
        --concurrency "$CONCURRENCY" --batch "$BATCH" "$@" \
        >"$tag.bench.json" 2>"$tag.bench.err" &
    local bench=$!
    BACKGROUND+=("$bench")
    if [[ ${PROFILE_THIS:-0} == 1 && -n $PERF ]]; then
        sleep 3
        "$PERF" record -F 499 -g -p "$pid0" -o "$WORK/perf.data" -- sleep "$PROFILE_SECS" \
            >"$WORK/perf.record.log" 2>&1 || log "perf record failed: $(tail -3 "$WORK/perf.record.log")"
    fi
    wait "$bench" || rc=$?
    forget "$bench"
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    forget "$sampler"
    python3 "$HELPER" threads "$pid0" >"$tag.threads1"
    if [[ $rc != 0 ]]; then
        log "bench exited with $rc: $(tail -3 "$tag.bench.err")"
        FAILED=1
    fi
    python3 "$HELPER" point --mode "$mode" --rate "$rate" --duration "$duration" --extra "$extra" \
        --bench "$tag.bench.json" --rss "$tag.rss" --host "$tag.host.json" \
        --threads0 "$tag.threads0" --threads1 "$tag.threads1" --p99-limit-ms "$P99_LIMIT_MS" \
        --rc "$rc" >>"$POINTS"
    python3 "$HELPER" show "$POINTS" >&2
    if python3 "$HELPER" lost "$POINTS"; then
        log "ERROR: the last run LOST transactions (accepted, never committed)"
        FAILED=1
    fi
    sleep "$SETTLE_SECS"
    python3 "$HELPER" sustained "$POINTS"
}

# sweep MODE DIR "RATES" [BENCH FLAGS...]: ends after STOP_AFTER unsustained points in a row.
sweep() {
    local mode=$1 dir=$2 rates=$3; shift 3
    local misses=0
    for rate in $rates; do
        if run_point "$mode" "$dir" "$rate" "$DURATION" '{}' "$@"; then misses=0; else misses=$((misses + 1)); fi
        if ((misses >= STOP_AFTER)); then
            log "$mode: $misses unsustained points in a row; the sweep ends here"
            break
        fi
    done
}

for mode in $MODES; do
    dir=$WORK/testnet-$mode
    case $mode in
    signed)
        up "$dir"
        sweep signed "$dir" "$RATES"
        down "$dir"
        max=$(python3 "$HELPER" max "$POINTS" signed)
        # The sweep's overloaded points leave a larger state behind: profile and soak the
        # highest sustained rate on a fresh testnet, as the sweep measured it.
        dir=$WORK/testnet-signed-max
        if [[ -n $max && ($PROFILE == 1 || $SOAK == 1) ]]; then up "$dir"; fi
        if [[ -n $max && $PROFILE == 1 ]]; then
            PROFILE_THIS=1 run_point signed-profile "$dir" "$max" $((PROFILE_SECS + 8)) '{"profile": true}' || true
            if [[ -n $PERF && -s $WORK/perf.data ]]; then
                "$PERF" report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none \
                    >"$TARGET/bench/$NAME-perf.txt" 2>/dev/null || log "perf report failed"
            fi
        fi
        if [[ -n $max && $SOAK == 1 ]]; then
            run_point signed-soak "$dir" "$max" "$SOAK_DURATION" '{"soak": true}' || true
        fi
        [[ -n $max ]] || log "signed: no rate was sustained"
        if [[ -n $max && ($PROFILE == 1 || $SOAK == 1) ]]; then down "$dir"; fi
        ;;
    opaque)
        up "$dir" --consensus-only
        sweep opaque "$dir" "$OPAQUE_RATES" --opaque --tx-size "$TX_SIZE"
        down "$dir"
        ;;
    wan)
        up "$dir" --faults
        for delay in $WAN_DELAYS; do
            "$BASTION" testnet --dir "$dir" latency "$delay" >/dev/null
            sleep 2
            run_point wan "$dir" "$WAN_RATE" "$DURATION" "{\"delay_ms\": $delay, \"rtt_ms\": $((2 * delay))}" || true
        done
        down "$dir"
        ;;
    *) die "unknown mode '$mode' in BENCH_MODES (signed, opaque, wan)" ;;
    esac
done

perf_txt=$TARGET/bench/$NAME-perf.txt
[[ -s $perf_txt ]] || perf_txt=""
python3 "$HELPER" report --points "$POINTS" --out "$OUT" --perf "$perf_txt" \
    --config "$(python3 "$HELPER" config "modes=$MODES" "signed_rates=$RATES" "opaque_rates=$OPAQUE_RATES" \
        "duration_s=$DURATION" "tx_size=$TX_SIZE" "wan_rate=$WAN_RATE" "wan_delays_ms=$WAN_DELAYS" \
        "soak=$SOAK" "soak_duration_s=$SOAK_DURATION" "concurrency=$CONCURRENCY" "batch=$BATCH" "p99_limit_ms=$P99_LIMIT_MS" "validators=$VALIDATORS" \
        "perf=${PERF:-none}")" --failed "$FAILED"
echo "$OUT"
if [[ $FAILED != 0 ]]; then
    die "a run lost transactions or failed (see \"lost\" and \"bench_exit\" in $OUT)"
fi
