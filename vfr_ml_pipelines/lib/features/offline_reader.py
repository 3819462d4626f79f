"""Reading the offline store's year files back: whole files into one preallocated float64
block, filtered reads, and the year files kept open (memory-mapped) for `latest_day` and
`vectors`, reopened when a writer replaced them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vfr_ml_pipelines.lib.dates import day_from_number
from vfr_ml_pipelines.lib.features.offline_year_files import KEY_COLUMNS, row_group_day_ranges


@dataclass(frozen=True)
class YearFile:
    """A year file opened (memory-mapped) as it was at `key`; a replaced file is reopened."""

    key: tuple[int, int, int]  # inode, mtime_ns, size
    reader: pq.ParquetFile
    schema: pa.Schema
    first_days: np.ndarray  # per row group, days since epoch; -1 = no statistics
    last_days: np.ndarray
    lock: threading.Lock


class OpenYearFiles:
    """The year files a store has opened, by path (thread-safe)."""

    def __init__(self) -> None:
        self._files: dict[Path, YearFile] = {}
        self._lock = threading.Lock()

    def open(self, path: Path) -> YearFile:
        """`path` opened, from the cache unless the file was replaced since (a writer's
        os.replace changes the inode). The reader keeps the file it opened mapped, so a
        replacement never changes what an open reader sees."""
        st = os.stat(path)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._files.get(path)
        if cached is not None and cached.key == key:
            return cached
        with self._lock:
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
            first_days, last_days = row_group_day_ranges(reader.metadata)
            opened = YearFile(key, reader, reader.schema_arrow, first_days, last_days, threading.Lock())
            self._files[path] = opened
            return opened



def read_whole_files(paths: Sequence[Path], names: Sequence[str]) -> pd.DataFrame:
    """Every row of the year files `paths` (in year order): symbol, trade_date, `names`.

    The size is known up front, so each year is decoded (the next one in the background)
    and copied straight into the result's one float64 block. Peak memory is the result plus
    about two years, where Table.to_pandas needs twice the result. The files are opened
    first, so that a concurrent writer's os.replace cannot change them between counting
    and reading."""
    wanted = [*KEY_COLUMNS, *names]
    handles = [pa.OSFile(str(p)) for p in paths]
    try:
        footers = [pq.read_metadata(h) for h in handles]

        def load_pinned(i: int) -> pa.Table:
            reader = pq.ParquetFile(handles[i], metadata=footers[i], read_dictionary=["symbol"])
            try:
                return reader.read(columns=wanted, use_threads=True)
            finally:
                reader.close()  # frees its buffers; the handle stays open (not the reader's)

        builder = FrameBuilder(sum(f.num_rows for f in footers), names)
        for table in prefetched(load_pinned, range(len(handles))):
            builder.add(table)
        return builder.frame()
    finally:
        for handle in handles:
            handle.close()


def read_filtered(paths: Sequence[Path], schema: pa.Schema, names: Sequence[str], where: ds.Expression) -> pd.DataFrame:
    """The rows of the year files `paths` that match `where`: symbol, trade_date, `names`."""
    wanted = [*KEY_COLUMNS, *names]

    def load(path: Path) -> pa.Table:
        return ds.dataset(str(path), schema=schema, format="parquet").to_table(columns=wanted, filter=where)

    tables = list(prefetched(load, paths))
    builder = FrameBuilder(sum(t.num_rows for t in tables), names)
    while tables:
        builder.add(tables.pop(0))
    return builder.frame()


def read_filter(start: date | None, end: date | None, symbols: Iterable[str] | None) -> ds.Expression | None:
    """The filter of the days in [start, end] (either open) and `symbols` (None: all)."""
    expression = None
    if start is not None:
        expression = _and(expression, ds.field("trade_date") >= pa.scalar(start, pa.date32()))
    if end is not None:
        expression = _and(expression, ds.field("trade_date") <= pa.scalar(end, pa.date32()))
    if symbols is not None:
        wanted_symbols = [symbols] if isinstance(symbols, str) else list(dict.fromkeys(symbols))
        expression = _and(expression, ds.field("symbol").isin(pa.array(wanted_symbols, pa.string())))
    return expression


class FrameBuilder:
    """Assembles a wide frame from year tables (each sorted, in year order): features
    copied into one preallocated (features x rows) float64 block (nulls become NaN)."""

    def __init__(self, rows: int, names: Sequence[str]):
        self.names = list(names)
        self.block = np.empty((len(self.names), rows), dtype=np.float64)
        self.symbols = np.empty(rows, dtype=object)
        self.days = np.empty(rows, dtype=np.int32)
        self.offset = 0

    def add(self, table: pa.Table) -> None:
        if not is_sorted(table):
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


def prefetched(load: Any, items: Sequence[Any]) -> Iterator[pa.Table]:
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


def small_frame(table: pa.Table) -> pd.DataFrame:
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


def is_sorted(table: pa.Table) -> bool:
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
