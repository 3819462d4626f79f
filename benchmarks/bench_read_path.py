"""VFR's read path while sets are republished: 50 concurrent readers against one publisher.

    [REDIS_URL=redis://...] .venv/bin/python benchmarks/bench_read_path.py
    [--harness node|python] [--readers 50] [--rate 1000] [--entries 5000] [--quiet-seconds 4] [--publish-seconds 8]

Publishes --entries realistic predictions (benchmarks/bench_publish.py builds them), then runs
--readers readers, each with its own connection, each doing what VFR does for a covered
symbol: GET of `{prefix}vfr:ml:prediction:{SYMBOL}:1w:default`, JSON.parse and the envelope's
expiry check. Timed per read, from the GET to the parsed payload. Each read is afterwards
checked strictly (envelope shape and the prediction's fields): a failure there counts as
malformed.

Two harnesses read the same keys:
- `node` (the default when `node` is on PATH): benchmarks/vfr_reader.js, VFR's own runtime and
  JSON.parse, 50 connections in one Node process (as a VFR process holds its connections),
  with a minimal RESP client of its own (no npm packages). It measures the server, not the
  harness: a read costs the client about 20 us of CPU.
- `python`: one process per reader (redis-py, json with JSON.parse's rules). Python threads
  share one interpreter lock, and a thread woken by its socket can wait a whole 5 ms switch
  interval for it, hence processes; 50 Python processes on 2 cores are themselves a slow
  client, so this harness's tail is mostly its own scheduling.

Readers are paced (Poisson arrivals at --rate reads/s in all; --rate 0, python only: closed
loop): 50 readers in a closed loop on a 2-core machine would measure the OS run queue.

Two phases, in the same run: "quiet" (readers only, the reference) and "publishing" (the main
process republishes the whole set in a loop, alternating two model versions, each publish one
MULTI/EXEC of --entries SETs, or several with --max-entries-per-transaction). Printed per phase: reads/s, p50 / p99 / p99.9 / max latency,
misses of covered symbols and malformed entries (targets: p99 <= 1 ms on loopback, zero
misses, zero malformed), plus how long Redis itself spends in each EXEC (INFO commandstats):
no other command runs meanwhile, so a read that arrives during an EXEC waits for it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_publish import bench_prefix, prediction_writes, redis_server, remove_prefix, symbol_names  # noqa: E402

from vfr_ml_pipelines.lib.serving import vfr_keys, vfr_writer  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_codec import MalformedEntryError, parse_js_json  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_reader import validate_prediction  # noqa: E402

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


class PythonReaders:
    """One reader process per connection (see the module docstring)."""

    def __init__(self, url: str, keys: list[str], readers: int, rate: float) -> None:
        context = mp.get_context("fork")
        self.phase = context.RawValue("i", WARMUP)
        self.out = context.Queue()
        per_reader = rate / readers if rate > 0 else 0.0
        self.processes = [
            context.Process(target=reader, args=(i, url, keys, per_reader, self.phase, self.out)) for i in range(readers)
        ]
        # forked before the payloads exist: children of a parent holding millions of objects
        # pay for them (the collector walks and so copies them)
        for process in self.processes:
            process.start()

    def set_phase(self, phase: int) -> None:
        self.phase.value = phase

    def results(self) -> list[dict]:
        self.phase.value = DONE
        results = [self.out.get(timeout=60) for _ in self.processes]
        for process in self.processes:
            process.join(timeout=30)
        return results

    def stop(self) -> None:
        self.phase.value = DONE
        for process in self.processes:
            if process.is_alive():
                process.terminate()


class NodeReaders:
    """benchmarks/vfr_reader.js: all readers in one Node process, one connection each."""

    def __init__(self, node: str, url: str, keys: list[str], readers: int, rate: float) -> None:
        if rate <= 0:
            raise SystemExit("the node harness is paced: give --rate > 0")
        self.keys_file = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
        self.keys_file.write("\n".join(keys))
        self.keys_file.close()
        script = Path(__file__).resolve().parent / "vfr_reader.js"
        self.process = subprocess.Popen(
            [node, str(script), url, str(readers), str(rate), self.keys_file.name, self.keys_file.name + ".out"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"vfr_reader.js did not start (exit {self.process.poll()}): {ready!r}")

    def set_phase(self, phase: int) -> None:
        self.process.stdin.write(f"phase {phase}\n")
        self.process.stdin.flush()

    def results(self) -> list[dict]:
        self.process.stdin.write("done\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "done":
            raise RuntimeError(f"vfr_reader.js failed (exit {self.process.wait(timeout=30)})")
        raw = json.loads(Path(self.keys_file.name + ".out").read_text())
        self.process.wait(timeout=30)
        return [{
            "latencies": {p: np.array(raw[str(p)]["latencies"]) / 1e6 for p in (QUIET, PUBLISHING)},
            "misses": {p: raw[str(p)]["misses"] for p in (QUIET, PUBLISHING)},
            "malformed": {p: raw[str(p)]["malformed"] for p in (QUIET, PUBLISHING)},
            "examples": [e for p in (QUIET, PUBLISHING) for e in raw[str(p)]["examples"]],
        }]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        Path(self.keys_file.name).unlink(missing_ok=True)
        Path(self.keys_file.name + ".out").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--harness", choices=("node", "python"), default="node" if shutil.which("node") else "python")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000, help="reads per second of all readers together; 0 = closed loop")
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--quiet-seconds", type=float, default=4)
    parser.add_argument("--publish-seconds", type=float, default=8)
    parser.add_argument("--max-entries-per-transaction", type=int, default=None,
                        help="split each publish (vfr_writer.publish's option): shorter waits, no set-wide switch")
    args = parser.parse_args()
    run_started = time.perf_counter()
    now_ms = int(time.time() * 1000)

    with redis_server() as (url, where):
        client = redis.Redis.from_url(url)
        prefix = bench_prefix()
        keys = [prefix + vfr_keys.prediction_key(symbol, "1w", "default") for symbol in symbol_names(args.entries)]
        if args.harness == "node":
            harness: PythonReaders | NodeReaders = NodeReaders(shutil.which("node") or "node", url, keys, args.readers, args.rate)
        else:
            harness = PythonReaders(url, keys, args.readers, args.rate)
        publish_seconds: list[float] = []
        try:
            sets = {v: prediction_writes(args.entries, args.features, v, now_ms, seed=int(v)) for v in ("1", "2")}
            assert [prefix + w.key for w in sets["1"]] == keys
            vfr_writer.publish(client, prefix, sets["1"], version="1", now_ms=now_ms)
            harness.set_phase(WARMUP)
            time.sleep(1.0)  # connections made, code paths warm
            harness.set_phase(QUIET)
            time.sleep(args.quiet_seconds)
            before = commandstats(client)
            harness.set_phase(PUBLISHING)
            publishing_started = time.perf_counter()
            version = "1"
            while time.perf_counter() - publishing_started < args.publish_seconds:
                version = "2" if version == "1" else "1"
                started = time.perf_counter()
                vfr_writer.publish(client, prefix, sets[version], version=version, now_ms=int(time.time() * 1000),
                                  max_entries_per_transaction=args.max_entries_per_transaction)
                publish_seconds.append(time.perf_counter() - started)
            publishing_elapsed = time.perf_counter() - publishing_started
            after = commandstats(client)
            results = harness.results()
        finally:
            harness.stop()
            remove_prefix(client, prefix)
        client.close()

    durations = {QUIET: args.quiet_seconds, PUBLISHING: publishing_elapsed}
    print(f"server:        {where}")
    pacing = f"paced at {args.rate:,.0f} reads/s in all (Poisson arrivals)" if args.rate > 0 else "closed loop"
    kind = "connections in one Node process (vfr_reader.js)" if args.harness == "node" else "Python processes"
    print(f"readers:       {args.readers} {kind}, one connection each, {pacing}; {args.entries:,} covered symbols")
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
        exec_note = f"; Redis spends {exec_usec / exec_calls / 1e3:.2f} ms in each EXEC (no other command runs meanwhile)"
    split = (f"split into transactions of at most {args.max_entries_per_transaction:,} entries"
             if args.max_entries_per_transaction else "one MULTI/EXEC each")
    print(f"publishes:     {len(publish_seconds)} of {args.entries:,} entries ({split}) in {publishing_elapsed:.1f} s, "
          f"{np.mean(publish_seconds) * 1e3:.0f} ms each on average{exec_note}")
    print(f"ratio p99 while republishing / quiet: {p99[PUBLISHING] / p99[QUIET]:.2f}; p99 target {P99_TARGET_MS} ms: "
          f"quiet {'meets' if p99[QUIET] <= P99_TARGET_MS else 'MISSES'}, republishing "
          f"{'meets' if p99[PUBLISHING] <= P99_TARGET_MS else 'MISSES'}")
    print(f"benchmark wall time: {time.perf_counter() - run_started:.0f} s")


if __name__ == "__main__":
    main()
