"""Feature store: the offline Parquet store against PostgreSQL, measured in one run.

    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/bench_feature_store.py
    [--symbols 500] [--sessions 2520] [--features 100] [--repeats 3] [--vector-reps 500]

Builds a wide frame of --symbols x --sessions (NYSE sessions ending 2025-12-31) x
--features random float64 features with about 5 % NaN, then measures:

(a) `OfflineFeatureStore.write` of the whole frame and a full `read` back (best of
    --repeats each; the read is checked to be bit-identical, NaN included), plus the first
    full read in a fresh process (what a Dagster step process pays);
(b) the same matrix in PostgreSQL as a wide table (one double precision column per
    feature), loaded by COPY and read back by `COPY (SELECT ... ORDER BY trade_date, symbol)
    TO STDOUT` parsed with pyarrow.csv into the same pandas frame (best of --repeats, also
    checked bit-identical), the date range split over --pg-workers connections (PostgreSQL's
    best case on this machine; --single-connection adds one run on one connection), and the
    server alone producing binary COPY output into /dev/null (`psql`, a lower bound for any
    PostgreSQL client);
(c) latest-vector reads of 25 symbols x 50 features, --vector-reps times each (a new random
    set of 25 symbols every time): `read_latest` from `vfr_ml.feature_latest` on an open
    connection and through the Engine, and `OfflineFeatureStore.vectors` from Parquet,
    as p50 / p95 / p99 in ms;
(d) peak RSS.

One figure per line. PostgreSQL is DATABASE_URL (a scratch database is created and dropped)
or an embedded server (benchmarks/_servers.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _servers import psql_binary, scratch_database  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore  # noqa: E402
from vfr_ml_pipelines.lib.features.online_store import read_latest, write_latest  # noqa: E402
from vfr_ml_pipelines.lib.market_data import calendar  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402
from vfr_ml_pipelines.lib.warehouse.loading import to_csv_bytes  # noqa: E402

FULL_READ_TARGET_S = 3.0
VECTOR_P95_TARGET_MS = 5.0
VECTOR_SYMBOLS, VECTOR_FEATURES = 25, 50
WIDE_TABLE = "vfr_ml.bench_feature_wide"
FEATURE_SET = "bench-matrix-v1"


def build_frame(n_symbols: int, n_sessions: int, n_features: int, seed: int = 7) -> pd.DataFrame:
    """Rows in (trade_date, symbol) order; trade_date as datetime.date; ~5 % NaN."""
    days = calendar.trading_days(date(2005, 1, 3), date(2025, 12, 31))[-n_sessions:]
    rng = np.random.default_rng(seed)
    n = n_symbols * len(days)
    values = rng.standard_normal((n_features, n))  # feature-major: each column contiguous
    values[rng.random((n_features, n), dtype=np.float32) < 0.05] = np.nan
    names = [f"f{j:03d}" for j in range(n_features)]
    frame = pd.DataFrame(values.T, columns=names, copy=False)
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)], dtype=object)
    frame.insert(0, "trade_date", np.repeat(np.array(days, dtype=object), n_symbols))
    frame.insert(0, "symbol", np.tile(symbols, len(days)))
    return frame


def same_frame(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Bit-identical values (NaN where NaN), same keys, same columns."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    if not (a["symbol"].to_numpy() == b["symbol"].to_numpy()).all():
        return False
    if not (a["trade_date"].to_numpy() == b["trade_date"].to_numpy()).all():
        return False
    for name in a.columns[2:]:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        if not np.array_equal(x.view(np.int64), y.view(np.int64)):
            if not np.array_equal(x, y, equal_nan=True):
                return False
    return True


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None  # drop the previous result before measuring the next
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def percentiles(samples: list[float]) -> str:
    p50, p95, p99 = np.percentile(np.array(samples) * 1e3, [50, 95, 99])
    return f"p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   p99 {p99:6.2f} ms"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


COLD_READ = """
import json, sys, time
from pathlib import Path
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
store = OfflineFeatureStore(Path(sys.argv[1]))
started = time.perf_counter()
frame = store.read(sys.argv[2])
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": len(frame), "peak_rss_mb": hwm / 1024}))
"""


def cold_read(root: Path, feature_set: str) -> dict:
    """A full read in a new interpreter (imports not timed)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", COLD_READ, str(root), feature_set], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- PostgreSQL wide table


def load_wide(url: str, frame: pd.DataFrame, workers: int) -> float:
    """COPY the frame into the wide table, a year per COPY, `workers` connections
    (CSV of one year is produced while another is being copied). Returns seconds."""
    day_year = np.array([d.year for d in frame["trade_date"]])
    chunks = [np.flatnonzero(day_year == y) for y in sorted(set(day_year.tolist()))]
    columns = ", ".join(frame.columns)

    def copy_chunk(rows: np.ndarray) -> None:
        payload = to_csv_bytes(frame.iloc[rows[0] : rows[-1] + 1])
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            with cursor.copy(f"COPY {WIDE_TABLE} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                view = memoryview(payload)
                for offset in range(0, len(view), 1 << 24):
                    copy.write(view[offset : offset + (1 << 24)])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(copy_chunk, chunks))
    return time.perf_counter() - started


