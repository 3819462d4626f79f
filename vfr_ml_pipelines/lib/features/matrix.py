"""The feature matrix: the feature blocks joined on (symbol, trade_date), with the per-day
cross-sectional transforms of `transforms.py` (winsorised z-scores, ranks, sector-neutral
variants) and a completeness and quality score per row.

`build_feature_matrix` runs as named steps:

1. `_matrix_columns`: which block holds each column, and the output's names (ambiguous or
   unknown columns are refused before any work);
2. `_join_blocks`: the first block's rows in (day, symbol) order, and where each other
   block's row for them is (integer (symbol, day) keys and ``Index.get_indexer``);
3. `_day_layout`: the per-day panel (`panels.Panel`), and the days with too few names;
4. `_sector_groups`: the (day, sector) groups of the sector-neutral columns;
5. `_ColumnTransforms`: each source column gathered and transformed into the output, the
   columns shared between two threads (numpy releases the GIL), tallying per row what is
   finite and what winsorization clipped;
6. `_score_rows` and `_matrix_frame`: completeness, quality_score, the frame and its report.

Feature matrix quality
----------------------
* ``completeness`` = share of the row's source features (the distinct columns named in
  raw/rank/zscore/neutral columns) that are finite.
* ``quality_score`` = ``completeness * (1 - 0.5 * clipped_share) * day_ok``, in [0, 1]:
  ``clipped_share`` is the share of the row's non-missing winsorized inputs (the zscore
  and neutral columns) that winsorization clipped (extreme values are less trustworthy),
  and ``day_ok`` is 0 on days dropped for too few names (their transforms are NaN), else 1.

Performance: gathering a joined column costs ~3 ms per 500 symbols x 2520 days (the
kernels' costs: `panels.py`); the matrix itself (n x columns float64) is the other cost:
its first write is page-faulted by the kernel.

Memory: a build holds its input blocks and the whole output matrix at once (for 500
symbols x 10 years, 1.0 GB of blocks plus 1.2 GB of matrix, 2.8 GB peak). Since every
statistic is per day, ``feature_matrix_by_year`` builds one calendar year at a time, equal
bit for bit to the whole build; the feature-matrix step stages each year to disk before the
next (docs/feature_store.md, "The feature run").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.dates import (
    DAY_KEY_OFFSET,
    SYMBOL_KEY_STRIDE,
    day_numbers,
    first_row_without_key,
    symbol_day_keys,
)
from vfr_ml_pipelines.lib.features.panels import (
    Panel,
    Scratch,
    as_floats,
    day_sector_codes,
    demean_groups,
    group_slots,
    rank_panel,
    valid_counts,
    winsorize_panel,
    zscore_panel,
)

KEY_COLUMNS = ("symbol", "trade_date")
WINSOR_LIMITS = (0.01, 0.99)
CLIP_PENALTY = 0.5  # weight of the clipped share in quality_score


@dataclass(frozen=True)
class FeatureMatrixReport:
    rows: int
    columns: tuple[str, ...]  # output feature columns (raw, transforms, completeness, quality_score)
    missing_share: dict[str, float]  # per output column: share of NaN
    days: int
    dropped_days: tuple[Any, ...] = field(default=())  # days with fewer than min_names_per_day symbols
    min_names_per_day: int = 5

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def days_dropped(self) -> int:
        """How many days had fewer than min_names_per_day symbols."""
        return len(self.dropped_days)

    @classmethod
    def combine(cls, parts: Sequence[FeatureMatrixReport]) -> FeatureMatrixReport:
        """One report for a matrix built in parts of whole days (`feature_matrix_by_year`):
        the same figures a single build over all the rows reports."""
        if not parts:
            raise ValueError("FeatureMatrixReport.combine needs at least one report")
        first = parts[0]
        for k, part in enumerate(parts[1:], start=1):
            if part.columns != first.columns or part.min_names_per_day != first.min_names_per_day:
                raise ValueError(f"report {k} has other columns or another min_names_per_day than report 0")
        rows = sum(p.rows for p in parts)
        # a share is count / rows of its part: round(share * rows) gives the count back exactly
        missing = {c: sum(round(p.missing_share[c] * p.rows) for p in parts) for c in first.columns}
        return cls(
            rows=rows,
            columns=first.columns,
            missing_share={c: (float(m) / rows if rows else 0.0) for c, m in missing.items()},
            days=sum(p.days for p in parts),
            dropped_days=tuple(d for p in parts for d in p.dropped_days),
            min_names_per_day=first.min_names_per_day,
        )

    def as_metadata(self) -> dict[str, Any]:
        """JSON-friendly summary (for Dagster metadata)."""
        return {
            "rows": self.rows,
            "columns": self.n_columns,
            "days": self.days,
            "days_dropped": self.days_dropped,
            "dropped_days": [str(d) for d in self.dropped_days],
            "min_names_per_day": self.min_names_per_day,
            "missing_share": {k: round(v, 6) for k, v in self.missing_share.items()},
        }


def build_feature_matrix(
    blocks: list[pd.DataFrame],
    sectors: pd.DataFrame | None,
    *,
    raw_columns: Sequence[str],
    rank_columns: Sequence[str],
    zscore_columns: Sequence[str],
    neutral_columns: Sequence[str],
    min_names_per_day: int = 5,
    winsor_limits: tuple[float, float] = WINSOR_LIMITS,
    workers: int | None = None,
    panel_width: int | None = None,
) -> tuple[pd.DataFrame, FeatureMatrixReport]:
    """Join the feature blocks on (symbol, trade_date) - the rows are exactly those of the
    first block (technical); the other blocks are left-joined, NaN where they have no row -
    and add the cross-sectional transforms:

    * `raw_columns` as they are;
    * `<c>_z`: winsorize (per-day quantiles `winsor_limits`), then per-day z-score;
    * `<c>_rank`: per-day percentile rank in [-0.5, 0.5] (not winsorized: ranks are robust);
    * `<c>_sn`: the winsorized z-score minus its (day, sector) mean (`sectors` maps symbol
      -> sector; a symbol without a sector gets NaN);
    * `completeness` and `quality_score` (module docstring).

    Transforms are NaN on days with fewer than `min_names_per_day` symbols (listed in the
    report) and for a column with fewer than `min_names_per_day` values on that day.
    Output: symbol, trade_date, raw, _z, _rank, _sn, completeness, quality_score; rows sorted
    by (trade_date, symbol), index 0..n-1. `workers` threads share the columns (default: up
    to 2 for large inputs); the result does not depend on it.

    `panel_width`: lay each day out at least this many names wide (default: the widest day
    of the input). A day's mean and standard deviation are numpy row sums over that width,
    whose grouping of terms - and so the last bit of a z-score - depends on it; a build over
    part of the history (`feature_matrix_by_year`) passes the widest day of the whole
    history and gets the whole build's values bit for bit.
    """
    _check_options(blocks, min_names_per_day, winsor_limits)
    columns = _matrix_columns(blocks, sectors, raw_columns, rank_columns, zscore_columns, neutral_columns)
    join = _join_blocks(blocks, columns)
    days = _day_layout(blocks[0], join, min_names_per_day, panel_width)
    groups = _sector_groups(sectors, blocks[0], join, days) if columns.neutral else None
    values = np.empty((len(columns.out_names), join.rows), dtype=np.float64)
    transforms = _ColumnTransforms(blocks, columns, join, days, groups, values, min_names_per_day, winsor_limits)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if join.rows * len(columns.source) >= 2_000_000 else 1
    if workers > 1 and len(columns.source) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(transforms, columns.source))
    else:
        for c in columns.source:
            transforms(c)
    _score_rows(values, columns, days, transforms)
    return _matrix_frame(values, columns, blocks[0], join, days, min_names_per_day)


# ------------------------------------------------------------------ 1. what goes where

@dataclass(frozen=True)
class _Columns:
    """The validated column groups, where each input column is and the output's names."""

    raw: list[str]
    rank: list[str]
    zscore: list[str]
    neutral: list[str]
    owner: dict[str, int]  # input column -> the index of the block that holds it
    source: list[str]  # the distinct input columns, in output order of first use
    out_names: list[str]

    @property
    def slot(self) -> dict[str, int]:
        """Output column -> its row in the (columns x rows) values block."""
        return {name: k for k, name in enumerate(self.out_names)}


