"""Bulk loading of daily prices into PostgreSQL: the pipeline's loader against `psql \\copy`.

500 symbols x 10 years of daily bars (about 1.26 M rows) are loaded by the same code the
`raw_prices` asset uses (delete the date range, COPY, one transaction), and the same rows,
written to a CSV file, by `psql \\copy` into an identical empty table, in the same run.
Prints rows/s of each and the ratio (target: the loader at least half of psql's rate).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import psql_binary, scratch_database  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.market_data import calendar  # noqa: E402
from vfr_ml_pipelines.lib.market_data.schema import PRICE_COLUMNS  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402
from vfr_ml_pipelines.lib.warehouse.partitions import replace_date_range  # noqa: E402

N_SYMBOLS = 500
START, END = date(2016, 1, 4), date(2025, 12, 31)


def price_frame() -> pd.DataFrame:
    days = calendar.trading_days(START, END)
    rng = np.random.default_rng(0)
    n_days = len(days)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, (n_days, N_SYMBOLS)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, close.shape))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    symbols = [f"S{i:04d}" for i in range(N_SYMBOLS)]
    return pd.DataFrame(
        {
            "symbol": np.tile(symbols, n_days),
            "trade_date": np.repeat(np.array(days, dtype=object), N_SYMBOLS),
            "open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
            "adj_close": close.ravel(), "volume": rng.integers(10_000, 5_000_000, close.size),
            "dividend": 0.0, "split_ratio": 1.0, "source": "bench",
        }
    )[[*PRICE_COLUMNS, "source"]]


def main() -> None:
    frame = price_frame()
    rows = len(frame)
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_warehouse_engine(url)
        apply_migrations(engine, settings.sql_dir())
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE vfr_ml.raw_prices_psql (LIKE vfr_ml.raw_prices INCLUDING ALL)"))

        csv_path = Path(tmp) / "prices.csv"
        frame.to_csv(csv_path, index=False, header=False)
        columns = ",".join(frame.columns)

        loader_s, psql_s = [], []
        for _ in range(3):
            started = time.perf_counter()
            with engine.begin() as conn:
                replace_date_range(conn, "vfr_ml.raw_prices", frame, "trade_date", START, END)
            loader_s.append(time.perf_counter() - started)

            subprocess.run([psql_binary(), url, "-qc", "TRUNCATE vfr_ml.raw_prices_psql"], check=True)
            started = time.perf_counter()
            subprocess.run(
                [psql_binary(), url, "-qc", f"\\copy vfr_ml.raw_prices_psql ({columns}) FROM '{csv_path}' WITH (FORMAT csv)"],
                check=True,
            )
            psql_s.append(time.perf_counter() - started)
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM vfr_ml.raw_prices")).scalar_one()
        engine.dispose()
    assert loaded == rows, (loaded, rows)
    best_loader, best_psql = min(loader_s), min(psql_s)
    print(f"rows:                      {rows:,}")
    print(f"pipeline loader (best of 3): {best_loader:.2f} s  = {rows / best_loader:,.0f} rows/s  (includes pandas -> CSV and the range delete)")
    print(f"psql \\copy (best of 3):      {best_psql:.2f} s  = {rows / best_psql:,.0f} rows/s  (CSV already on disk)")
    print(f"loader rate / psql rate:     {best_psql / best_loader:.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()
