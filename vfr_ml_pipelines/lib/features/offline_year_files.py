"""The year files of the offline feature store: where they lie, what a wide frame must be
to be written, and how one year of it is written.

    <root>/<feature_set>/year=<YYYY>/data.parquet   one file per calendar year

Each year file holds that year's rows sorted by (trade_date, symbol), features as float64
(missing values stored as Parquet nulls, read back as NaN), in row groups of whole sessions
(about `row_group_rows` rows each) so that one day's vectors are read from one small row
group, with trade_date statistics per row group. A year is first written to a temporary
file beside its target and fsync'ed (`stage_year`); `offline_manifest.commit_years` moves
it into place."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import day_number, iso_day

KEY_COLUMNS = ("symbol", "trade_date")
DATA_FILE_NAME = "data.parquet"

_YEAR_DIR = re.compile(r"^year=(\d{4})$")


@dataclass(frozen=True)
class YearPlan:
    year: int
    rows: np.ndarray | slice  # positions in the validated frame, in (trade_date, symbol) order
    days: np.ndarray  # int32 days since epoch of those rows


def year_dir_name(year: int) -> str:
    return f"year={year:04d}"


def year_paths(set_dir: Path) -> dict[int, Path]:
    """The set's year files by year, oldest first (none for a set never written)."""
    paths: dict[int, Path] = {}
    if not set_dir.is_dir():
        return paths
    for entry in set_dir.iterdir():
        match = _YEAR_DIR.match(entry.name)
        if match and (entry / DATA_FILE_NAME).is_file():
            paths[int(match.group(1))] = entry / DATA_FILE_NAME
    return dict(sorted(paths.items()))


# ---------------------------------------------------------------------- validation


