"""The offline feature store: feature history as Parquet, one dataset per feature set.

    <root>/<feature_set>/year=<YYYY>/data.parquet   one file per calendar year (offline_year_files.py)
    <root>/<feature_set>/_manifest.json             columns, rows, days, lineage per year (offline_manifest.py)
    <root>/<feature_set>/.lock                      writers serialise on it (fcntl)

This module is the store's API; reading the files back is `offline_reader.py`.

A wide frame has the columns `symbol` (str), `trade_date` (datetime.date), then float64
feature columns (NaN = missing). Each year file holds that year's rows sorted by
(trade_date, symbol), features as float64 (missing values stored as Parquet nulls, read back
as NaN), LZ4-compressed, in row groups of whole sessions (about ROW_GROUP_ROWS rows each) so
that one day's vectors are read from one small row group.

Why Parquet beside PostgreSQL, the measured numbers and the guarantees: docs/feature_store.md.

Guarantees:
* `write` replaces exactly the years present in the frame, each year as a whole. Every year is first written
  to a temporary file next to its target and fsync'ed; only when all years are written are
  they moved into place with `os.replace` (atomic on POSIX). A failure before that point
  (bad data, a crash, a full disk) leaves every previous file as it was; a reader never sees
  a half-written file.
* `write_parts` takes the frame as parts (e.g. a year each, from a generator) and stages
  each part before it asks for the next, so the whole frame is never in memory; the parts
  are moved into place together, with the same guarantees as one `write`.
* Two processes writing different years of one set run in parallel; the moves into place
  and the manifest update happen under an exclusive `fcntl` lock on the set's `.lock`, so
  the manifest is never lost or torn.
* The year files are the truth: `read`, `latest_day` and `vectors` never depend on the
  manifest, and a year file the manifest does not know is described from the file itself
  (each file carries its lineage in its Parquet key-value metadata) at the next write.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import as_date, day_from_number, day_number, utc_now_iso
from vfr_ml_pipelines.lib.features.offline_manifest import commit_years, load_manifest
from vfr_ml_pipelines.lib.features.offline_reader import (
    OpenYearFiles,
    read_filter,
    read_filtered,
    read_whole_files,
    small_frame,
)
from vfr_ml_pipelines.lib.features.offline_year_files import (
    DATA_FILE_NAME,
    KEY_COLUMNS,
    stage_year,
    validate_and_plan,
    year_dir_name,
    year_paths,
)

FEATURE_STORE_DIR_ENV = "VFR_FEATURE_STORE_DIR"
COMPRESSION = "lz4"  # LZ4_RAW: ~2x faster full reads than zstd on this data (docs/feature_store.md)
ROW_GROUP_ROWS = 10_000  # about one month of 500 symbols; cut on session boundaries

_FEATURE_SET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_root() -> Path:
    """`VFR_FEATURE_STORE_DIR` if set, else `<VFR_ML_HOME>/feature_store`."""
    from vfr_ml_pipelines.lib import settings

    raw = settings.env_or_none(FEATURE_STORE_DIR_ENV)
    return Path(raw).expanduser().resolve() if raw else settings.state_dir() / "feature_store"


@dataclass(frozen=True)
class WriteReport:
    feature_set: str
    years: tuple[int, ...]
    rows: int
    columns: tuple[str, ...]
    first_day: date | None
    last_day: date | None
    files: tuple[Path, ...]
    bytes_written: int
    seconds: float
    manifest_path: Path | None


class OfflineFeatureStore:
    """Parquet feature history under `root` (created on the first write)."""

    def __init__(self, root: str | os.PathLike[str], *, compression: str = COMPRESSION, row_group_rows: int = ROW_GROUP_ROWS):
        self.root = Path(root).expanduser().resolve()
        self.compression = compression
        self.row_group_rows = max(1, int(row_group_rows))
        self._open_files = OpenYearFiles()  # for latest_day and vectors

    def __repr__(self) -> str:
        return f"OfflineFeatureStore({str(self.root)!r})"

    # ------------------------------------------------------------------ write

    def write(self, feature_set: str, frame: pd.DataFrame, *, lineage: Mapping[str, Any]) -> WriteReport:
        """Store `frame`, replacing exactly the calendar years present in it (the other
        years stay untouched). `lineage` (code version, input partition range, ...) goes
        into the manifest and into each written file. Raises ValueError on a frame that is
        not a valid wide feature frame, naming the column and an example symbol/day."""
        return self.write_parts(feature_set, [frame], lineage=lineage)

    def write_parts(self, feature_set: str, parts: Iterable[pd.DataFrame], *, lineage: Mapping[str, Any]) -> WriteReport:
        """`write` for a frame given as parts, e.g. one calendar year each from a generator,
        so that the whole frame never has to be in memory: each part is validated and its
        years are staged to temporary files before the next part is asked for, and all
        staged years are moved into place together at the end, as `write` does for one
        frame (same guarantees: a failure in any part, even the last, leaves every previous
        file). A year must lie in one part only, and every part must have the same feature
        columns in the same order (ValueError otherwise, and nothing is written)."""
        started = time.perf_counter()
        set_dir = self._set_dir(feature_set)
        if not isinstance(lineage, Mapping):
            raise TypeError(f"lineage must be a dict (code version, input range, ...), got {type(lineage).__name__}")
        lineage_json = json.dumps(dict(lineage), sort_keys=True, default=str)
        written_at = utc_now_iso()
        features: list[str] | None = None
        staged: dict[int, tuple[Path, Path, dict[str, Any]]] = {}  # year -> (temp, final, manifest entry)
        try:
            for k, frame in enumerate(parts):
                part_features, plans = validate_and_plan(frame)
                if features is None:
                    features = part_features
                elif part_features != features:
                    raise ValueError(
                        f"part {k} of the write to {feature_set!r} has other feature columns than part 0: it adds "
                        f"{[c for c in part_features if c not in features][:10]} and lacks "
                        f"{[c for c in features if c not in part_features][:10]}"
                        + ("" if set(part_features) != set(features) else " (same names, other order)")
                    )
                for plan in plans:
                    if plan.year in staged:
                        raise ValueError(f"year {plan.year} is in two parts of the write to {feature_set!r}; "
                                         "a year is written as a whole, from one part")
                    set_dir.mkdir(parents=True, exist_ok=True)
                    staged[plan.year] = stage_year(
                        feature_set, set_dir, frame, plan, features, written_at, lineage_json,
                        compression=self.compression, row_group_rows=self.row_group_rows,
                    )
                del frame  # before the next part is built
            if not staged:
                return WriteReport(feature_set, (), 0, tuple(features or ()), None, None, (), 0,
                                   time.perf_counter() - started, None)
            manifest_path = commit_years(set_dir, feature_set, staged, features, written_at, lineage_json)
        except BaseException:
            for temp, _, _ in staged.values():
                temp.unlink(missing_ok=True)
            raise

        entries = [staged[y][2] for y in sorted(staged)]
        return WriteReport(
            feature_set=feature_set,
            years=tuple(sorted(staged)),
            rows=sum(e["rows"] for e in entries),
            columns=tuple(features),
            first_day=date.fromisoformat(entries[0]["first_day"]),
            last_day=date.fromisoformat(entries[-1]["last_day"]),
            files=tuple(staged[y][1] for y in sorted(staged)),
            bytes_written=sum(e["bytes"] for e in entries),
            seconds=time.perf_counter() - started,
            manifest_path=manifest_path,
        )

    # ------------------------------------------------------------------ read

    def read(
        self,
        feature_set: str,
        columns: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        symbols: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """symbol, trade_date and the requested features (all by default, in stored order)
        for days in [start, end] (both inclusive, either open) and the given symbols,
        sorted by (trade_date, symbol). LookupError if the set was never written."""
        set_dir = self._set_dir(feature_set)
        paths = self._existing_year_paths(feature_set, set_dir)
        start, end = as_date(start, "start"), as_date(end, "end")
        selected = [p for y, p in sorted(paths.items()) if (start is None or y >= start.year) and (end is None or y <= end.year)]
        schema = pq.read_schema(str(selected[0] if selected else paths[max(paths)]))
        names = self._feature_columns(feature_set, set_dir, schema, columns)
        where = read_filter(start, end, symbols)
        if where is None:
            return read_whole_files(selected, names)
        return read_filtered(selected, schema, names, where)

    def latest_day(self, feature_set: str, on_or_before: date | None = None) -> date:
        """The last stored session (on or before `on_or_before` when given)."""
        set_dir = self._set_dir(feature_set)
        paths = self._existing_year_paths(feature_set, set_dir)
        bound = as_date(on_or_before, "on_or_before")
        bound_days = day_number(bound) if bound is not None else None
        limit = bound_days if bound_days is not None else np.iinfo(np.int64).max
        for year in sorted(paths, reverse=True):
            if bound is not None and year > bound.year:
                continue
            opened = self._open_files.open(paths[year])
            lo, hi = opened.first_days, opened.last_days
            fully = hi[(lo >= 0) & (hi <= limit)]
            best = int(fully.max()) if len(fully) else None
            # row groups without statistics, or straddling the bound, are read
            to_read = [i for i in range(len(lo)) if lo[i] < 0 or lo[i] <= limit < hi[i]]
            if to_read:
                with opened.lock:
                    column = opened.reader.read_row_groups(to_read, columns=["trade_date"])["trade_date"]
                if bound_days is not None:
                    column = column.filter(pc.less_equal(column, pa.scalar(day_from_number(bound_days), pa.date32())))
                if len(column):
                    value = day_number(pc.max(column).as_py())
                    best = value if best is None else max(best, value)
            if best is not None:
                return day_from_number(best)
        raise LookupError(
            f"feature set {feature_set!r} in {self.root} has no session"
            + (f" on or before {bound}" if bound is not None else "")
        )

    def vectors(
        self, feature_set: str, day: date, symbols: Iterable[str], columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The feature vectors of `symbols` on `day`: one row per requested symbol that has
        a row that day, in the order requested; columns symbol, trade_date, features."""
        set_dir = self._set_dir(feature_set)
        day = as_date(day, "day")
        if day is None:
            raise ValueError("vectors needs a day")
        requested = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
        path = set_dir / year_dir_name(day.year) / DATA_FILE_NAME
        try:
            opened = self._open_files.open(path)
        except FileNotFoundError:
            paths = self._existing_year_paths(feature_set, set_dir)  # LookupError for an unknown set
            schema = pq.read_schema(str(paths[max(paths)]))
            names = self._feature_columns(feature_set, set_dir, schema, columns)
            return pa.schema([schema.field(c) for c in (*KEY_COLUMNS, *names)]).empty_table().to_pandas()
        names = self._feature_columns(feature_set, set_dir, opened.schema, columns)
        wanted = [*KEY_COLUMNS, *names]
        target = day_number(day)
        lo, hi = opened.first_days, opened.last_days
        groups = np.flatnonzero((lo < 0) | ((lo <= target) & (target <= hi))).tolist()
        if groups:
            with opened.lock:
                table = opened.reader.read_row_groups(groups, columns=wanted, use_threads=False)
        else:
            table = pa.schema([opened.schema.field(c) for c in wanted]).empty_table()
        rank = pc.index_in(table["symbol"], value_set=pa.array(requested, pa.string()))
        keep = pc.and_(pc.equal(table["trade_date"], pa.scalar(day, pa.date32())), pc.is_valid(rank))
        table, rank = table.filter(keep), rank.filter(keep)
        if table.num_rows > 1:
            table = table.take(pc.sort_indices(rank))
        return small_frame(table)

    def manifest(self, feature_set: str) -> dict[str, Any]:
        """The set's `_manifest.json` (LookupError if the set was never written)."""
        set_dir = self._set_dir(feature_set)
        manifest = load_manifest(set_dir)
        if not manifest:
            raise LookupError(f"feature set {feature_set!r} not found in the offline feature store at {self.root}")
        return manifest

    def years(self, feature_set: str) -> list[int]:
        """The calendar years stored for the set, from its year files (LookupError if the set
        was never written)."""
        return list(self._existing_year_paths(feature_set, self._set_dir(feature_set)))

    def feature_sets(self) -> list[str]:
        """Names of the stored feature sets."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _FEATURE_SET.match(p.name) and year_paths(p))

    # ------------------------------------------------------------------ internals

    def _set_dir(self, feature_set: str) -> Path:
        if not isinstance(feature_set, str) or not _FEATURE_SET.match(feature_set):
            raise ValueError(
                f"feature set name {feature_set!r} must be letters, digits, '.', '_' or '-' (e.g. 'technical-v2')"
            )
        return self.root / feature_set

    def _existing_year_paths(self, feature_set: str, set_dir: Path) -> dict[int, Path]:
        paths = year_paths(set_dir)
        if not paths:
            raise LookupError(f"feature set {feature_set!r} not found in the offline feature store at {self.root}")
        return paths

    def _feature_columns(
        self, feature_set: str, set_dir: Path, schema: pa.Schema, columns: Sequence[str] | None
    ) -> list[str]:
        stored = [n for n in schema.names if n not in KEY_COLUMNS]
        if columns is None:
            manifest = load_manifest(set_dir)
            order = manifest.get("columns") if manifest else None
            if order and set(order) == set(stored):
                return list(order)
            return stored
        if isinstance(columns, str):
            columns = [columns]
        names = [c for c in dict.fromkeys(columns) if c not in KEY_COLUMNS]
        unknown = [c for c in names if c not in set(stored)]
        if unknown:
            raise KeyError(
                f"feature set {feature_set!r} has no column(s) {unknown}; it stores {len(stored)} features, "
                f"e.g. {stored[:5]}"
            )
        return names


__all__ = [
    "COMPRESSION",
    "FEATURE_STORE_DIR_ENV",
    "OfflineFeatureStore",
    "ROW_GROUP_ROWS",
    "WriteReport",
    "default_root",
]
