#!/usr/bin/env python3
"""JSON helpers of scripts/bench-e2e.sh (standard library only).

Subcommands:
  pids MANIFEST            the validators' pids from DIR/testnet.json, one a line
  host MANIFEST            load average, other builds (rustc) and foreign bastion-node processes
  threads PID              CPU ticks per thread name of a process (JSON)
  point ...                one bench run reduced to a point (one JSON line)
  show POINTS              a one-line summary of the last point
  lost POINTS              exit 0 if the last point lost transactions
  sustained POINTS         exit 0 if the last point is sustained
  max POINTS MODE          the highest sustained rate of MODE (empty if none)
  config KEY=VALUE...      the run's settings as JSON
  report ...               the final document
"""

import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys
import time

# perf symbol/DSO patterns → the component the time is charged to (first match wins).
COMPONENTS = [
    ("signature verification (ed25519 / curve25519)",
     r"curve25519|ed25519|edwards|ristretto|scalar|field::|backend::vector|montgomery|multiscalar|straus|pippenger|verify_batch"),
    ("hashing (SHA-256)", r"sha2|sha256|Sha256|compress256|digest::"),
    ("wasm execution", r"wasmtime|wasmi|cranelift|wasmer|bastion_vm|\bvm::"),
    ("RocksDB", r"rocksdb|librocksdb|snappy|lz4|zstd"),
    ("QUIC / TLS", r"quinn|rustls|ring::|aws_lc|chacha|aes|gcm|poly1305"),
    ("HTTP / JSON API", r"hyper|axum|\bh2::|http::|tower|serde_json"),
    ("serialization", r"serde|bincode|borsh|postcard|prost"),
    ("allocator / memcpy", r"malloc|free|realloc|jemalloc|mimalloc|memcpy|memmove|memset|alloc::"),
    ("async runtime / threads", r"tokio|crossbeam|rayon|parking_lot|futex|std::thread|mio::"),
    ("consensus / node / ledger (bastion)", r"bastion"),
]


def pids(manifest):
    with open(manifest) as f:
        doc = json.load(f)
    return [v.get("pid") for v in sorted(doc["validators"], key=lambda v: v["index"])]


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def host(manifest):
    ours = {p for p in pids(manifest) if p}
    procs = [(int(p.split("/")[2]), comm(p.split("/")[2])) for p in glob.glob("/proc/[0-9]*")]
    with open("/proc/loadavg") as f:
        load = [float(x) for x in f.read().split()[:3]]
    return {
        "load_avg": load,
        "rustc_processes": sum(1 for _, c in procs if c == "rustc"),
        "foreign_bastion_nodes": sum(1 for p, c in procs if c == "bastion-node" and p not in ours),
    }


def threads(pid):
    """CPU ticks (utime + stime) per thread name."""
    out = {}
    for stat in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        name = re.sub(r"[-_:]?\d+$", "", name) or name  # tokio-runtime-w-3 → one bucket
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


def load_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def point(a):
    bench = load_json(a.bench, {})
    if "error" in bench and "committed_tps" not in bench:
        bench = {"error": bench["error"]}
    try:
        with open(a.rss) as f:
            rss = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        rss = []
    try:  # "elapsed_s rss0 rss1 ..." (KiB), one line per 10 s
        with open(a.rss + ".series") as f:
            series = [[int(x) for x in line.split()] for line in f if line.strip()]
    except (OSError, ValueError):
        series = []
    t0, t1 = load_json(a.threads0, {}), load_json(a.threads1, {})
    hz = os.sysconf("SC_CLK_TCK")
    split = {k: round((t1.get(k, 0) - t0.get(k, 0)) / hz, 2) for k in t1}
    split = {k: v for k, v in sorted(split.items(), key=lambda kv: -kv[1]) if v > 0}
    p = {"mode": a.mode, "rate": a.rate, "duration_s": a.duration}
    p.update(json.loads(a.extra))
    p.update(bench)
    p["bench_exit"] = a.rc
    p["max_rss_kib"] = rss
    p["max_rss_mib"] = round(max(rss) / 1024, 1) if rss else None
    p["rss_mib_every_10s"] = [[row[0]] + [round(k / 1024, 1) for k in row[1:]] for row in series]
    p["validator0_cpu_seconds_by_thread"] = split
    p["host_before"] = load_json(a.host, {})
    p["sustained"] = is_sustained(p, a.p99_limit_ms)
    return p


def is_sustained(p, p99_limit_ms):
    want = p["rate"] * p["duration_s"]
    return (
        p.get("bench_exit") == 0
        and p.get("submitted") == want
        and (p.get("offered_tps") or 0) >= 0.95 * p["rate"]  # the client kept its schedule
        and p.get("accepted") == want
        and p.get("committed") == want  # executed: a `rejected` receipt does not count
        and p.get("rejected_in_block", 0) == 0
        and p.get("backpressured", 0) == 0  # no 429 at all
        and p.get("lost") == 0
        and p.get("rejected") == 0
        and p.get("errors") == 0
        and p.get("p99_ms") is not None
        and p["p99_ms"] < p99_limit_ms
    )