def validate_and_plan(frame: pd.DataFrame) -> tuple[list[str], list[YearPlan]]:
    """Check a wide feature frame; returns its feature columns and, per calendar year, the
    frame positions of that year's rows in (trade_date, symbol) order."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"feature frame lacks required column(s) {missing}: a wide frame has symbol, trade_date, then float features"
        )
    if frame.columns.duplicated().any():
        raise ValueError(f"feature frame has duplicate column(s) {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    features = [c for c in frame.columns if c not in KEY_COLUMNS]
    bad_names = [c for c in features if not isinstance(c, str) or not c]
    if bad_names:
        raise ValueError(f"feature column names must be non-empty strings, got {bad_names[:5]}")
    n = len(frame)
    symbol = frame["symbol"]

    def example(i: int) -> str:
        return f"symbol {symbol.iloc[i]!r} on {frame['trade_date'].iloc[i]}"

    null_symbol = symbol.isna().to_numpy()
    if null_symbol.any():
        raise ValueError(f"column 'symbol' is missing in {int(null_symbol.sum())} rows, e.g. row {int(np.argmax(null_symbol))}")
    if n and pd.api.types.infer_dtype(symbol, skipna=False) not in ("string", "empty"):
        i = next(i for i, s in enumerate(symbol) if not isinstance(s, str))
        raise ValueError(f"column 'symbol' must hold strings, e.g. row {i} holds {symbol.iloc[i]!r}")
    days = _trade_days(frame["trade_date"], symbol)

    for name in features:
        column = frame[name]
        if not pd.api.types.is_float_dtype(column.dtype) or not isinstance(column.dtype, np.dtype):
            detail = f", e.g. {example(0)}: {column.iloc[0]!r}" if n else ""
            raise ValueError(
                f"feature column {name!r} has dtype {column.dtype}; feature columns must be float64 (NaN = missing){detail}"
            )
        values = column.to_numpy()
        infinite = np.isinf(values)
        if infinite.any():
            i = int(np.argmax(infinite))
            raise ValueError(
                f"feature column {name!r} holds {values[i]} in {int(infinite.sum())} rows, e.g. {example(i)}; "
                "store missing values as NaN, never infinity"
            )
    if not n:
        return features, []

    codes, _ = pd.factorize(symbol, sort=True)
    order = np.lexsort((codes, days))
    sorted_days = days[order]
    sorted_codes = codes[order]
    same = (sorted_days[1:] == sorted_days[:-1]) & (sorted_codes[1:] == sorted_codes[:-1])
    if same.any():
        count = int(same.sum())
        i = int(order[int(np.argmax(same))])
        raise ValueError(
            f"feature frame has {count} duplicate (symbol, trade_date) row(s), e.g. {example(i)}; "
            "each symbol has one row per session"
        )
    years = sorted_days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    bounds = np.flatnonzero(np.diff(years)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [n]))
    already_sorted = bool((order == np.arange(n)).all())
    plans = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        rows: np.ndarray | slice = slice(a, b) if already_sorted else order[a:b]
        plans.append(YearPlan(int(years[a]), rows, sorted_days[a:b]))
    return features, plans


def _trade_days(column: pd.Series, symbol: pd.Series) -> np.ndarray:
    """trade_date as int32 days since 1970-01-01; datetime.date values, or datetime64 values
    at midnight."""
    n = len(column)
    if column.isna().any():
        i = int(np.argmax(column.isna().to_numpy()))
        raise ValueError(f"column 'trade_date' is missing in {int(column.isna().sum())} rows, e.g. symbol {symbol.iloc[i]!r}")
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if getattr(column.dtype, "tz", None) is not None:
            raise ValueError("column 'trade_date' must hold dates, not timezone-aware timestamps")
        values = column.to_numpy()
        as_days = values.astype("datetime64[D]")
        off = as_days != values
        if off.any():
            i = int(np.argmax(off))
            raise ValueError(f"column 'trade_date' must hold dates, e.g. symbol {symbol.iloc[i]!r} has {column.iloc[i]}")
        return as_days.astype(np.int64).astype(np.int32)
    kind = pd.api.types.infer_dtype(column, skipna=False) if n else "empty"
    if kind not in ("date", "empty"):
        i = next(i for i, d in enumerate(column) if not (isinstance(d, date) and not isinstance(d, datetime)))
        raise ValueError(
            f"column 'trade_date' must hold datetime.date values, e.g. symbol {symbol.iloc[i]!r} has {column.iloc[i]!r}"
        )
    return pa.array(column, type=pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64).astype(np.int32)


def frame_to_table(frame: pd.DataFrame, rows: np.ndarray | slice, days: np.ndarray, features: Sequence[str]) -> pa.Table:
    """One year of a validated frame as an Arrow table in (trade_date, symbol) order:
    symbol string, trade_date date32, features float64 with NaN as null."""
    arrays = [
        pa.array(frame["symbol"].to_numpy()[rows], type=pa.string()),
        pa.array(days.astype("datetime64[D]"), type=pa.date32()),
    ]
    for name in features:
        values = np.asarray(frame[name].to_numpy()[rows], dtype=np.float64)
        arrays.append(pa.array(values, type=pa.float64(), from_pandas=True))
    schema = pa.schema(
        [pa.field("symbol", pa.string(), nullable=False), pa.field("trade_date", pa.date32(), nullable=False)]
        + [pa.field(name, pa.float64()) for name in features]
    )
    return pa.Table.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------- writing


def stage_year(
    feature_set: str, set_dir: Path, frame: pd.DataFrame, plan: YearPlan, features: list[str],
    written_at: str, lineage_json: str, *, compression: str, row_group_rows: int,
) -> tuple[Path, Path, dict[str, Any]]:
    """Write one year of a validated frame to a temporary file beside its target;
    returns (temporary file, target, manifest entry). The caller moves it into place
    or, on failure, deletes it (a failure here deletes it itself)."""
    table = frame_to_table(frame, plan.rows, plan.days, features)
    year_dir = set_dir / year_dir_name(plan.year)
    year_dir.mkdir(exist_ok=True)
    final = year_dir / DATA_FILE_NAME
    temp = year_dir / f".{DATA_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    metadata = {
        b"vfr.feature_set": feature_set.encode(),
        b"vfr.year": str(plan.year).encode(),
        b"vfr.written_at": written_at.encode(),
        b"vfr.lineage": lineage_json.encode(),
    }
    try:
        groups = write_year_file(table, plan.days, temp, metadata, compression=compression, row_group_rows=row_group_rows)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    entry = {
        "file": f"{year_dir_name(plan.year)}/{DATA_FILE_NAME}",
        "rows": table.num_rows,
        "symbols": int(pc.count_distinct(table.column("symbol")).as_py()),
        "first_day": iso_day(int(plan.days[0])),
        "last_day": iso_day(int(plan.days[-1])),
        "row_groups": groups,
        "bytes": temp.stat().st_size,
        "written_at": written_at,
        "lineage": json.loads(lineage_json),
    }
    return temp, final, entry


def write_year_file(
    table: pa.Table, days: np.ndarray, path: Path, metadata: dict[bytes, bytes], *, compression: str, row_group_rows: int,
) -> int:
    """Write `table` (one year, sorted) to `path` in row groups of whole sessions, then
    fsync it. Returns the number of row groups."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    cuts = row_group_cuts(days, row_group_rows)
    with pq.ParquetWriter(
        str(path),
        table.schema,
        compression=compression,
        use_dictionary=["symbol"],
        write_statistics=list(KEY_COLUMNS),
    ) as writer:
        for a, b in zip(cuts[:-1], cuts[1:]):
            writer.write_table(table.slice(a, b - a), row_group_size=b - a)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(cuts) - 1


def row_group_cuts(days: np.ndarray, target_rows: int) -> list[int]:
    """Row offsets [0, ..., n] cutting `days` (sorted) into groups of whole sessions of
    about `target_rows` rows."""
    n = len(days)
    session_starts = np.concatenate(([0], np.flatnonzero(np.diff(days)) + 1)).tolist()
    cuts = [0]
    for start in session_starts[1:]:
        if start - cuts[-1] >= target_rows:
            cuts.append(start)
    cuts.append(n)
    return cuts


def row_group_day_ranges(footer: pq.FileMetaData) -> tuple[np.ndarray, np.ndarray]:
    """First and last day (days since epoch) of each row group from the trade_date
    statistics; -1 where a row group has no statistics (read it to find out)."""
    index = footer.schema.to_arrow_schema().get_field_index("trade_date")
    lo = np.full(footer.num_row_groups, -1, dtype=np.int64)
    hi = np.full(footer.num_row_groups, -1, dtype=np.int64)
    for i in range(footer.num_row_groups):
        stats = footer.row_group(i).column(index).statistics
        if stats is not None and stats.has_min_max:
            lo[i], hi[i] = day_number(stats.min), day_number(stats.max)
    return lo, hi


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename into it survives a crash (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