def read_wide(url: str, schema: pa.Schema, ranges: list[tuple[date, date]]) -> pd.DataFrame:
    """COPY (SELECT ...) TO STDOUT of each date range on its own connection, parsed by
    pyarrow.csv, concatenated in order, converted to pandas."""
    names = ", ".join(schema.names)
    convert = pa_csv.ConvertOptions(column_types={f.name: f.type for f in schema}, strings_can_be_null=False)
    read_options = pa_csv.ReadOptions(column_names=schema.names, block_size=1 << 24)

    def one(bounds: tuple[date, date]) -> pa.Table:
        buffer = bytearray()
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            sql = (
                f"COPY (SELECT {names} FROM {WIDE_TABLE} WHERE trade_date BETWEEN '{bounds[0]}' AND '{bounds[1]}' "
                "ORDER BY trade_date, symbol) TO STDOUT WITH (FORMAT csv)"
            )
            with cursor.copy(sql) as copy:
                for chunk in copy:
                    buffer += chunk
        return pa_csv.read_csv(pa.py_buffer(buffer), read_options=read_options, convert_options=convert)

    if len(ranges) == 1:
        tables = [one(ranges[0])]
    else:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            tables = list(pool.map(one, ranges))
    return pa.concat_tables(tables).to_pandas()


