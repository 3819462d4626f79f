"""The offline feature store: feature history as Parquet, one dataset per feature set.

    <root>/<feature_set>/year=<YYYY>/data.parquet   one file per calendar year
    <root>/<feature_set>/_manifest.json             columns, rows, days, lineage per year
    <root>/<feature_set>/.lock                      writers serialise on it (fcntl)

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

import fcntl
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import as_date, day_from_number, day_number, iso_day, utc_now_iso

FEATURE_STORE_DIR_ENV = "VFR_FEATURE_STORE_DIR"
KEY_COLUMNS = ("symbol", "trade_date")
MANIFEST_NAME = "_manifest.json"
DATA_FILE_NAME = "data.parquet"
LOCK_NAME = ".lock"
FORMAT_VERSION = "vfr-offline-feature-store/1"
COMPRESSION = "lz4"  # LZ4_RAW: ~2x faster full reads than zstd on this data (docs/feature_store.md)
ROW_GROUP_ROWS = 10_000  # about one month of 500 symbols; cut on session boundaries

_FEATURE_SET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_YEAR_DIR = re.compile(r"^year=(\d{4})$")


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


@dataclass(frozen=True)
class _YearFile:
    """A year file opened (memory-mapped) as it was at `key`; a replaced file is reopened."""

    key: tuple[int, int, int]  # inode, mtime_ns, size
    reader: pq.ParquetFile
    schema: pa.Schema
    first_days: np.ndarray  # per row group, days since epoch; -1 = no statistics
    last_days: np.ndarray
    lock: threading.Lock


@dataclass(frozen=True)
class _YearPlan:
    year: int
    rows: np.ndarray | slice  # positions in the validated frame, in (trade_date, symbol) order
    days: np.ndarray  # int32 days since epoch of those rows


class OfflineFeatureStore:
    """Parquet feature history under `root` (created on the first write)."""

    def __init__(self, root: str | os.PathLike[str], *, compression: str = COMPRESSION, row_group_rows: int = ROW_GROUP_ROWS):
        self.root = Path(root).expanduser().resolve()
        self.compression = compression
        self.row_group_rows = max(1, int(row_group_rows))
        self._files: dict[Path, _YearFile] = {}  # open year files, for latest_day and vectors
        self._files_lock = threading.Lock()

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
                part_features, plans = _validate_and_plan(frame)
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
                    staged[plan.year] = self._stage_year(feature_set, set_dir, frame, plan, features, written_at, lineage_json)
                del frame  # before the next part is built
            if not staged:
                return WriteReport(feature_set, (), 0, tuple(features or ()), None, None, (), 0,
                                   time.perf_counter() - started, None)

            with self._locked(set_dir):
                manifest = self._load_manifest(set_dir)
                on_disk = self._year_paths(set_dir)
                kept = sorted(set(on_disk) - set(staged))
                stored_columns = self._stored_columns(manifest, on_disk, kept)
                if kept and stored_columns is not None and set(stored_columns) != set(features):
                    added = [c for c in features if c not in stored_columns]
                    dropped = [c for c in stored_columns if c not in features]
                    raise ValueError(
                        f"feature set {feature_set!r} stores {len(stored_columns)} columns in years {kept} that this "
                        f"write does not replace; this frame adds {added[:10]} and lacks {dropped[:10]}. Write every "
                        "stored year at once to change the columns, or store the new columns as a new feature set"
                    )
                columns = list(stored_columns) if kept and stored_columns is not None else list(features)
                for year in sorted(staged):
                    temp, final, _ = staged[year]
                    os.replace(temp, final)
                    fsync_dir(final.parent)
                years = {str(y): e for y, e in (manifest.get("years") or {}).items() if int(y) in on_disk}
                for year in kept:
                    if str(year) not in years:
                        years[str(year)] = _entry_from_file(on_disk[year], set_dir)
                for year in staged:
                    years[str(year)] = staged[year][2]
                manifest_path = self._save_manifest(set_dir, feature_set, columns, years, written_at, json.loads(lineage_json))
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

    def _stage_year(
        self, feature_set: str, set_dir: Path, frame: pd.DataFrame, plan: _YearPlan, features: list[str],
        written_at: str, lineage_json: str,
    ) -> tuple[Path, Path, dict[str, Any]]:
        """Write one year of a validated frame to a temporary file beside its target;
        returns (temporary file, target, manifest entry). The caller moves it into place
        or, on failure, deletes it (a failure here deletes it itself)."""
        table = _frame_to_table(frame, plan.rows, plan.days, features)
        year_dir = set_dir / f"year={plan.year:04d}"
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
            groups = self._write_file(table, plan.days, temp, metadata)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        entry = {
            "file": f"year={plan.year:04d}/{DATA_FILE_NAME}",
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

    def _write_file(self, table: pa.Table, days: np.ndarray, path: Path, metadata: dict[bytes, bytes]) -> int:
        """Write `table` (one year, sorted) to `path` in row groups of whole sessions, then
        fsync it. Returns the number of row groups."""
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
        cuts = _row_group_cuts(days, self.row_group_rows)
        with pq.ParquetWriter(
            str(path),
            table.schema,
            compression=self.compression,
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
        wanted = [*KEY_COLUMNS, *names]

        expression = None
        if start is not None:
            expression = _and(expression, ds.field("trade_date") >= pa.scalar(start, pa.date32()))
        if end is not None:
            expression = _and(expression, ds.field("trade_date") <= pa.scalar(end, pa.date32()))
        if symbols is not None:
            wanted_symbols = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
            expression = _and(expression, ds.field("symbol").isin(pa.array(wanted_symbols, pa.string())))

        if expression is None:
            # Every row of every file: the size is known up front, so each year is decoded
            # (the next one in the background) and copied straight into the result's one
            # float64 block. Peak memory is the result plus about two years, where
            # Table.to_pandas needs twice the result. The files are opened first, so that a
            # concurrent writer's os.replace cannot change them between counting and reading.
            handles = [pa.OSFile(str(p)) for p in selected]
            try:
                footers = [pq.read_metadata(h) for h in handles]

                def load_pinned(i: int) -> pa.Table:
                    reader = pq.ParquetFile(handles[i], metadata=footers[i], read_dictionary=["symbol"])
                    try:
                        return reader.read(columns=wanted, use_threads=True)
                    finally:
                        reader.close()  # frees its buffers; the handle stays open (not the reader's)

                builder = _FrameBuilder(sum(f.num_rows for f in footers), names)
                for table in _prefetched(load_pinned, range(len(handles))):
                    builder.add(table)
                return builder.frame()
            finally:
                for handle in handles:
                    handle.close()

        def load(path: Path) -> pa.Table:
            return ds.dataset(str(path), schema=schema, format="parquet").to_table(columns=wanted, filter=expression)

        tables = list(_prefetched(load, selected))
        builder = _FrameBuilder(sum(t.num_rows for t in tables), names)
        while tables:
            builder.add(tables.pop(0))
        return builder.frame()

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
            opened = self._year_file(paths[year])
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
        path = set_dir / f"year={day.year:04d}" / DATA_FILE_NAME
        try:
            opened = self._year_file(path)
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
        return _small_frame(table)

    def manifest(self, feature_set: str) -> dict[str, Any]:
        """The set's `_manifest.json` (LookupError if the set was never written)."""
        set_dir = self._set_dir(feature_set)
        manifest = self._load_manifest(set_dir)
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
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _FEATURE_SET.match(p.name) and self._year_paths(p))

    # ------------------------------------------------------------------ internals

    def _set_dir(self, feature_set: str) -> Path:
        if not isinstance(feature_set, str) or not _FEATURE_SET.match(feature_set):
            raise ValueError(
                f"feature set name {feature_set!r} must be letters, digits, '.', '_' or '-' (e.g. 'technical-v2')"
            )
        return self.root / feature_set

    @staticmethod
    def _year_paths(set_dir: Path) -> dict[int, Path]:
        paths: dict[int, Path] = {}
        if not set_dir.is_dir():
            return paths
        for entry in set_dir.iterdir():
            match = _YEAR_DIR.match(entry.name)
            if match and (entry / DATA_FILE_NAME).is_file():
                paths[int(match.group(1))] = entry / DATA_FILE_NAME
        return dict(sorted(paths.items()))

    def _existing_year_paths(self, feature_set: str, set_dir: Path) -> dict[int, Path]:
        paths = self._year_paths(set_dir)
        if not paths:
            raise LookupError(f"feature set {feature_set!r} not found in the offline feature store at {self.root}")
        return paths

    def _feature_columns(
        self, feature_set: str, set_dir: Path, schema: pa.Schema, columns: Sequence[str] | None
    ) -> list[str]:
        stored = [n for n in schema.names if n not in KEY_COLUMNS]
        if columns is None:
            manifest = self._load_manifest(set_dir)
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

    @staticmethod
    def _stored_columns(manifest: dict[str, Any], on_disk: dict[int, Path], kept: list[int]) -> list[str] | None:
        if not kept:
            return None
        if manifest.get("columns"):
            return list(manifest["columns"])
        schema = pq.read_schema(str(on_disk[kept[0]]))
        return [n for n in schema.names if n not in KEY_COLUMNS]

    def _year_file(self, path: Path) -> _YearFile:
        """`path` opened, from the cache unless the file was replaced since (a writer's
        os.replace changes the inode). The reader keeps the file it opened mapped, so a
        replacement never changes what an open reader sees."""
        st = os.stat(path)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._files.get(path)
        if cached is not None and cached.key == key:
            return cached
        with self._files_lock:
            for _ in range(5):
                source = pa.memory_map(str(path))
                st = os.stat(path)
                if (st.st_ino, st.st_mtime_ns, st.st_size) == key:
                    break
                source.close()  # replaced between stat and open: again
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
            else:
                raise RuntimeError(f"{path} keeps being replaced while it is opened")
            reader = pq.ParquetFile(source)
            first_days, last_days = _row_group_day_ranges(reader.metadata)
            opened = _YearFile(key, reader, reader.schema_arrow, first_days, last_days, threading.Lock())
            self._files[path] = opened
            return opened

    @staticmethod
    @contextmanager
    def _locked(set_dir: Path) -> Iterator[None]:
        with open(set_dir / LOCK_NAME, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _load_manifest(set_dir: Path) -> dict[str, Any]:
        try:
            return json.loads((set_dir / MANIFEST_NAME).read_text())
        except FileNotFoundError:
            return {}

    @staticmethod
    def _save_manifest(
        set_dir: Path,
        feature_set: str,
        columns: list[str],
        years: dict[str, dict[str, Any]],
        written_at: str,
        lineage: dict[str, Any],
    ) -> Path:
        ordered = dict(sorted(years.items()))
        firsts = [e["first_day"] for e in ordered.values() if e.get("first_day")]
        lasts = [e["last_day"] for e in ordered.values() if e.get("last_day")]
        manifest = {
            "format": FORMAT_VERSION,
            "feature_set": feature_set,
            "key_columns": list(KEY_COLUMNS),
            "columns": columns,
            "dtype": "float64",
            "rows": sum(int(e.get("rows", 0)) for e in ordered.values()),
            "first_day": min(firsts) if firsts else None,
            "last_day": max(lasts) if lasts else None,
            "written_at": written_at,
            "lineage": lineage,
            "years": ordered,
        }
        path = set_dir / MANIFEST_NAME
        temp = set_dir / f".{MANIFEST_NAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temp, "w") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=False)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        fsync_dir(set_dir)
        return path


# ---------------------------------------------------------------------- validation


def _validate_and_plan(frame: pd.DataFrame) -> tuple[list[str], list[_YearPlan]]:
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
        plans.append(_YearPlan(int(years[a]), rows, sorted_days[a:b]))
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


def _frame_to_table(frame: pd.DataFrame, rows: np.ndarray | slice, days: np.ndarray, features: Sequence[str]) -> pa.Table:
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


# ---------------------------------------------------------------------- helpers


def _row_group_cuts(days: np.ndarray, target_rows: int) -> list[int]:
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


def _row_group_day_ranges(footer: pq.FileMetaData) -> tuple[np.ndarray, np.ndarray]:
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


def _entry_from_file(path: Path, set_dir: Path) -> dict[str, Any]:
    """A manifest entry for a year file, read from its footer."""
    footer = pq.read_metadata(str(path))
    meta = footer.schema.to_arrow_schema().metadata or {}
    lo, hi = _row_group_day_ranges(footer)
    known_lo, known_hi = lo[lo >= 0], hi[hi >= 0]
    lineage = meta.get(b"vfr.lineage")
    return {
        "file": str(path.relative_to(set_dir)),
        "rows": footer.num_rows,
        "first_day": iso_day(int(known_lo.min())) if len(known_lo) else None,
        "last_day": iso_day(int(known_hi.max())) if len(known_hi) else None,
        "row_groups": footer.num_row_groups,
        "bytes": path.stat().st_size,
        "written_at": meta.get(b"vfr.written_at", b"").decode() or None,
        "lineage": json.loads(lineage) if lineage else {},
    }


class _FrameBuilder:
    """Assembles a wide frame from year tables (each sorted, in year order): features
    copied into one preallocated (features x rows) float64 block (nulls become NaN)."""

    def __init__(self, rows: int, names: Sequence[str]):
        self.names = list(names)
        self.block = np.empty((len(self.names), rows), dtype=np.float64)
        self.symbols = np.empty(rows, dtype=object)
        self.days = np.empty(rows, dtype=np.int32)
        self.offset = 0

    def add(self, table: pa.Table) -> None:
        if not _is_sorted(table):
            table = table.sort_by([("trade_date", "ascending"), ("symbol", "ascending")])
        a, b = self.offset, self.offset + table.num_rows
        if b > len(self.days):
            raise RuntimeError("a year file changed size while it was read")
        for j, name in enumerate(self.names):
            self.block[j, a:b] = table.column(name).to_numpy()
        at = a
        for chunk in table.column("symbol").chunks:
            if pa.types.is_dictionary(chunk.type):
                labels = np.asarray(chunk.dictionary.to_pylist(), dtype=object)
                self.symbols[at : at + len(chunk)] = labels[chunk.indices.to_numpy(zero_copy_only=False)]
            else:
                self.symbols[at : at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
            at += len(chunk)
        self.days[a:b] = table.column("trade_date").cast(pa.int32()).to_numpy()
        self.offset = b

    def frame(self) -> pd.DataFrame:
        if self.offset != len(self.days):
            raise RuntimeError("a year file changed size while it was read")
        unique, inverse = np.unique(self.days, return_inverse=True)
        dates = np.array([day_from_number(int(d)) for d in unique], dtype=object)[inverse]
        frame = pd.DataFrame(self.block.T, columns=self.names, copy=False)
        frame.insert(0, "trade_date", dates)
        frame.insert(0, "symbol", self.symbols)
        return frame


def _prefetched(load: Any, items: Sequence[Any]) -> Iterator[pa.Table]:
    """load(item) for each item in order, the next one loading in a background thread
    while the caller consumes the current one."""
    if not items:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, items[0])
        for item in items[1:]:
            current = pending.result()
            pending = pool.submit(load, item)
            yield current
            del current
        yield pending.result()


def _small_frame(table: pa.Table) -> pd.DataFrame:
    """A few rows as a wide frame; cheaper than Table.to_pandas for tens of rows."""
    keys = pd.DataFrame(
        {
            "symbol": np.array(table["symbol"].to_pylist(), dtype=object),
            "trade_date": np.array(table["trade_date"].to_pylist(), dtype=object),
        }
    )
    names = table.column_names[len(KEY_COLUMNS):]
    if not names:
        return keys
    values = np.empty((table.num_rows, len(names)))
    for j, name in enumerate(names):
        values[:, j] = table[name].to_numpy()
    return pd.concat([keys, pd.DataFrame(values, columns=names)], axis=1)


def _is_sorted(table: pa.Table) -> bool:
    if table.num_rows < 2:
        return True
    day = table["trade_date"]
    symbol = table["symbol"]
    d0, d1 = day.slice(0, len(day) - 1), day.slice(1)
    s0, s1 = symbol.slice(0, len(symbol) - 1), symbol.slice(1)
    ordered = pc.or_(pc.less(d0, d1), pc.and_(pc.equal(d0, d1), pc.less(s0, s1)))
    return bool(pc.all(ordered).as_py())


def _and(left: ds.Expression | None, right: ds.Expression) -> ds.Expression:
    return right if left is None else left & right


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


__all__ = [
    "COMPRESSION",
    "FEATURE_STORE_DIR_ENV",
    "KEY_COLUMNS",
    "OfflineFeatureStore",
    "ROW_GROUP_ROWS",
    "WriteReport",
    "default_root",
]

