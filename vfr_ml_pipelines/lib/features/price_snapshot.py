"""One snapshot of the adjusted daily bars per pipeline run: a Parquet file beside the
offline feature store, written once and read by every step that needs prices.

    <root>/_snapshots/adjusted-prices-v1.parquet

The three feature blocks and the labels all start from the same bars: `vfr_ml.raw_prices`
with `adj_close` recomputed from the split and dividend events (market_data/adjust.py).
Reading 1.26 M rows out of PostgreSQL and adjusting them takes seconds, and each of the four
steps used to do it again. The `adjusted_prices` asset now does it once per run and writes
the result here; the other steps read this file (columnar, a fraction of a second).

Why not a feature set of the offline store: a feature set holds float64 features only
(`volume` is an integer), and a write there replaces only the calendar years present in the
frame, so a year that left the price table would survive in the snapshot. A snapshot is one
file, replaced whole. (`_snapshots` cannot be a feature-set name, so
`OfflineFeatureStore.feature_sets()` never lists it.)

The file holds exactly the frame it was given: columns `symbol` (str), `trade_date`
(datetime.date), open, high, low, close, adj_close (float64), volume (int64), dividend,
split_ratio (float64), rows sorted by (symbol, trade_date) as `adjust_prices` returns them;
`read_price_snapshot` gives back an equal frame (same values, dtypes and order).

Guarantees: the file is written to a temporary file beside it, fsync'ed, and moved into
place with `os.replace` (atomic on POSIX): a reader sees the previous snapshot or the new
one, never a mix, and a failed write leaves the previous one. Writing the same prices again
writes the same values (idempotent). No dagster here.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import day_from_number, utc_now_iso
from vfr_ml_pipelines.lib.features.offline_year_files import fsync_dir

SNAPSHOT_NAME = "adjusted-prices-v1"
SNAPSHOT_DIR = "_snapshots"
KEY_COLUMNS = ("symbol", "trade_date")
PRICE_COLUMNS: dict[str, pa.DataType] = {
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "adj_close": pa.float64(),
    "volume": pa.int64(),
    "dividend": pa.float64(),
    "split_ratio": pa.float64(),
}
SCHEMA = pa.schema(
    [pa.field("symbol", pa.string(), nullable=False), pa.field("trade_date", pa.date32(), nullable=False)]
    + [pa.field(name, kind, nullable=False) for name, kind in PRICE_COLUMNS.items()]
)
_META_KEY = b"vfr.price_snapshot"


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot holds and where it came from (read from the file's own metadata)."""

    path: Path
    rows: int
    symbols: int
    first_day: date | None
    last_day: date | None
    written_at: str
    lineage: dict[str, Any]

    def as_metadata(self) -> dict[str, Any]:
        """JSON-friendly summary (for Dagster metadata and lineage)."""
        return {
            "snapshot": str(self.path),
            "rows": self.rows,
            "symbols": self.symbols,
            "first_day": str(self.first_day) if self.first_day else None,
            "last_day": str(self.last_day) if self.last_day else None,
            "written_at": self.written_at,
        }


def snapshot_path(root: str | os.PathLike[str]) -> Path:
    """Where the snapshot lives under a feature-store root."""
    return Path(root).expanduser().resolve() / SNAPSHOT_DIR / f"{SNAPSHOT_NAME}.parquet"


def write_price_snapshot(root: str | os.PathLike[str], prices: pd.DataFrame, *, lineage: Mapping[str, Any]) -> SnapshotInfo:
    """Replace the snapshot under `root` with `prices` (the output of `adjust_prices`).
    `lineage` (code version, input range, ...) is stored in the file. Raises ValueError,
    naming the column and an example row, on a frame that is not sorted, unique, complete
    adjusted bars; nothing is written then."""
    if not isinstance(lineage, Mapping):
        raise TypeError(f"lineage must be a dict (code version, input range, ...), got {type(lineage).__name__}")
    table, symbols, first_day, last_day = _to_table(prices)
    path = snapshot_path(root)
    written_at = utc_now_iso()
    meta = {
        "name": SNAPSHOT_NAME,
        "rows": table.num_rows,
        "symbols": symbols,
        "first_day": first_day.isoformat() if first_day else None,
        "last_day": last_day.isoformat() if last_day else None,
        "written_at": written_at,
        "lineage": dict(lineage),
    }
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        pq.write_table(table, str(temp), compression="lz4", use_dictionary=["symbol"], write_statistics=list(KEY_COLUMNS))
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return price_snapshot_info(root)


