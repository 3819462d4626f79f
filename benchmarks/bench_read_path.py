"""VFR's read path while sets are republished: 50 concurrent readers against one publisher.

    [REDIS_URL=redis://...] .venv/bin/python benchmarks/bench_read_path.py
    [--readers 50] [--rate 1000] [--entries 5000] [--quiet-seconds 4] [--publish-seconds 8]

Publishes --entries realistic predictions (benchmarks/bench_publish.py builds them), then runs
--readers reader processes, each with its own connection, each doing what VFR does for a
covered symbol: GET of `{prefix}vfr:ml:prediction:{SYMBOL}:1w:default`, JSON.parse-equivalent
parsing (NaN / Infinity rejected) and the envelope's expiry check. Timed per read, from the
GET to the decoded payload. Each read is afterwards checked strictly (envelope shape and
`validate_prediction`): a failure there counts as malformed.

Two phases, in the same run: "quiet" (readers only, the reference) and "publishing" (the main
process republishes the whole set in a loop, alternating two model versions, each publish one
MULTI/EXEC of --entries SETs). Printed per phase: reads/s, p50 / p99 / p99.9 / max latency,
misses of covered symbols and malformed entries (targets: p99 <= 1 ms on loopback, zero
misses, zero malformed), plus how long Redis itself spends in each EXEC (INFO commandstats).

Why processes and pacing: Python threads share one interpreter lock, and a thread woken by
its socket can wait a whole 5 ms switch interval for it, so 50 threads in one process measure
the lock, not Redis. One process per reader removes that. And 50 readers in a closed loop on
a 2-core machine keep ~50 runnable processes queued on 2 cores: that measures the OS run
queue. So readers are paced: Poisson arrivals at --rate reads/s in all (--rate 0: closed loop).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_publish import bench_prefix, prediction_writes, redis_server, remove_prefix, symbol_names  # noqa: E402

from vfr_ml_pipelines.lib.serving import vfr_cache  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_cache import MalformedEntryError, parse_js_json, validate_prediction  # noqa: E402

WARMUP, QUIET, PUBLISHING, DONE = 0, 1, 2, 3
PHASE_NAMES = {QUIET: "quiet (readers only)", PUBLISHING: "while republishing"}
P99_TARGET_MS = 1.0


def read_like_vfr(client: redis.Redis, key: str, now_ms: int) -> tuple[Any, Any]:
    """GET, parse (JSON.parse semantics) and the envelope's expiry check, as VFR's cache
    does. Returns (payload or None for a miss, the parsed envelope or None)."""
    raw = client.get(key)
    if not raw:
        return None, None
    entry = parse_js_json(raw)
    if not isinstance(entry, dict):
        return None, entry
    timestamp, ttl = entry.get("timestamp"), entry.get("ttl")
    if isinstance(timestamp, (int, float)) and isinstance(ttl, (int, float)) and now_ms - timestamp > ttl * 1000:
        return None, entry
    return entry.get("data"), entry


def envelope_problem(entry: Any) -> str | None:
    """`validate_entry`'s checks on an envelope already parsed (no second parse per read)."""
    if not isinstance(entry, dict):
        return f"envelope is a {type(entry).__name__}"
    for name, kinds in (("data", object), ("timestamp", (int, float)), ("ttl", (int, float)), ("source", str), ("version", str)):
        if name not in entry or not isinstance(entry[name], kinds) or isinstance(entry[name], bool):
            return f"envelope field {name!r} missing or of the wrong type"
    return None


def reader(index: int, url: str, keys: list[str], rate: float, phase: Any, out: Any) -> None:
    client = redis.Redis.from_url(url)  # a connection of this process's own
    rng = random.Random(index)
    latencies: dict[int, list[float]] = {QUIET: [], PUBLISHING: []}
    misses = {QUIET: 0, PUBLISHING: 0}
    malformed = {QUIET: 0, PUBLISHING: 0}
    examples: list[str] = []
    perf = time.perf_counter
    next_at = perf()
    while (current := phase.value) != DONE:
        if rate > 0:
            next_at += rng.expovariate(rate)
            delay = next_at - perf()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.05:
                next_at = perf()  # fell behind (CPU starved): do not fire a burst to catch up
        key = rng.choice(keys)
        now_ms = int(time.time() * 1000)
        started = perf()
        try:
            payload, entry = read_like_vfr(client, key, now_ms)
            elapsed = perf() - started
            # the strict check, outside the timed part (VFR does not do it)
            bad = entry is not None and (
                envelope_problem(entry) is not None or (payload is not None and validate_prediction(payload) != [])
            )
        except MalformedEntryError as exc:
            elapsed, payload, bad = perf() - started, None, True
            if len(examples) < 3:
                examples.append(f"{key}: {exc}")
        if current in latencies:
            latencies[current].append(elapsed)
            if bad:
                malformed[current] += 1
            elif payload is None:
                misses[current] += 1
    client.close()
    out.put({
        "latencies": {p: np.array(v) for p, v in latencies.items()},
        "misses": misses, "malformed": malformed, "examples": examples,
    })