def server_copy_seconds(url: str, columns: list[str], ranges: list[tuple[date, date]]) -> float:
    """The server writing binary COPY output of the ranges (in parallel) into /dev/null."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [psql_binary(), url, "-qc",
             f"\\copy (SELECT {', '.join(columns)} FROM {WIDE_TABLE} WHERE trade_date BETWEEN '{a}' AND '{b}' "
             "ORDER BY trade_date, symbol) TO '/dev/null' WITH (FORMAT binary)"]
        )
        for a, b in ranges
    ]
    if any(p.wait() != 0 for p in processes):
        raise RuntimeError("psql \\copy failed")
    return time.perf_counter() - started


def date_ranges(days: list[date], parts: int) -> list[tuple[date, date]]:
    bounds = np.array_split(np.arange(len(days)), parts)
    return [(days[b[0]], days[b[-1]]) for b in bounds if len(b)]


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=2520)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vector-reps", type=int, default=500)
    parser.add_argument("--pg-workers", type=int, default=2, help="connections of the parallel PostgreSQL read and load")
    parser.add_argument("--single-connection", action="store_true", help="also time one PostgreSQL read on one connection")
    args = parser.parse_args()
    run_started = time.perf_counter()

    started = time.perf_counter()
    frame = build_frame(args.symbols, args.sessions, args.features)
    features = list(frame.columns[2:])
    days = sorted(set(frame["trade_date"].iloc[:: args.symbols]))
    matrix_mb = frame[features].memory_usage(index=False).sum() / 1e6
    print(f"matrix:                          {len(frame):,} rows ({args.symbols} symbols x {len(days)} sessions) x "
          f"{len(features)} float64 features ({matrix_mb:,.0f} MB), {np.isnan(frame['f000']).mean():.1%} NaN; "
          f"built in {time.perf_counter() - started:.1f} s")

    rng = np.random.default_rng(1)
    symbols = frame["symbol"].iloc[: args.symbols].tolist()
    vector_columns = sorted(rng.choice(features, min(VECTOR_FEATURES, len(features)), replace=False).tolist())
    vector_sets = [rng.choice(symbols, min(VECTOR_SYMBOLS, len(symbols)), replace=False).tolist() for _ in range(args.vector_reps)]
    last_day = days[-1]

    with tempfile.TemporaryDirectory(prefix="vfr-bench-store-") as tmp:
        # (a) Parquet
        store = OfflineFeatureStore(Path(tmp))
        lineage = {"code_version": settings.code_version(), "benchmark": "bench_feature_store"}
        write_s, report = best_of(args.repeats, lambda: store.write(FEATURE_SET, frame, lineage=lineage))
        print(f"parquet write (best of {args.repeats}):       {write_s:6.2f} s   {len(report.years)} year files, "
              f"{report.bytes_written / 1e6:,.0f} MB on disk (lz4)")
        parquet_s, back = best_of(args.repeats, lambda: store.read(FEATURE_SET))
        exact = same_frame(back, frame)
        del back
        verdict = "meets" if parquet_s <= FULL_READ_TARGET_S else "MISSES"
        print(f"parquet full read (best of {args.repeats}):   {parquet_s:6.2f} s   bit-identical: {exact}   "
              f"({verdict} the {FULL_READ_TARGET_S:.0f} s target)")
        cold = cold_read(Path(tmp), FEATURE_SET)
        assert cold["rows"] == len(frame)
        print(f"parquet full read, fresh process: {cold['seconds']:6.2f} s   peak RSS of that process {cold['peak_rss_mb']:,.0f} MB")
        print(f"peak RSS after the parquet part:  {peak_rss_mb():,.0f} MB")

        # (b), (c) PostgreSQL
        with scratch_database() as url:
            engine = create_warehouse_engine(url)
            apply_migrations(engine, settings.sql_dir())
            with engine.begin() as conn:
                cols = ", ".join(f"{name} double precision" for name in features)
                conn.execute(text(f"CREATE TABLE {WIDE_TABLE} (symbol varchar(20) NOT NULL, trade_date date NOT NULL, {cols})"))
            load_s = load_wide(url, frame, args.pg_workers)
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {WIDE_TABLE} ADD PRIMARY KEY (trade_date, symbol)"))
                conn.execute(text(f"ANALYZE {WIDE_TABLE}"))
            index_s = time.perf_counter() - started
            with engine.connect() as conn:
                table_mb = conn.execute(text(f"SELECT pg_total_relation_size('{WIDE_TABLE}')")).scalar_one() / 1e6
            print(f"postgres COPY load ({args.pg_workers} conns):     {load_s:6.2f} s   + primary key and ANALYZE {index_s:.2f} s; "
                  f"table with index {table_mb:,.0f} MB")

            schema = pa.schema([pa.field("symbol", pa.string()), pa.field("trade_date", pa.date32())]
                               + [pa.field(name, pa.float64()) for name in features])
            parallel_s, back = best_of(args.repeats, lambda: read_wide(url, schema, date_ranges(days, args.pg_workers)))
            exact_pg = same_frame(back, frame)
            del back
            print(f"postgres full read, {args.pg_workers} conns (best of {args.repeats}):  {parallel_s:6.2f} s   "
                  f"bit-identical: {exact_pg}   (COPY csv -> pyarrow.csv -> pandas)")
            best_pg = parallel_s
            if args.single_connection:
                single_s, back = best_of(1, lambda: read_wide(url, schema, date_ranges(days, 1)))
                print(f"postgres full read, 1 conn (1 run):       {single_s:6.2f} s   bit-identical: {same_frame(back, frame)}")
                del back
                best_pg = min(best_pg, single_s)
            server_s = server_copy_seconds(url, schema.names, date_ranges(days, args.pg_workers))
            print(f"postgres server alone, binary COPY to /dev/null ({args.pg_workers} psql): {server_s:6.2f} s   "
                  "(lower bound for any PostgreSQL client)")
            print(f"ratio parquet read / postgres read: {parquet_s / best_pg:.3f}   (postgres {best_pg:.2f} s is "
                  f"{best_pg / parquet_s:.1f}x slower)")

            # (c) latest vectors: the big frame is dropped first (a serving process does not
            # hold 2.5 M Python objects for the garbage collector to walk), and the three
            # readers take turns so that load from other processes hits them alike
            latest = frame.iloc[len(frame) - args.symbols :].reset_index(drop=True)
            del frame
            gc.collect()
            with engine.begin() as conn:
                written = write_latest(conn, FEATURE_SET, latest, 1.0 - latest[features].isna().mean(axis=1), 1.0)
            assert written == len(latest)
            expected = latest.set_index("symbol")
            with psycopg.connect(url) as conn:
                readers = {
                    "postgres read_latest, open connection": lambda chosen: read_latest(conn, FEATURE_SET, chosen, vector_columns),
                    "postgres read_latest, via Engine pool ": lambda chosen: read_latest(engine, FEATURE_SET, chosen, vector_columns),
                    "parquet OfflineFeatureStore.vectors   ": lambda chosen: store.vectors(FEATURE_SET, last_day, chosen, vector_columns),
                }
                latencies: dict[str, list[float]] = {name: [] for name in readers}
                for name, reader in readers.items():  # warm: prepared statement, pool, footer cache
                    got = reader(vector_sets[0])
                    want = expected.loc[vector_sets[0], ["trade_date", *vector_columns]].reset_index()
                    assert same_frame(got[["symbol", "trade_date", *vector_columns]], want), name
                order = list(readers)
                for i, chosen in enumerate(vector_sets):
                    for name in order[i % 3 :] + order[: i % 3]:
                        t0 = time.perf_counter()
                        got = readers[name](chosen)
                        latencies[name].append(time.perf_counter() - t0)
                        assert len(got) == len(chosen)
            engine.dispose()

        shape = f"{args.vector_reps}x {VECTOR_SYMBOLS} symbols x {len(vector_columns)} features"
        for name, samples in latencies.items():
            print(f"latest vectors, {name} ({shape}): {percentiles(samples)}")
        p95 = float(np.percentile(latencies[order[0]], 95) * 1e3)
        print(f"postgres latest-vector p95 {p95:.2f} ms: {'meets' if p95 <= VECTOR_P95_TARGET_MS else 'MISSES'} the "
              f"{VECTOR_P95_TARGET_MS:.0f} ms target")
    print(f"peak RSS:                         {peak_rss_mb():,.0f} MB")
    print(f"benchmark wall time:              {time.perf_counter() - run_started:.0f} s")


if __name__ == "__main__":
    main()