def read_price_snapshot(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The snapshot under `root` as the frame that was written (LookupError if none was)."""
    return read_price_snapshot_with_info(root)[0]


def read_price_snapshot_with_info(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, SnapshotInfo]:
    """The snapshot's frame and its description, both from the same version of the file
    (a step records in its lineage exactly the snapshot it computed from)."""
    path = _existing(root)
    table = pq.read_table(str(path))  # one file, opened once: a concurrent os.replace cannot mix two versions
    info = _info(path, table.schema.metadata)
    return table.to_pandas(date_as_object=True), info


def price_snapshot_info(root: str | os.PathLike[str]) -> SnapshotInfo:
    """What the snapshot under `root` holds (LookupError if none was written)."""
    path = _existing(root)
    return _info(path, pq.read_schema(str(path)).metadata)


# ---------------------------------------------------------------------- internals


def _info(path: Path, metadata: dict[bytes, bytes] | None) -> SnapshotInfo:
    raw = (metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path} is not a price snapshot (no {_META_KEY.decode()} metadata)")
    meta = json.loads(raw)
    return SnapshotInfo(
        path=path,
        rows=int(meta["rows"]),
        symbols=int(meta["symbols"]),
        first_day=date.fromisoformat(meta["first_day"]) if meta.get("first_day") else None,
        last_day=date.fromisoformat(meta["last_day"]) if meta.get("last_day") else None,
        written_at=meta["written_at"],
        lineage=meta.get("lineage") or {},
    )


def _existing(root: str | os.PathLike[str]) -> Path:
    path = snapshot_path(root)
    if not path.is_file():
        raise LookupError(
            f"no adjusted-price snapshot at {path}: materialize the `adjusted_prices` asset first "
            "(it reads vfr_ml.raw_prices once per run and writes this file)"
        )
    return path


def _to_table(prices: pd.DataFrame) -> tuple[pa.Table, int, date | None, date | None]:
    """Validate `prices` and convert it to an Arrow table of SCHEMA; also the number of
    symbols and the first and last day."""
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame of adjusted bars, got {type(prices).__name__}")
    expected = [*KEY_COLUMNS, *PRICE_COLUMNS]
    missing = [c for c in expected if c not in prices.columns]
    extra = [c for c in prices.columns if c not in expected]
    if missing or extra:
        raise ValueError(f"adjusted prices need exactly the columns {expected}; missing {missing}, unexpected {extra}")
    n = len(prices)

    def example(i: int) -> str:
        return f"row {i} ({prices['symbol'].iloc[i]!r}, {prices['trade_date'].iloc[i]!r})"

    symbol = prices["symbol"]
    if n and (symbol.isna().any() or pd.api.types.infer_dtype(symbol, skipna=False) != "string"):
        i = next(i for i, s in enumerate(symbol) if not isinstance(s, str))
        raise ValueError(f"column 'symbol' must hold strings, e.g. row {i} holds {symbol.iloc[i]!r}")
    day_col = prices["trade_date"]
    if n and pd.api.types.infer_dtype(day_col, skipna=False) != "date":
        i = next(i for i, d in enumerate(day_col) if not (isinstance(d, date) and not isinstance(d, datetime)))
        raise ValueError(f"column 'trade_date' must hold datetime.date values, e.g. row {i} holds {day_col.iloc[i]!r}")
    arrays = [pa.array(symbol.to_numpy(dtype=object), type=pa.string()), pa.array(day_col.to_numpy(dtype=object), type=pa.date32())]
    for name, kind in PRICE_COLUMNS.items():
        column = prices[name]
        want_int = pa.types.is_integer(kind)
        ok = pd.api.types.is_integer_dtype(column.dtype) if want_int else column.dtype == np.float64
        if n and not ok:
            raise ValueError(f"column {name!r} has dtype {column.dtype}; adjusted prices store it as "
                             f"{'int64' if want_int else 'float64'}, e.g. {example(0)}: {column.iloc[0]!r}")
        values = column.to_numpy(dtype=np.int64 if want_int else np.float64)
        if not want_int and not np.isfinite(values).all():
            i = int(np.argmax(~np.isfinite(values)))
            raise ValueError(f"column {name!r} holds {values[i]} at {example(i)}; adjusted bars are finite numbers")
        arrays.append(pa.array(values, type=kind))
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)
    if not n:
        return table, 0, None, None

    codes, uniques = pd.factorize(symbol, sort=True)
    days = arrays[1].to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64)
    key = codes.astype(np.int64) * np.int64(1 << 32) + (days - days.min())
    step = np.diff(key)
    if (step <= 0).any():
        i = int(np.argmax(step <= 0)) + 1
        problem = "a duplicate (symbol, trade_date)" if step[i - 1] == 0 else "out of (symbol, trade_date) order"
        raise ValueError(f"adjusted prices must be sorted by (symbol, trade_date), one row each: {example(i)} is {problem}")
    return table, len(uniques), day_from_number(int(days.min())), day_from_number(int(days.max()))


__all__ = [
    "PRICE_COLUMNS",
    "SNAPSHOT_NAME",
    "SnapshotInfo",
    "price_snapshot_info",
    "read_price_snapshot",
    "read_price_snapshot_with_info",
    "snapshot_path",
    "write_price_snapshot",
]