def read_points(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def show(p):
    f = lambda v: "-" if v is None else f"{v:.0f}"
    return (f"  {p['mode']} {p['rate']} tx/s x {p['duration_s']} s: committed {p.get('committed_tps', 0):.0f} tx/s, "
            f"p50 {f(p.get('p50_ms'))} p90 {f(p.get('p90_ms'))} p99 {f(p.get('p99_ms'))} ms, "
            f"429s {p.get('backpressured')} rejected {p.get('rejected')} in-block-rejected {p.get('rejected_in_block')} "
            f"errors {p.get('errors')} lost {p.get('lost')} "
            f"timeouts {p.get('round_timeouts')} max RSS {p.get('max_rss_mib')} MiB"
            f"{' SUSTAINED' if p['sustained'] else ''}"
            f"{'' if p.get('bench_exit') == 0 else ' (bench failed: ' + str(p.get('error')) + ')'}")


def max_sustained(points, mode):
    ok = [p for p in points if p["mode"] == mode and p["sustained"]]
    return max(ok, key=lambda p: p["rate"]) if ok else None


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
            f.seek(0)
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        flags = []
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or None
    except OSError:
        rev = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "cpu_flags": [x for x in ("avx2", "sha_ni", "avx512f", "bmi2", "adx") if x in flags],
        "mem_total_mib": mem,
        "kernel": platform.release(),
        "git_rev": rev,
    }


def perf_summary(path):
    """Self-time per component and the top symbols from `perf report --stdio -g none`."""
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*\S)", line)
            if m:
                symbol = re.sub(r"\s+-\s+-$", "", m.group(3))  # the empty IPC columns
                rows.append((float(m.group(1)), m.group(2), symbol))
    components = {}
    for pct, dso, sym in rows:
        text = f"{dso} {sym}"
        if dso.startswith("[kernel"):
            name = "kernel (syscalls, network, I/O)"
        else:
            name = next((n for n, rx in COMPONENTS if re.search(rx, text)), "other")
        components[name] = round(components.get(name, 0) + pct, 2)
    return {
        "components_percent": dict(sorted(components.items(), key=lambda kv: -kv[1])),
        "top_symbols": [{"percent": p, "dso": d, "symbol": s[:160]} for p, d, s in rows[:25]],
    }


def report(a):
    points = read_points(a.points)
    modes = {}
    for p in points:
        modes.setdefault(p["mode"], {"points": []})["points"].append(p)
    for mode, m in modes.items():
        best = max_sustained(points, mode)
        m["max_sustained"] = best
        m["max_rss_mib"] = max((p["max_rss_mib"] for p in m["points"] if p.get("max_rss_mib")), default=None)
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "config": json.loads(a.config),
        "sustained_rule": "every transaction sent on schedule (offered >= 95 % of the rate), admitted and committed (0 rejected, 0 errors, 0 lost) "
                          "with p99 submit-to-commit latency under the limit",
        "modes": modes,
        "lost_or_failed": bool(int(a.failed)),
    }
    if a.perf:
        doc["profile"] = {"perf_report": a.perf, **perf_summary(a.perf)}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(a.out + ".tmp", a.out)
    for mode, m in modes.items():
        b = m["max_sustained"]
        if b:
            print(f"bench-e2e: {mode}: highest sustained {b['rate']} tx/s (committed {b['committed_tps']:.0f} tx/s, "
                  f"p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms, round timeouts {b['round_timeouts']})",
                  file=sys.stderr)
        else:
            print(f"bench-e2e: {mode}: no point sustained", file=sys.stderr)


def main():
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "pids":
        print("\n".join(str(p) for p in pids(rest[0]) if p))
    elif cmd == "host":
        print(json.dumps(host(rest[0])))
    elif cmd == "threads":
        print(json.dumps(threads(rest[0])))
    elif cmd == "point":
        ap = argparse.ArgumentParser()
        for k in ("mode", "extra", "bench", "rss", "host", "threads0", "threads1"):
            ap.add_argument("--" + k, required=True)
        for k in ("rate", "duration", "rc"):
            ap.add_argument("--" + k, type=int, required=True)
        ap.add_argument("--p99-limit-ms", type=float, required=True)
        print(json.dumps(point(ap.parse_args(rest))))
    elif cmd == "show":
        print(show(read_points(rest[0])[-1]))
    elif cmd == "lost":
        last = read_points(rest[0])[-1]
        sys.exit(0 if (last.get("lost") or 0) > 0 else 1)
    elif cmd == "sustained":
        sys.exit(0 if read_points(rest[0])[-1]["sustained"] else 1)
    elif cmd == "max":
        best = max_sustained(read_points(rest[0]), rest[1])
        print(best["rate"] if best else "")
    elif cmd == "config":
        print(json.dumps(dict(kv.split("=", 1) for kv in rest)))
    elif cmd == "report":
        ap = argparse.ArgumentParser()
        for k in ("points", "out", "perf", "config", "failed"):
            ap.add_argument("--" + k, required=True)
        report(ap.parse_args(rest))
    else:
        sys.exit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
