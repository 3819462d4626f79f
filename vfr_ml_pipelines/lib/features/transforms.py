"""Cross-sectional transforms per trading day, and the feature matrix built from the blocks.

Every statistic here is computed from ONE trading day's cross-section (all symbols of that
day) and never from the history: a quantile, mean, standard deviation, rank or median of
day D uses only the values of day D, so changing any other day (in particular a later one)
never changes day D's transformed values. (Winsorizing with quantiles of the whole history
would leak the future distribution into every past day.)

Transforms (each takes a frame with a `trade_date` column and returns a copy with the named
columns transformed under the same names)
------------------------------------------------------------------------------------------
* ``winsorize``: clip each value to the [lower, upper] quantiles of its day (numpy's
  default "linear" interpolation between order statistics).
* ``cs_rank``: percentile rank within the day, ties averaged, mapped to [-0.5, 0.5]:
  ``(r - 1) / (n - 1) - 0.5`` with ``r`` the 1-based average rank among the day's ``n``
  non-missing values (the lowest is -0.5, the highest +0.5, the median 0; a day with one
  value gives 0.0).
* ``cs_zscore``: ``(x - mean) / std`` of the day (sample std, ddof=1, as Qlib's
  CSZScoreNorm); a day whose std is 0 or undefined (one value) gives 0.0.
* ``sector_neutral``: ``x - mean(x of the same day and sector)``; a row without a sector
  is NaN (it cannot be neutralized).

Infinities are treated as missing by the transforms. Days (or (day, sector) groups) are
grouped on the calendar day of `trade_date` (datetime.date, Timestamp or datetime64 alike).

Missing-value policy
--------------------
* NaN means "not computable" and is KEPT: no transform fills it, and the feature matrix
  carries it to the models. LightGBM and XGBoost route missing values natively (they learn
  the direction for missing at every split), which beats any imputation we could guess.
* Nothing is ever forward-filled across days, and nothing is filled with a later value or a
  statistic that involves later days: an imputation must be computable on the day itself.
* Linear models cannot take NaN: they use ``impute_for_linear``, which fills each missing
  value with the median of the same day's cross-section of that column (never of other
  days) and adds a ``<column>_missing`` indicator (1.0 when the value was imputed, else
  0.0), so the model can learn that "missing" carries information. When a day has no
  value at all for a column, the median is undefined and the value stays NaN (the caller
  drops those rows or that column; we do not invent a number).
* In ``build_feature_matrix`` a transform is NaN on a day with fewer than
  ``min_names_per_day`` symbols (reported as dropped days), and also for a column whose
  day has fewer than ``min_names_per_day`` non-missing values of it (a rank or z-score
  over 3 names is noise). Raw columns are kept as they are.

Feature matrix quality
----------------------
* ``completeness`` = share of the row's source features (the distinct columns named in
  raw/rank/zscore/neutral columns) that are finite.
* ``quality_score`` = ``completeness * (1 - 0.5 * clipped_share) * day_ok``, in [0, 1]:
  ``clipped_share`` is the share of the row's non-missing winsorized inputs (the zscore
  and neutral columns) that winsorization clipped (extreme values are less trustworthy),
  and ``day_ok`` is 0 on days dropped for too few names (their transforms are NaN), else 1.

Performance
-----------
Each column is laid out once as a (days x max names per day) panel padded with NaN (a
plain reshape when the rows are day-major and every day has the same names), transformed
with whole-panel numpy operations (``np.sort`` / ``np.argsort`` along the names axis,
masked sums, one bincount per (day, sector) mean) and written straight into the output
array. No groupby, no per-row Python. Blocks are joined through integer (symbol, day)
keys and ``Index.get_indexer``. Columns are shared between two threads (numpy releases
the GIL); per-thread work arrays are reused across columns, because fresh multi-megabyte
temporaries cost page faults on every column.
Per column of 500 symbols x 2520 days (1.26M rows), single thread, warm: join gather
~3 ms, winsorize + z-score ~15 ms (~25 ms with its own sort), rank ~33 ms (an argsort
of ~19 ms), sector demeaning ~12 ms. The matrix itself (n x columns float64) is the other
cost: its first write is page-faulted by the kernel.

Memory: a build holds its input blocks and the whole output matrix at once (for 500
symbols x 10 years, 1.0 GB of blocks plus 1.2 GB of matrix, 2.8 GB peak). Since every
statistic is per day, ``feature_matrix_by_year`` builds one calendar year at a time, equal
bit for bit to the whole build; the feature-matrix step stages each year to disk before the
next (docs/feature_store.md, "The feature run").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

DATE_COLUMN = "trade_date"
KEY_COLUMNS = ("symbol", "trade_date")
WINSOR_LIMITS = (0.01, 0.99)
CLIP_PENALTY = 0.5  # weight of the clipped share in quality_score


# ------------------------------------------------------------------ keys and panels

MISSING_DAY = np.iinfo(np.int64).min  # day_numbers of a missing date
_EPOCH = date(1970, 1, 1)


def day_numbers(values: pd.Series | np.ndarray) -> np.ndarray:
    """Calendar day of each value as int64 days since 1970-01-01 (negative before it;
    MISSING_DAY where missing): dates, datetimes, Timestamps (tz-aware ones on their local
    day) and strings alike."""
    codes, uniques = pd.factorize(pd.Series(values) if not isinstance(values, pd.Series) else values)
    out = np.full(len(codes), MISSING_DAY, dtype=np.int64)
    if len(uniques) == 0:
        return out
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(uniques)))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    days = idx.normalize().as_unit("ns").asi8 // np.int64(86_400_000_000_000)
    ok = codes >= 0
    out[ok] = days[codes[ok]]
    return out


def _group_codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes 0..g-1 of the calendar days (-1 where missing) and g."""
    days = day_numbers(values)
    codes, uniques = pd.factorize(days)
    codes = codes.astype(np.int64)
    bad = days == MISSING_DAY
    if bad.any():
        # the missing-day sentinel became a code of its own: remove it and renumber
        sentinel = codes[bad][0]
        codes[bad] = -1
        codes[codes > sentinel] -= 1
        return codes, len(uniques) - 1
    return codes, len(uniques)


