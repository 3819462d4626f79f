"""Forward-return labels, each with the day it becomes known.

For a symbol's row at session t and a horizon of h sessions (`HORIZON_DAYS`):

* ``forward_return`` = adj_close[t+h] / adj_close[t] - 1, where t+h is the h-th row after
  t among THAT symbol's own rows (its own sessions, in trade_date order);
* ``known_date`` = the trade_date of that later row, the first day the label is observable
  (purging and the "no look-ahead" checks compare to it);
* ``excess_return`` = forward_return minus the mean forward_return of all symbols labelled
  on the same trade_date (and horizon);
* ``rank_return`` (``rank_label``; models train on it) = the per-(horizon, trade_date)
  percentile rank of forward_return in [-0.5, 0.5], ties averaged
  (``panels.pct_rank_by_group``).

Rows whose label is not known yet (the last h rows of a symbol) or whose adj_close is
missing at t or t+h do not exist. Note that excess_return and rank_return of day t use the
whole cross-section of day t, so strictly they are known when the LAST symbol's label of
that day is known (the same session for every symbol that trades every session).

Performance: the rows are sorted once by integer (symbol, day) keys (skipped when already
sorted) and shifted with numpy; the per-day mean is a bincount. No groupby.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS, HORIZONS, horizon_days  # noqa: F401  (re-exported for callers of labels)
from vfr_ml_pipelines.lib.dates import (
    DAY_KEY_OFFSET,
    MISSING_DAY,
    SYMBOL_KEY_STRIDE,
    day_numbers,
    first_row_without_key,
    symbol_day_keys,
)
from vfr_ml_pipelines.lib.features.panels import pct_rank_by_group


LABEL_COLUMNS = ["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date"]


def _ordered(prices: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Row order by (symbol, trade_date) (None when already in that order), and the
    symbol codes and day numbers in that order. Rejects missing and duplicate keys."""
    missing = [c for c in ("symbol", "trade_date", "adj_close") if c not in prices.columns]
    if missing:
        raise ValueError(f"prices have no column(s) {missing}")
    sym, _ = pd.factorize(prices["symbol"], sort=True)
    sym = sym.astype(np.int64)
    day = day_numbers(prices["trade_date"])
    i = first_row_without_key(sym, day)
    if i is not None:
        raise ValueError(f"prices row {i} has no symbol or trade_date: "
                         f"({prices['symbol'].iloc[i]!r}, {prices['trade_date'].iloc[i]!r})")
    key = symbol_day_keys(sym, day)
    step = np.diff(key)
    order = None
    if (step < 0).any():
        order = np.argsort(key, kind="stable")
        key, sym, day = key[order], sym[order], day[order]
        step = np.diff(key)
    if (step == 0).any():
        j = int(np.flatnonzero(step == 0)[0])
        i = j if order is None else int(order[j])
        raise ValueError(f"prices have duplicate (symbol, trade_date) rows: "
                         f"{prices['symbol'].iloc[i]!r}, {prices['trade_date'].iloc[i]!r}")
    return order, sym, day


def _prepare(prices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Symbol codes, day numbers, adj_close, trade_date and symbol values, all in
    (symbol, trade_date) order."""
    order, sym, day = _ordered(prices)
    adj = pd.to_numeric(prices["adj_close"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    dates = prices["trade_date"].to_numpy()
    symbols = prices["symbol"].to_numpy()
    if order is not None:
        adj, dates, symbols = adj[order], dates[order], symbols[order]
    return sym, day, adj, dates, symbols


def _labels(prepared: tuple[np.ndarray, ...], horizon: str, with_rank: bool) -> pd.DataFrame:
    h = horizon_days(horizon)
    sym, day, adj, dates, symbols = prepared
    n = len(adj)
    if n <= h:
        idx = np.zeros(0, dtype=np.int64)
        fwd = np.zeros(0)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            fwd = adj[h:] / adj[:-h] - 1.0
        idx = np.flatnonzero((sym[h:] == sym[:-h]) & ~np.isnan(fwd))
        fwd = fwd[idx]
    # excess over the mean of the labelled rows of the same day
    dcodes, uniq = pd.factorize(day[idx])
    sums = np.bincount(dcodes, weights=fwd, minlength=len(uniq))
    counts = np.bincount(dcodes, minlength=len(uniq))
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = fwd - (sums / counts)[dcodes]
    frame = pd.DataFrame({
        "horizon": np.full(len(idx), horizon, dtype=object),
        "trade_date": dates[idx],
        "symbol": symbols[idx],
        "forward_return": fwd,
        "excess_return": excess,
        "known_date": dates[idx + h],
    })
    if with_rank:
        frame["rank_return"] = pct_rank_by_group(fwd, dcodes, len(uniq))
    return frame


def compute_labels(prices: pd.DataFrame, horizon: str) -> pd.DataFrame:
    """Forward return from each day's adjusted close to the close `h` trading days later,
    the excess over the universe's mean that day, and `known_date` (the later day).
    Columns LABEL_COLUMNS, rows in (symbol, trade_date) order."""
    horizon_days(horizon)
    return _labels(_prepare(prices), horizon, with_rank=False)


def compute_all_labels(
    prices: pd.DataFrame, horizons: Sequence[str] = HORIZONS, *, with_rank: bool = True
) -> pd.DataFrame:
    """`compute_labels` for each horizon, concatenated (horizon by horizon), with
    `rank_return` (`rank_label`, per horizon and day) unless `with_rank` is False.
    Columns: LABEL_COLUMNS + ["rank_return"] (the `vfr_ml.labels` table, migration 005)."""
    horizons = list(horizons)
    if not horizons:
        raise ValueError("compute_all_labels needs at least one horizon")
    if len(set(horizons)) != len(horizons):
        raise ValueError(f"duplicate horizons in {horizons}")
    for hz in horizons:
        horizon_days(hz)  # unknown horizons fail before any work
    prepared = _prepare(prices)
    return pd.concat([_labels(prepared, hz, with_rank) for hz in horizons], ignore_index=True)


def rank_label(labels: pd.DataFrame) -> pd.DataFrame:
    """A copy of `labels` with `rank_return`: the percentile rank of forward_return among
    the rows of the same trade_date (and horizon, when the frame has that column), mapped
    to [-0.5, 0.5] with ties averaged (lowest -0.5, highest 0.5, a lone row 0.0)."""
    missing = [c for c in ("trade_date", "forward_return") if c not in labels.columns]
    if missing:
        raise ValueError(f"labels have no column(s) {missing}")
    out = labels.copy()
    if out.empty:
        out["rank_return"] = pd.Series(dtype=np.float64)
        return out
    day = day_numbers(out["trade_date"])
    ok = day != MISSING_DAY
    key = day + DAY_KEY_OFFSET
    if "horizon" in out.columns:
        hz, _ = pd.factorize(out["horizon"])
        ok &= hz >= 0
        key += hz.astype(np.int64) * SYMBOL_KEY_STRIDE
    codes, uniq = pd.factorize(np.where(ok, key, -1))
    codes = codes.astype(np.int64)
    codes[~ok] = -1  # rows without a day or horizon get no rank
    values = pd.to_numeric(out["forward_return"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    out["rank_return"] = pct_rank_by_group(values, codes, len(uniq))
    return out