def _check_options(blocks: list[pd.DataFrame], min_names_per_day: int, winsor_limits: tuple[float, float]) -> None:
    if not blocks:
        raise ValueError("build_feature_matrix needs at least one feature block")
    if min_names_per_day < 1:
        raise ValueError(f"min_names_per_day must be >= 1, got {min_names_per_day}")
    lower, upper = winsor_limits
    if not 0.0 <= lower <= upper <= 1.0:
        raise ValueError(f"winsor_limits must satisfy 0 <= lower <= upper <= 1, got {winsor_limits}")
    for i, b in enumerate(blocks):
        missing = [c for c in KEY_COLUMNS if c not in b.columns]
        if missing:
            raise ValueError(f"feature block {i} has no column(s) {missing}")


def _column_owners(blocks: list[pd.DataFrame]) -> dict[str, int]:
    """Which block holds which column (a name in two blocks is ambiguous)."""
    owner: dict[str, int] = {}
    for i, b in enumerate(blocks):
        for c in b.columns:
            if c in KEY_COLUMNS:
                continue
            if c in owner:
                raise ValueError(f"feature column {c!r} is in block {owner[c]} and block {i}")
            owner[c] = i
    return owner


def _matrix_columns(
    blocks: list[pd.DataFrame], sectors: pd.DataFrame | None, raw_columns: Sequence[str], rank_columns: Sequence[str],
    zscore_columns: Sequence[str], neutral_columns: Sequence[str],
) -> _Columns:
    owner = _column_owners(blocks)
    groups = {"raw_columns": list(raw_columns), "rank_columns": list(rank_columns),
              "zscore_columns": list(zscore_columns), "neutral_columns": list(neutral_columns)}
    for label, cols in groups.items():
        unknown = [c for c in cols if c not in owner]
        if unknown:
            raise ValueError(f"{label}: {unknown} are in no feature block")
        if len(set(cols)) != len(cols):
            raise ValueError(f"{label} has duplicates")
    source = list(dict.fromkeys([*raw_columns, *zscore_columns, *rank_columns, *neutral_columns]))
    if neutral_columns and (sectors is None or not {"symbol", "sector"} <= set(sectors.columns)):
        raise ValueError("neutral_columns need a sectors frame with columns symbol, sector")
    out_names = [*raw_columns, *(f"{c}_z" for c in zscore_columns), *(f"{c}_rank" for c in rank_columns),
                 *(f"{c}_sn" for c in neutral_columns), "completeness", "quality_score"]
    dupes = sorted({c for c in out_names if out_names.count(c) > 1} | {c for c in out_names if c in KEY_COLUMNS})
    if dupes:
        raise ValueError(f"output column names collide: {dupes}")
    return _Columns(groups["raw_columns"], groups["rank_columns"], groups["zscore_columns"], groups["neutral_columns"],
                    owner, source, out_names)


