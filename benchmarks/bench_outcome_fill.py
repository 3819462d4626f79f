"""The daily outcome fill after a history of served sessions: the bounded fill
(`outcomes.fill_outcomes`: only the pending outcomes and those a re-loaded price restated)
against a full recompute of every known outcome (what every publish did before).

    [DATABASE_URL=postgresql://...] .venv/bin/python benchmarks/bench_outcome_fill.py [--symbols 5000] [--sessions 20] [--before 16]

State: `--sessions` past weekly sessions of `--symbols` 1w predictions (written by the real
writer) whose labels are known, filled once; then one more session whose labels became known.
Timed, best of 2 each, every fill rolled back so each sees the same state: the daily fill
(incremental) and the full recompute, and the refresh of VFR's performance views alone
(`--before 16`: the same again with the migrations before 016, whose views recompute every
outcome). PostgreSQL is a scratch database (benchmarks/_servers.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import scratch_database  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.serving import outcomes, vfr_tables  # noqa: E402
from vfr_ml_pipelines.lib.serving.vfr_store import predictions as predictions_store  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

FIRST = date(2031, 1, 6)  # a Monday


def _session(conn, rng: np.random.Generator, names: list[str], as_of: date, enhancement_id) -> None:
    """One session's 1w prediction rows (as `bench_publish.bench_vfr_rows` writes them) and labels."""
    p = rng.uniform(0.3, 0.7, len(names))
    frame = pd.DataFrame({
        "symbol": names, "current_price": rng.uniform(5, 500, len(names)).round(2),
        "expected_return": (p - 0.5) / 10, "probability": p, "confidence": np.abs(2 * p - 1),
        "direction": np.where(p >= 0.55, "BUY", np.where(p <= 0.45, "SELL", "HOLD")),
        "predicted_at": datetime.now(UTC), "model_name": "vfr-1w", "model_version": "1",
    })
    rows = vfr_tables.ml_prediction_records(frame, "1w", as_of, enhancement_id)
    predictions_store.upsert_prediction_rows(conn, rows)
    predictions_store.upsert_prediction_sessions(conn, rows)
    labels = pd.DataFrame({"horizon": "1w", "trade_date": as_of, "symbol": names,
                           "forward_return": rng.normal(0.002, 0.04, len(names)), "excess_return": 0.0,
                           "known_date": as_of + timedelta(days=7)})
    labels.to_sql("labels", conn, schema="vfr_ml", if_exists="append", index=False, method="multi", chunksize=1000)


def _timed_fill(engine, today: date, full: bool) -> tuple[float, int]:
    """Best of 2 seconds of one fill, each in a transaction rolled back; the outcomes computed."""
    best, considered = float("inf"), 0
    for _ in range(2):
        with engine.connect() as conn:
            transaction = conn.begin()
            started = time.perf_counter()
            report = outcomes.fill_outcomes(conn, today=today, full_recompute=full)
            best = min(best, time.perf_counter() - started)
            considered = report.considered
            transaction.rollback()
    return best, considered


def _timed_refresh(engine) -> float:
    """Best of 2 seconds of `refresh_ml_performance_views()` (VFR's and our fill's refresh)."""
    best = float("inf")
    for _ in range(2):
        with engine.begin() as conn:
            started = time.perf_counter()
            conn.execute(text("SELECT refresh_ml_performance_views()"))
            best = min(best, time.perf_counter() - started)
    return best


def _migrations(tmp: Path, before: int | None) -> Path:
    """The project's migrations, or those numbered below `before` (a copy)."""
    if before is None:
        return settings.sql_dir()
    for path in settings.sql_dir().glob("*.sql"):
        if int(path.name.split("_")[0]) < before:
            shutil.copy(path, tmp / path.name)
    return tmp


def run(args: argparse.Namespace, before: int | None) -> dict[str, float]:
    rng = np.random.default_rng(11)
    names = [f"S{i:05d}" for i in range(args.symbols)]
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_warehouse_engine(url)
        apply_migrations(engine, _migrations(Path(tmp), before))
        started = time.perf_counter()
        with engine.begin() as conn:
            enhancement_id = vfr_tables.ensure_enhancement_definition(conn, "1w")
            for i in range(args.sessions):
                _session(conn, rng, names, FIRST + timedelta(days=7 * i), enhancement_id)
        last = FIRST + timedelta(days=7 * args.sessions)
        with engine.begin() as conn:
            outcomes.fill_outcomes(conn, today=last)  # the history's outcomes, once
            _session(conn, rng, names, last, enhancement_id)  # the new session, known a week later
        print(f"{args.sessions} sessions x {args.symbols:,} symbols filled, one more written: {time.perf_counter() - started:.1f} s")
        today = last + timedelta(days=7)
        out = {"refresh": _timed_refresh(engine)}
        out["daily"], daily_n = _timed_fill(engine, today, full=False)
        out["full"], full_n = _timed_fill(engine, today, full=True)
        engine.dispose()
    what = f"migrations before {before:03d}" if before else "all migrations"
    print(f"{what}: views' refresh {out['refresh']:6.3f} s; daily fill (pending only, refresh included) {out['daily']:6.2f} s, "
          f"{daily_n:,} outcomes computed; full recompute {out['full']:6.2f} s, {full_n:,} outcomes computed")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--before", type=int, default=None,
                        help="also run on the migrations numbered below this (e.g. 16: the views before 016)")
    args = parser.parse_args()
    now = run(args, None)
    print(f"the daily fill takes {now['daily'] / now['full']:.1%} of the full recompute's time after {args.sessions} sessions")
    if args.before:
        then = run(args, args.before)
        print(f"the views' refresh: {now['refresh']:.3f} s now, {then['refresh']:.3f} s with the migrations before "
              f"{args.before:03d}; the daily fill {now['daily']:.2f} s vs {then['daily']:.2f} s")


if __name__ == "__main__":
    main()
