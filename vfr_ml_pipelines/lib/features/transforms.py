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

The kernels (per-day panels, NaN = missing) are in `panels.py`; the feature matrix that
chains these transforms over the feature blocks is `matrix.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.features.panels import (
    Panel,
    as_floats,
    day_group_codes,
    day_sector_codes,
    demean_groups,
    median_panel,
    rank_panel,
    valid_counts,
    winsorize_panel,
    zscore_panel,
)

DATE_COLUMN = "trade_date"


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
    panel = Panel(*day_group_codes(frame[date_column]))
    for c in cols:
        p = panel.to_panel(as_floats(frame, c))
        valid, n = valid_counts(p)
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
                          lambda p, valid, n: winsorize_panel(p, lower, upper, valid, n)[0])


def cs_rank(frame: pd.DataFrame, columns: Sequence[str], *, date_column: str = DATE_COLUMN, min_count: int = 1) -> pd.DataFrame:
    """Per-day percentile rank in [-0.5, 0.5] (ties averaged; NaN stays NaN)."""
    return _apply_per_day(frame, columns, date_column, min_count, rank_panel)


def cs_zscore(frame: pd.DataFrame, columns: Sequence[str], *, date_column: str = DATE_COLUMN, min_count: int = 1) -> pd.DataFrame:
    """Per-day (x - mean) / std (ddof=1); 0.0 where the day's std is 0 or undefined."""
    return _apply_per_day(frame, columns, date_column, min_count, zscore_panel)


def sector_neutral(frame: pd.DataFrame, columns: Sequence[str], sector_column: str = "sector", *,
                   date_column: str = DATE_COLUMN) -> pd.DataFrame:
    """Subtract the mean of the same (day, sector) from each value of `columns`; rows
    without a sector are NaN."""
    cols = _check_columns(frame, [*columns, sector_column], date_column)[:-1]
    out = frame.copy()
    if not cols or frame.empty:
        return out
    codes, g = day_sector_codes(*day_group_codes(frame[date_column]), frame[sector_column].to_numpy())
    for c in cols:
        out[c] = demean_groups(as_floats(frame, c), codes, g)
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
    panel = Panel(*day_group_codes(frame[date_column]))
    indicators = {}
    for c in cols:
        v = as_floats(frame, c)
        missing = ~np.isfinite(v)
        if missing.any():
            med = median_panel(panel.to_panel(v))
            fill = np.full(len(v), np.nan)
            ok = panel.codes >= 0
            fill[ok] = med[panel.codes[ok]]
            v = np.where(missing, fill, v)
        out[c] = v
        indicators[f"{c}{indicator_suffix}"] = missing.astype(np.float64)
    return pd.concat([out, pd.DataFrame(indicators, index=out.index)], axis=1)