def commandstats(client: redis.Redis) -> dict[str, dict[str, float]]:
    return {name.removeprefix("cmdstat_"): stats for name, stats in client.info("commandstats").items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000, help="reads per second of all readers together; 0 = closed loop")
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--quiet-seconds", type=float, default=4)
    parser.add_argument("--publish-seconds", type=float, default=8)
    args = parser.parse_args()
    run_started = time.perf_counter()
    now_ms = int(time.time() * 1000)

    with redis_server() as (url, where):
        client = redis.Redis.from_url(url)
        prefix = bench_prefix()
        keys = [prefix + vfr_cache.prediction_key(symbol, "1w", "default") for symbol in symbol_names(args.entries)]
        context = mp.get_context("fork")
        phase = context.RawValue("i", WARMUP)
        out = context.Queue()
        per_reader = args.rate / args.readers if args.rate > 0 else 0.0
        readers = [context.Process(target=reader, args=(i, url, keys, per_reader, phase, out)) for i in range(args.readers)]
        publish_seconds: list[float] = []
        try:
            # readers are forked before the payloads exist: children of a parent holding
            # millions of objects pay for them (the collector walks and so copies them)
            for process in readers:
                process.start()
            sets = {v: prediction_writes(args.entries, args.features, v, now_ms, seed=int(v)) for v in ("1", "2")}
            assert [prefix + w.key for w in sets["1"]] == keys
            vfr_cache.publish(client, prefix, sets["1"], version="1", now_ms=now_ms)
            time.sleep(1.0)  # connections made, code paths warm
            phase.value = QUIET
            time.sleep(args.quiet_seconds)
            before = commandstats(client)
            phase.value = PUBLISHING
            publishing_started = time.perf_counter()
            version = "1"
            while time.perf_counter() - publishing_started < args.publish_seconds:
                version = "2" if version == "1" else "1"
                started = time.perf_counter()
                vfr_cache.publish(client, prefix, sets[version], version=version, now_ms=int(time.time() * 1000))
                publish_seconds.append(time.perf_counter() - started)
            publishing_elapsed = time.perf_counter() - publishing_started
            after = commandstats(client)
            phase.value = DONE
            results = [out.get(timeout=60) for _ in readers]
            for process in readers:
                process.join(timeout=30)
        finally:
            phase.value = DONE
            for process in readers:
                if process.is_alive():
                    process.terminate()
            remove_prefix(client, prefix)
        client.close()

    durations = {QUIET: args.quiet_seconds, PUBLISHING: publishing_elapsed}
    print(f"server:        {where}")
    pacing = f"paced at {args.rate:,.0f} reads/s in all (Poisson arrivals)" if args.rate > 0 else "closed loop"
    print(f"readers:       {args.readers} processes, one connection each, {pacing}; {args.entries:,} covered symbols")
    p99 = {}
    for current, name in PHASE_NAMES.items():
        samples = np.concatenate([r["latencies"][current] for r in results]) * 1e3
        misses = sum(r["misses"][current] for r in results)
        malformed = sum(r["malformed"][current] for r in results)
        p50, p99[current], p999 = np.percentile(samples, [50, 99, 99.9])
        print(f"{name:<22} {len(samples) / durations[current]:>8,.0f} reads/s   p50 {p50:5.3f} ms   p99 {p99[current]:6.3f} ms   "
              f"p99.9 {p999:6.3f} ms   max {samples.max():6.2f} ms   misses {misses}   malformed {malformed}   "
              f"({len(samples):,} reads in {durations[current]:.1f} s)")
    for example in [e for r in results for e in r["examples"]][:3]:
        print(f"  malformed: {example}")
    exec_calls = after.get("exec", {}).get("calls", 0) - before.get("exec", {}).get("calls", 0)
    exec_usec = after.get("exec", {}).get("usec", 0) - before.get("exec", {}).get("usec", 0)
    exec_note = ""
    if exec_calls:
        exec_note = f"; Redis spends {exec_usec / exec_calls / 1e3:.1f} ms in each EXEC (no other command runs meanwhile)"
    print(f"publishes:     {len(publish_seconds)} of {args.entries:,} entries in {publishing_elapsed:.1f} s, "
          f"{np.mean(publish_seconds) * 1e3:.0f} ms each on average{exec_note}")
    print(f"ratio p99 while republishing / quiet: {p99[PUBLISHING] / p99[QUIET]:.2f}; p99 target {P99_TARGET_MS} ms: "
          f"quiet {'meets' if p99[QUIET] <= P99_TARGET_MS else 'MISSES'}, republishing "
          f"{'meets' if p99[PUBLISHING] <= P99_TARGET_MS else 'MISSES'}")
    print(f"benchmark wall time: {time.perf_counter() - run_started:.0f} s")


if __name__ == "__main__":
    main()