class _Scratch:
    """Reusable work arrays (one set per thread): the kernels below run once per column on
    arrays of the same shape, and fresh multi-megabyte temporaries cost page faults on
    every column. `None` instead of a _Scratch allocates fresh arrays."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        b = self._bufs.get(name)
        if b is None or b.shape != shape or b.dtype != dtype:
            b = self._bufs[name] = np.empty(shape, dtype=dtype)
        return b


def _buf(scratch: _Scratch | None, name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return np.empty(shape, dtype=dtype) if scratch is None else scratch.get(name, shape, dtype)


class _Panel:
    """Rows grouped by integer codes (-1 = excluded) and laid out as a
    (groups x largest group) matrix padded with NaN; within a group the rows keep their
    order. When the rows are already grouped (sorted by code) and every group has the same
    size, the panel is a plain reshape (`identity`). `min_width` widens the panel beyond the
    largest group (more NaN padding): numpy's row sums group their terms by the row width,
    so the last bits of a mean depend on it (see build_feature_matrix's `panel_width`)."""

    def __init__(self, codes: np.ndarray, n_groups: int, min_width: int = 1) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        self.n = len(codes)
        self.codes = codes
        self.valid = codes >= 0
        self.all_valid = bool(self.valid.all())
        self.counts = np.bincount(codes[self.valid], minlength=n_groups).astype(np.int64)
        self.groups = n_groups
        self.width = max(int(self.counts.max()) if n_groups else 0, int(min_width), 1)
        self.shape = (self.groups, self.width)
        rows = np.arange(self.n, dtype=np.int64) if self.all_valid else np.flatnonzero(self.valid)
        vc = codes[rows]
        starts = np.concatenate(([0], np.cumsum(self.counts)[:-1]))
        if len(vc) < 2 or bool((vc[1:] >= vc[:-1]).all()):
            pos = np.arange(len(rows), dtype=np.int64) - starts[vc]
        else:
            order = np.argsort(vc, kind="stable")
            pos = np.empty(len(rows), dtype=np.int64)
            pos[order] = np.arange(len(rows), dtype=np.int64) - starts[vc[order]]
        self.rows = rows
        self.lin = vc * self.width + pos
        self.identity = self.all_valid and self.groups * self.width == self.n and (
            self.n == 0 or bool((np.diff(self.lin) == 1).all()) and int(self.lin[0]) == 0)

    def to_panel(self, values: np.ndarray, scratch: _Scratch | None = None, name: str = "panel",
                 finite: np.ndarray | None = None) -> np.ndarray:
        """(groups x width) float64 panel; non-finite values and padding are NaN
        (`finite`: np.isfinite(values), when the caller has it)."""
        v = np.asarray(values, dtype=np.float64)
        p = _buf(scratch, name, (self.groups * self.width,))
        if self.identity:
            np.copyto(p, v)
        else:
            p.fill(np.nan)
            p[self.lin] = v if self.all_valid else v[self.rows]
        fin = np.isfinite(p) if finite is None or not self.identity else finite
        if not fin.all():
            p[~fin] = np.nan
        return p.reshape(self.shape)

    def target(self, out: np.ndarray | None, scratch: _Scratch | None, name: str) -> np.ndarray:
        """Where a kernel should write a panel that ends up in `out` (row order): `out`
        itself, seen as a panel, when the panel is a reshape; else a work array."""
        if out is not None and self.identity:
            return out.reshape(self.shape)
        return _buf(scratch, name, self.shape)

    def from_panel(self, panel: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The panel's values back in row order (into `out` when given; nothing to do when
        the kernel already wrote into `out` through `target`)."""
        flat = panel.reshape(-1)
        if out is None:
            out = np.empty(self.n, dtype=panel.dtype)
        if self.identity:
            if not np.shares_memory(out, flat):
                out[:] = flat
        elif self.all_valid:
            np.take(flat, self.lin, out=out, mode="clip")
        else:
            out[:] = np.nan
            out[self.rows] = flat[self.lin]
        return out


# ------------------------------------------------------------------ panel kernels (NaN = missing)

def _quantile_sorted(sv: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Per-row quantile of the first n[i] sorted values (numpy's "linear" method)."""
    h = q * np.maximum(n - 1, 0)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a = np.take_along_axis(sv, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(sv, hi[:, None], axis=1)[:, 0]
    out = a + (h - lo) * (b - a)
    out[n == 0] = np.nan
    return out


def _counts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = ~np.isnan(p)
    return valid, np.count_nonzero(valid, axis=1)


def _winsorize_panel(p: np.ndarray, lower: float, upper: float, valid: np.ndarray, n: np.ndarray,
                     sv: np.ndarray | None = None, scratch: _Scratch | None = None,
                     out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values clipped to their row's [lower, upper] quantiles (into `out`), and where
    clipping happened. `sv`: the rows already sorted (NaN last), when the caller has them."""
    if sv is None:
        sv = _buf(scratch, "sorted", p.shape)
        np.copyto(sv, p)
        sv.sort(axis=1)  # NaN sorts last
    lo = _quantile_sorted(sv, n, lower)
    hi = _quantile_sorted(sv, n, upper)
    w = _buf(scratch, "winsorized", p.shape) if out is None else out
    np.clip(p, lo[:, None], hi[:, None], out=w)  # NaN stays NaN
    clipped = np.not_equal(w, p)
    clipped &= valid
    return w, clipped


def _zscore_panel(p: np.ndarray, valid: np.ndarray, n: np.ndarray, scratch: _Scratch | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """(x - row mean) / row std (ddof=1) into `out`; 0.0 on rows without dispersion; NaN kept."""
    x0 = _buf(scratch, "zero_filled", p.shape)
    z = np.empty(p.shape) if out is None else out
    with np.errstate(invalid="ignore", divide="ignore"):
        x0.fill(0.0)
        np.copyto(x0, p, where=valid)
        mean = x0.sum(axis=1) / n
        np.subtract(p, mean[:, None], out=z)
        np.copyto(x0, z, where=valid)
        std = np.sqrt(np.einsum("ij,ij->i", x0, x0) / (n - 1))
        np.divide(z, std[:, None], out=z)
    # std 0 or undefined (one value); a row of equal values whose mean carries rounding
    # error (std ~1e-16 of the value) is a row without dispersion too
    flat = ~(std > 1e-12 * np.abs(mean)) | ~np.isfinite(std)
    if flat.any():
        z[flat] = np.where(valid[flat], 0.0, np.nan)
    return z


def _rank_panel(p: np.ndarray, valid: np.ndarray, n: np.ndarray, *, scratch: _Scratch | None = None,
                out: np.ndarray | None = None, with_sorted: bool = False):
    """Per-row percentile rank in [-0.5, 0.5], ties averaged, NaN kept, into `out` (and,
    with `with_sorted`, the rows sorted ascending with NaN last, as np.sort gives them)."""
    g, w = p.shape
    # NaN -> +inf so that numpy's fast (SIMD) argsort is used (it falls back to a slow path
    # on NaN); the missing values are then the trailing n..w positions of every row and are
    # masked below (no infinity reaches here: to_panel turns them into NaN)
    q = _buf(scratch, "rank_keys", p.shape)
    np.copyto(q, p)
    q[~valid] = np.inf
    idx = np.argsort(q, axis=1)
    idx += (np.arange(g, dtype=np.int64) * w)[:, None]  # flat positions
    sv = q  # reuse: the sorted values replace the keys
    np.take(p.reshape(-1), idx, out=sv, mode="clip")
    j = np.arange(w, dtype=np.float64)
    same = np.equal(sv[:, 1:], sv[:, :-1])  # NaN == NaN is False: missing values never tie
    pct = _buf(scratch, "rank_pct", p.shape)
    if same.any():
        start = np.ones((g, w), dtype=bool)
        start[:, 1:] = ~same
        end = np.ones((g, w), dtype=bool)
        end[:, :-1] = ~same
        np.copyto(pct, np.maximum.accumulate(np.where(start, j, 0.0), axis=1))
        pct += np.minimum.accumulate(np.where(end, j, float(w))[:, ::-1], axis=1)[:, ::-1]
        pct *= 0.5
    else:
        pct[:] = j
    denom = (n - 1).astype(np.float64)
    scale = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
    pct *= scale[:, None]
    pct -= np.where(denom > 0, 0.5, 0.0)[:, None]
    pct[j[None, :] >= n[:, None]] = np.nan
    r = np.empty((g, w)) if out is None else out
    r.reshape(-1)[idx] = pct
    return (r, sv) if with_sorted else r


def _median_panel(p: np.ndarray) -> np.ndarray:
    _, n = _counts(p)
    return _quantile_sorted(np.sort(p, axis=1), n, 0.5)


def _group_slots(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Group codes with the rows outside every group (-1) sent to one extra bin."""
    return np.where(codes >= 0, codes, n_groups)


def _demean_groups(values: np.ndarray, codes: np.ndarray, n_groups: int, out: np.ndarray | None = None,
                   slots: np.ndarray | None = None) -> np.ndarray:
    """values - mean of their group (codes -1 -> NaN); NaN values neither count nor change.
    `slots`: _group_slots(codes, n_groups), when the caller has it."""
    slots = _group_slots(codes, n_groups) if slots is None else slots
    ok = np.isfinite(values)
    ok &= slots < n_groups
    sums = np.bincount(slots, weights=np.where(ok, values, 0.0), minlength=n_groups + 1)
    counts = np.bincount(slots, weights=ok.view(np.uint8), minlength=n_groups + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    out = np.empty(len(values)) if out is None else out
    np.subtract(values, means[slots], out=out)
    out[~ok] = np.nan
    return out


def pct_rank_by_group(values: np.ndarray, group_codes: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Percentile rank in [-0.5, 0.5] of `values` within each group of `group_codes`
    (integers, -1 = no group -> NaN), ties averaged, NaN kept. The kernel of `cs_rank`."""
    codes = np.asarray(group_codes, dtype=np.int64)
    if n_groups is None:
        n_groups = int(codes.max()) + 1 if len(codes) else 0
    panel = _Panel(codes, n_groups)
    p = panel.to_panel(values)
    return panel.from_panel(_rank_panel(p, *_counts(p)))


# ------------------------------------------------------------------ frame-level transforms

def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    col = frame[column]
    if col.dtype == np.float64:
        return col.to_numpy()
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], date_column: str) -> list[str]:
    cols = list(columns)
    missing = [c for c in [date_column, *cols] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame")
    return cols


def _apply_per_day(frame: pd.DataFrame, columns: Sequence[str], date_column: str, min_count: int,
                   kernel: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> pd.DataFrame:
    cols = _check_columns(frame, columns, date_column)
    out = frame.copy()
    if not cols or frame.empty:
        return out
    panel = _Panel(*_group_codes(frame[date_column]))
    for c in cols:
        p = panel.to_panel(_floats(frame, c))
        valid, n = _counts(p)
        r = kernel(p, valid, n)
        r[n < min_count] = np.nan
        out[c] = panel.from_panel(r)
    return out


def winsorize(frame: pd.DataFrame, columns: Sequence[str], lower: float = 0.01, upper: float = 0.99, *,
              date_column: str = DATE_COLUMN, min_count: int = 1) -> pd.DataFrame:
    """Clip each value of `columns` to the [lower, upper] quantiles of its own day."""
    if not 0.0 <= lower <= upper <= 1.0:
        raise ValueError(f"winsorize needs 0 <= lower <= upper <= 1, got {lower}, {upper}")
    return _apply_per_day(frame, columns, date_column, min_count,
                          lambda p, valid, n: _winsorize_panel(p, lower, upper, valid, n)[0])


def cs_rank(frame: pd.DataFrame, columns: Sequence[str], *, date_column: str = DATE_COLUMN, min_count: int = 1) -> pd.DataFrame:
    """Per-day percentile rank in [-0.5, 0.5] (ties averaged; NaN stays NaN)."""
    return _apply_per_day(frame, columns, date_column, min_count, _rank_panel)


def cs_zscore(frame: pd.DataFrame, columns: Sequence[str], *, date_column: str = DATE_COLUMN, min_count: int = 1) -> pd.DataFrame:
    """Per-day (x - mean) / std (ddof=1); 0.0 where the day's std is 0 or undefined."""
    return _apply_per_day(frame, columns, date_column, min_count, _zscore_panel)


def _sector_codes(day_codes: np.ndarray, n_days: int, sectors: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    sec, uniques = pd.factorize(pd.Series(sectors) if not isinstance(sectors, pd.Series) else sectors)
    sec = sec.astype(np.int64)
    k = max(len(uniques), 1)
    codes = np.where((day_codes >= 0) & (sec >= 0), day_codes * k + sec, -1)
    return codes, n_days * k


def sector_neutral(frame: pd.DataFrame, columns: Sequence[str], sector_column: str = "sector", *,
                   date_column: str = DATE_COLUMN) -> pd.DataFrame:
    """Subtract the mean of the same (day, sector) from each value of `columns`; rows
    without a sector are NaN."""
    cols = _check_columns(frame, [*columns, sector_column], date_column)[:-1]
    out = frame.copy()
    if not cols or frame.empty:
        return out
    codes, g = _sector_codes(*_group_codes(frame[date_column]), frame[sector_column].to_numpy())
    for c in cols:
        out[c] = _demean_groups(_floats(frame, c), codes, g)
    return out


def impute_for_linear(frame: pd.DataFrame, columns: Sequence[str], *, date_column: str = DATE_COLUMN,
                      indicator_suffix: str = "_missing") -> pd.DataFrame:
    """Fill each missing value of `columns` with the median of its own day (never another
    day's) and add a `<column>_missing` column (1.0 where filled, else 0.0). A day without
    any value of a column keeps NaN there (see the module's missing-value policy)."""
    cols = _check_columns(frame, columns, date_column)
    out = frame.copy()
    if not cols:
        return out
    clash = [f"{c}{indicator_suffix}" for c in cols if f"{c}{indicator_suffix}" in frame.columns]
    if clash:
        raise ValueError(f"impute_for_linear: indicator columns {clash} already exist")
    panel = _Panel(*_group_codes(frame[date_column]))
    indicators = {}
    for c in cols:
        v = _floats(frame, c)
        missing = ~np.isfinite(v)
        if missing.any():
            med = _median_panel(panel.to_panel(v))
            fill = np.full(len(v), np.nan)
            ok = panel.codes >= 0
            fill[ok] = med[panel.codes[ok]]
            v = np.where(missing, fill, v)
        out[c] = v
        indicators[f"{c}{indicator_suffix}"] = missing.astype(np.float64)
    return pd.concat([out, pd.DataFrame(indicators, index=out.index)], axis=1)


# ------------------------------------------------------------------ the feature matrix

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


_DAY_OFFSET = np.int64(5_000_000)  # day numbers + offset are positive for any plausible date
_SYM_STRIDE = np.int64(10_000_000)


def _block_days(block: pd.DataFrame, name: str, sym_codes: np.ndarray) -> np.ndarray:
    days = day_numbers(block["trade_date"])
    bad = (sym_codes < 0) | (days == MISSING_DAY)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
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

    # ---- which block holds which column (a name in two blocks is ambiguous)
    owner: dict[str, int] = {}
    for i, b in enumerate(blocks):
        for c in b.columns:
            if c in KEY_COLUMNS:
                continue
            if c in owner:
                raise ValueError(f"feature column {c!r} is in block {owner[c]} and block {i}")
            owner[c] = i
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

    # ---- keys: symbol codes in name order, day numbers; rows in (day, symbol) order
    base = blocks[0]
    n = len(base)
    sym_all, sym_uniques = pd.factorize(pd.concat([b["symbol"] for b in blocks], ignore_index=True))
    rank_of = np.empty(len(sym_uniques), dtype=np.int64)
    rank_of[np.argsort(np.asarray(sym_uniques, dtype=str), kind="stable")] = np.arange(len(sym_uniques))
    sym_all = np.where(sym_all >= 0, rank_of[np.maximum(sym_all, 0)], -1)
    offsets = np.cumsum([0, *[len(b) for b in blocks]])
    base_sym = sym_all[: offsets[1]]
    base_day = _block_days(base, "0", base_sym)
    base_keys = base_sym * _SYM_STRIDE + (base_day + _DAY_OFFSET)
    _unique_or_raise(base_keys, base, "0")
    dm_key = (base_day + _DAY_OFFSET) * _SYM_STRIDE + base_sym  # day-major
    order = np.argsort(dm_key, kind="stable") if n > 1 and bool((np.diff(dm_key) < 0).any()) else np.arange(n)
    keys_dm = base_keys[order]
    day_sorted = base_day[order]

    take: dict[int, np.ndarray] = {0: order}
    for i in range(1, len(blocks)):
        if not any(owner[c] == i for c in source):
            continue
        b_sym = sym_all[offsets[i]: offsets[i + 1]]
        keys = b_sym * _SYM_STRIDE + (_block_days(blocks[i], str(i), b_sym) + _DAY_OFFSET)
        if len(keys) == n and np.array_equal(keys, base_keys):
            take[i] = order  # same rows in the same order as the first block
            continue
        _unique_or_raise(keys, blocks[i], str(i))
        take[i] = pd.Index(keys).get_indexer(keys_dm)
    missing_rows = {i: np.flatnonzero(t < 0) for i, t in take.items()}

    def gather(c: str, out: np.ndarray) -> np.ndarray:
        b = owner[c]
        np.take(_floats(blocks[b], c), take[b], out=out, mode="clip")
        if len(missing_rows[b]):
            out[missing_rows[b]] = np.nan
        return out

    # ---- per-day panel; days with too few symbols
    new_day = np.concatenate(([n > 0], day_sorted[1:] != day_sorted[:-1])) if n else np.zeros(0, dtype=bool)
    day_codes = np.cumsum(new_day) - 1
    n_days = int(day_codes[-1]) + 1 if n else 0
    if panel_width is not None and int(panel_width) < 1:
        raise ValueError(f"panel_width must be >= 1, got {panel_width}")
    panel = _Panel(day_codes, n_days, min_width=panel_width or 1)
    drop_day = panel.counts < min_names_per_day
    dropped_days: tuple[Any, ...] = ()
    if drop_day.any():
        first_rows = order[np.flatnonzero(new_day)]
        dropped_days = tuple(base["trade_date"].iloc[first_rows[np.flatnonzero(drop_day)]].tolist())

    if neutral_columns:
        sec_map = sectors[["symbol", "sector"]].drop_duplicates()
        if sec_map["symbol"].duplicated().any():
            s = sec_map.loc[sec_map["symbol"].duplicated(), "symbol"].iloc[0]
            raise ValueError(f"sectors: symbol {s!r} has more than one sector")
        row_sector = base["symbol"].map(sec_map.set_index("symbol")["sector"]).to_numpy()[order]
        sec_codes, n_sec_groups = _sector_codes(day_codes, n_days, row_sector)
        sec_slots = _group_slots(sec_codes, n_sec_groups)

    slot = {name: k for k, name in enumerate(out_names)}
    values = np.empty((len(out_names), n), dtype=np.float64)
    zscore_set, neutral_set, rank_set, raw_set = set(zscore_columns), set(neutral_columns), set(rank_columns), set(raw_columns)
    present = np.zeros(n, dtype=np.float64)
    winsor_used = np.zeros(panel.groups * panel.width, dtype=np.float64).reshape(panel.groups, panel.width)
    winsor_clipped = np.zeros_like(winsor_used)
    lock = threading.Lock()

    local = threading.local()

    def work(c: str) -> None:
        scratch = getattr(local, "scratch", None)
        if scratch is None:
            scratch = local.scratch = _Scratch()
        v = gather(c, values[slot[c]] if c in raw_set else scratch.get("column", (n,)))
        fin = np.isfinite(v)
        winsorized = c in zscore_set or c in neutral_set
        if winsorized or c in rank_set:
            p = panel.to_panel(v, scratch, finite=fin)
            valid, cnt = _counts(p)
            few = (cnt < min_names_per_day) | drop_day
            sv = None
            if c in rank_set:
                out = values[slot[f"{c}_rank"]]
                r, sv = _rank_panel(p, valid, cnt, scratch=scratch, out=panel.target(out, scratch, "rank_out"),
                                    with_sorted=True)
                r[few] = np.nan
                panel.from_panel(r, out=out)
            if winsorized:
                w, clipped = _winsorize_panel(p, lower, upper, valid, cnt, sv, scratch)
                out = values[slot[f"{c}_z"]] if c in zscore_set else scratch.get("z_rows", (n,))
                z = _zscore_panel(w, valid, cnt, scratch, out=panel.target(out, scratch, "z_out"))
                z[few] = np.nan
                zs = panel.from_panel(z, out=out)
                if c in neutral_set:
                    _demean_groups(zs, sec_codes, n_sec_groups, out=values[slot[f"{c}_sn"]], slots=sec_slots)
                valid[few] = False
                clipped &= valid
        with lock:
            np.add(present, fin, out=present)
            if winsorized:
                np.add(winsor_used, valid, out=winsor_used)
                np.add(winsor_clipped, clipped, out=winsor_clipped)

    if workers is None:
        workers = min(2, os.cpu_count() or 1) if n * len(source) >= 2_000_000 else 1
    if workers > 1 and len(source) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, source))
    else:
        for c in source:
            work(c)

    completeness = present / len(source) if source else np.ones(n)
    used, clip = panel.from_panel(winsor_used), panel.from_panel(winsor_clipped)
    clipped_share = np.divide(clip, used, out=np.zeros(n), where=used > 0)
    day_ok = (~drop_day[day_codes]).astype(np.float64)
    values[slot["completeness"]] = completeness
    values[slot["quality_score"]] = np.clip(completeness * (1.0 - CLIP_PENALTY * clipped_share) * day_ok, 0.0, 1.0)

    features = pd.DataFrame(values.T, columns=out_names, copy=False)
    keys = pd.DataFrame({"symbol": base["symbol"].to_numpy()[order], "trade_date": base["trade_date"].to_numpy()[order]})
    matrix = pd.concat([keys, features], axis=1, copy=False)
    missing_share = {name: (float(np.count_nonzero(np.isnan(values[k]))) / n if n else 0.0) for name, k in slot.items()}
    report = FeatureMatrixReport(
        rows=n,
        columns=tuple(out_names),
        missing_share=missing_share,
        days=n_days,
        dropped_days=dropped_days,
        min_names_per_day=min_names_per_day,
    )
    return matrix, report


def feature_matrix_by_year(
    read_blocks: Callable[[date, date], list[pd.DataFrame]],
    years: Iterable[int],
    sectors: pd.DataFrame | None,
    *,
    widest_day: int | None,
    **spec: Any,
) -> Iterator[tuple[pd.DataFrame, FeatureMatrixReport]]:
    """`build_feature_matrix` one calendar year at a time, oldest first: yields (that
    year's matrix, its report) for each year in `years`. `read_blocks(first_day, last_day)`
    returns the blocks' rows of those days (e.g. `OfflineFeatureStore.read(..., start=,
    end=)` per block); `widest_day` is the largest number of rows of the first block on one
    day over ALL the years (`widest_day_of`); `spec` holds build_feature_matrix's other
    keyword arguments.

    Every statistic of the matrix is computed from one day's cross-section, and a row's
    completeness and quality from that row and its day, so a year's part equals that year's
    rows of a build over the whole history, and the parts in order are that whole matrix,
    bit for bit (tested) - given `widest_day` (without it, None, each year is laid out as
    wide as its own widest day, and a z-score can differ from the whole build's in its last
    bit). The point is memory: one year of blocks and matrix at a time instead of all blocks
    plus the whole matrix (2.8 GB at 500 symbols x 10 years; the feature-matrix step stages
    each part to disk with `OfflineFeatureStore.write_parts` before it asks for the next).
    `FeatureMatrixReport.combine` merges the reports. A year whose blocks have no row
    yields an empty part."""
    for year in sorted(set(int(y) for y in years)):
        first, last = date(year, 1, 1), date(year, 12, 31)
        blocks = read_blocks(first, last)
        matrix, report = build_feature_matrix(blocks, sectors, panel_width=widest_day, **spec)
        del blocks
        if len(matrix):
            days = day_numbers(matrix["trade_date"])
            lo, hi = (first - _EPOCH).days, (last - _EPOCH).days
            if int(days.min()) < lo or int(days.max()) > hi:
                outside = matrix["trade_date"].iloc[int(np.argmax((days < lo) | (days > hi)))]
                raise ValueError(f"read_blocks({first}, {last}) returned rows of other days, e.g. {outside!r}")
        yield matrix, report
        del matrix


def widest_day_of(trade_dates: pd.Series | np.ndarray) -> int | None:
    """The largest number of rows on one calendar day (None when there is no row): the
    `widest_day` of `feature_matrix_by_year`, from the first block's trade_date column."""
    days = day_numbers(trade_dates)
    days = days[days != MISSING_DAY]
    if not len(days):
        return None
    return int(np.unique(days, return_counts=True)[1].max())