# ------------------------------------------------------------------ 2. the join

@dataclass(frozen=True)
class _Join:
    """The output's rows (the first block's, in (day, symbol) order) and, per block with a
    source column, that block's row for each output row."""

    order: np.ndarray  # the first block's row of each output row
    day_sorted: np.ndarray  # the day number of each output row
    take: dict[int, np.ndarray]  # block -> its row per output row (-1: none)
    missing_rows: dict[int, np.ndarray]  # block -> the output rows it has no row for

    @property
    def rows(self) -> int:
        return len(self.order)

    def gather(self, blocks: list[pd.DataFrame], block: int, column: str, out: np.ndarray) -> np.ndarray:
        """`column` of `block` in output row order into `out` (NaN where it has no row)."""
        np.take(as_floats(blocks[block], column), self.take[block], out=out, mode="clip")
        if len(self.missing_rows[block]):
            out[self.missing_rows[block]] = np.nan
        return out


def _symbol_codes(blocks: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Symbol codes of every block's rows, numbered in name order (-1 where missing), and
    the offsets of each block's rows in them."""
    sym_all, sym_uniques = pd.factorize(pd.concat([b["symbol"] for b in blocks], ignore_index=True))
    rank_of = np.empty(len(sym_uniques), dtype=np.int64)
    rank_of[np.argsort(np.asarray(sym_uniques, dtype=str), kind="stable")] = np.arange(len(sym_uniques))
    sym_all = np.where(sym_all >= 0, rank_of[np.maximum(sym_all, 0)], -1)
    return sym_all, np.cumsum([0, *[len(b) for b in blocks]])


def _block_days(block: pd.DataFrame, name: str, sym_codes: np.ndarray) -> np.ndarray:
    days = day_numbers(block["trade_date"])
    i = first_row_without_key(sym_codes, days)
    if i is not None:
        raise ValueError(f"feature block {name}: row {i} has no symbol or trade_date "
                         f"({block['symbol'].iloc[i]!r}, {block['trade_date'].iloc[i]!r})")
    return days


def _unique_or_raise(keys: np.ndarray, block: pd.DataFrame, name: str) -> None:
    if len(keys) < 2:
        return
    srt = np.sort(keys)
    dup = srt[1:] == srt[:-1]
    if dup.any():
        i = int(np.flatnonzero(keys == srt[1:][dup][0])[0])
        raise ValueError(f"feature block {name} has duplicate (symbol, trade_date) rows: "
                         f"{block['symbol'].iloc[i]!r}, {block['trade_date'].iloc[i]!r}")


def _join_blocks(blocks: list[pd.DataFrame], columns: _Columns) -> _Join:
    base = blocks[0]
    n = len(base)
    sym_all, offsets = _symbol_codes(blocks)
    base_sym = sym_all[: offsets[1]]
    base_day = _block_days(base, "0", base_sym)
    base_keys = symbol_day_keys(base_sym, base_day)
    _unique_or_raise(base_keys, base, "0")
    day_major = (base_day + DAY_KEY_OFFSET) * SYMBOL_KEY_STRIDE + base_sym
    order = np.argsort(day_major, kind="stable") if n > 1 and bool((np.diff(day_major) < 0).any()) else np.arange(n)
    keys_dm = base_keys[order]

    take: dict[int, np.ndarray] = {0: order}
    for i in range(1, len(blocks)):
        if not any(columns.owner[c] == i for c in columns.source):
            continue
        b_sym = sym_all[offsets[i]: offsets[i + 1]]
        keys = symbol_day_keys(b_sym, _block_days(blocks[i], str(i), b_sym))
        if len(keys) == n and np.array_equal(keys, base_keys):
            take[i] = order  # same rows in the same order as the first block
            continue
        _unique_or_raise(keys, blocks[i], str(i))
        take[i] = pd.Index(keys).get_indexer(keys_dm)
    return _Join(order, base_day[order], take, {i: np.flatnonzero(t < 0) for i, t in take.items()})


# ------------------------------------------------------------------ 3-4. days and sectors

@dataclass(frozen=True)
class _Days:
    panel: Panel  # output rows laid out per day
    codes: np.ndarray  # the day (0..count-1) of each output row
    count: int
    too_few_names: np.ndarray  # per day: fewer than min_names_per_day rows (its transforms are NaN)
    dropped_days: tuple[Any, ...]  # those days' trade_date values, for the report


def _day_layout(base: pd.DataFrame, join: _Join, min_names_per_day: int, panel_width: int | None) -> _Days:
    n, day_sorted = join.rows, join.day_sorted
    new_day = np.concatenate(([n > 0], day_sorted[1:] != day_sorted[:-1])) if n else np.zeros(0, dtype=bool)
    day_codes = np.cumsum(new_day) - 1
    n_days = int(day_codes[-1]) + 1 if n else 0
    if panel_width is not None and int(panel_width) < 1:
        raise ValueError(f"panel_width must be >= 1, got {panel_width}")
    panel = Panel(day_codes, n_days, min_width=panel_width or 1)
    drop_day = panel.counts < min_names_per_day
    dropped_days: tuple[Any, ...] = ()
    if drop_day.any():
        first_rows = join.order[np.flatnonzero(new_day)]
        dropped_days = tuple(base["trade_date"].iloc[first_rows[np.flatnonzero(drop_day)]].tolist())
    return _Days(panel, day_codes, n_days, drop_day, dropped_days)


@dataclass(frozen=True)
class _SectorGroups:
    codes: np.ndarray  # the (day, sector) group of each output row (-1: no sector)
    count: int
    slots: np.ndarray  # group_slots(codes, count)


def _sector_groups(sectors: pd.DataFrame, base: pd.DataFrame, join: _Join, days: _Days) -> _SectorGroups:
    sec_map = sectors[["symbol", "sector"]].drop_duplicates()
    if sec_map["symbol"].duplicated().any():
        s = sec_map.loc[sec_map["symbol"].duplicated(), "symbol"].iloc[0]
        raise ValueError(f"sectors: symbol {s!r} has more than one sector")
    row_sector = base["symbol"].map(sec_map.set_index("symbol")["sector"]).to_numpy()[join.order]
    codes, count = day_sector_codes(days.codes, days.count, row_sector)
    return _SectorGroups(codes, count, group_slots(codes, count))


# ------------------------------------------------------------------ 5. the transforms, a column at a time

class _ColumnTransforms:
    """Called with a source column: gathers it in output row order and writes its raw
    value, rank, winsorized z-score and sector-neutral z-score into their rows of `values`
    (whichever the column is listed for). Threads share the columns; each keeps its own
    work arrays. Per output row it tallies how many inputs were finite (`present`) and,
    per panel cell, how many winsorized inputs were used and clipped."""

    def __init__(
        self, blocks: list[pd.DataFrame], columns: _Columns, join: _Join, days: _Days,
        sectors: _SectorGroups | None, values: np.ndarray, min_names_per_day: int, winsor_limits: tuple[float, float],
    ) -> None:
        self.blocks, self.columns, self.join, self.days, self.sectors = blocks, columns, join, days, sectors
        self.values, self.slot = values, columns.slot
        self.min_names_per_day = min_names_per_day
        self.lower, self.upper = winsor_limits
        self.raw, self.rank = set(columns.raw), set(columns.rank)
        self.zscore, self.neutral = set(columns.zscore), set(columns.neutral)
        panel = days.panel
        self.present = np.zeros(join.rows, dtype=np.float64)
        self.winsor_used = np.zeros(panel.groups * panel.width, dtype=np.float64).reshape(panel.groups, panel.width)
        self.winsor_clipped = np.zeros_like(self.winsor_used)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _scratch(self) -> Scratch:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = Scratch()
        return scratch

    def __call__(self, c: str) -> None:
        scratch = self._scratch()
        n, panel = self.join.rows, self.days.panel
        out = self.values[self.slot[c]] if c in self.raw else scratch.get("column", (n,))
        v = self.join.gather(self.blocks, self.columns.owner[c], c, out)
        fin = np.isfinite(v)
        winsorized = c in self.zscore or c in self.neutral
        if winsorized or c in self.rank:
            p = panel.to_panel(v, scratch, finite=fin)
            valid, cnt = valid_counts(p)
            few = (cnt < self.min_names_per_day) | self.days.too_few_names
            sv = self._rank(c, p, valid, cnt, few, scratch) if c in self.rank else None
            if winsorized:
                clipped = self._winsorized_zscore(c, p, valid, cnt, few, sv, scratch)
                valid[few] = False
                clipped &= valid
        with self._lock:
            np.add(self.present, fin, out=self.present)
            if winsorized:
                np.add(self.winsor_used, valid, out=self.winsor_used)
                np.add(self.winsor_clipped, clipped, out=self.winsor_clipped)

    def _rank(self, c: str, p: np.ndarray, valid: np.ndarray, cnt: np.ndarray, few: np.ndarray,
              scratch: Scratch) -> np.ndarray:
        """`<c>_rank`; returns the panel's rows sorted (winsorizing reuses them)."""
        panel = self.days.panel
        out = self.values[self.slot[f"{c}_rank"]]
        r, sv = rank_panel(p, valid, cnt, scratch=scratch, out=panel.target(out, scratch, "rank_out"), with_sorted=True)
        r[few] = np.nan
        panel.from_panel(r, out=out)
        return sv

    def _winsorized_zscore(self, c: str, p: np.ndarray, valid: np.ndarray, cnt: np.ndarray, few: np.ndarray,
                           sv: np.ndarray | None, scratch: Scratch) -> np.ndarray:
        """`<c>_z` and `<c>_sn` (whichever `c` is listed for); returns where winsorizing clipped."""
        panel, n = self.days.panel, self.join.rows
        w, clipped = winsorize_panel(p, self.lower, self.upper, valid, cnt, sv, scratch)
        out = self.values[self.slot[f"{c}_z"]] if c in self.zscore else scratch.get("z_rows", (n,))
        z = zscore_panel(w, valid, cnt, scratch, out=panel.target(out, scratch, "z_out"))
        z[few] = np.nan
        zs = panel.from_panel(z, out=out)
        if c in self.neutral:
            groups = self.sectors
            demean_groups(zs, groups.codes, groups.count, out=self.values[self.slot[f"{c}_sn"]], slots=groups.slots)
        return clipped


# ------------------------------------------------------------------ 6. scores, frame and report

def _score_rows(values: np.ndarray, columns: _Columns, days: _Days, tallies: _ColumnTransforms) -> None:
    """completeness and quality_score of every row, into their rows of `values`."""
    n = values.shape[1]
    slot = columns.slot
    completeness = tallies.present / len(columns.source) if columns.source else np.ones(n)
    used, clip = days.panel.from_panel(tallies.winsor_used), days.panel.from_panel(tallies.winsor_clipped)
    clipped_share = np.divide(clip, used, out=np.zeros(n), where=used > 0)
    day_ok = (~days.too_few_names[days.codes]).astype(np.float64)
    values[slot["completeness"]] = completeness
    values[slot["quality_score"]] = np.clip(completeness * (1.0 - CLIP_PENALTY * clipped_share) * day_ok, 0.0, 1.0)


def _matrix_frame(
    values: np.ndarray, columns: _Columns, base: pd.DataFrame, join: _Join, days: _Days, min_names_per_day: int,
) -> tuple[pd.DataFrame, FeatureMatrixReport]:
    n, order = join.rows, join.order
    features = pd.DataFrame(values.T, columns=columns.out_names, copy=False)
    keys = pd.DataFrame({"symbol": base["symbol"].to_numpy()[order], "trade_date": base["trade_date"].to_numpy()[order]})
    matrix = pd.concat([keys, features], axis=1, copy=False)
    missing_share = {name: (float(np.count_nonzero(np.isnan(values[k]))) / n if n else 0.0)
                     for name, k in columns.slot.items()}
    report = FeatureMatrixReport(
        rows=n,
        columns=tuple(columns.out_names),
        missing_share=missing_share,
        days=days.count,
        dropped_days=days.dropped_days,
        min_names_per_day=min_names_per_day,
    )
    return matrix, report
