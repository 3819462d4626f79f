"""Split- and dividend-adjusted closes computed from stored raw bars and their events.

Providers deliver an `adj_close` adjusted relative to the day they were asked, so adjusted
values loaded on different days do not line up. The warehouse therefore keeps raw prices
plus the events (`split_ratio`, `dividend` on their ex-dates), and every reader derives the
adjusted series here, from one consistent anchor: the last stored day of each symbol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def adjust_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """Return `prices` sorted by (symbol, trade_date) with `adj_close` recomputed from raw
    closes and events. On an ex-date t the total return is
    (close_t * split_ratio_t + dividend_t) / close_{t-1} - 1 (a 2-for-1 split halves the
    price and has split_ratio 2); the adjusted close is the cumulative product of those
    returns, scaled so that it equals the raw close on the symbol's last day. Without event
    columns the frame is returned with adj_close = close."""
    out = prices.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)
    close = out["close"].to_numpy(dtype="float64")
    if "split_ratio" not in out.columns and "dividend" not in out.columns:
        out["adj_close"] = close
        return out
    split = out["split_ratio"].to_numpy(dtype="float64") if "split_ratio" in out.columns else np.ones(len(out))
    dividend = out["dividend"].to_numpy(dtype="float64") if "dividend" in out.columns else np.zeros(len(out))
    symbols = out["symbol"].to_numpy()
    first = np.r_[True, symbols[1:] != symbols[:-1]]
    prev_close = np.r_[np.nan, close[:-1]]
    growth = np.where(first, 1.0, (close * split + dividend) / prev_close)
    # log-cumsum per symbol, then anchor each symbol's last day at its raw close
    log_index = np.log(growth)
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(out)]
    adj = np.empty(len(out))
    for lo, hi in zip(starts, ends):
        level = np.cumsum(log_index[lo:hi])
        adj[lo:hi] = close[hi - 1] * np.exp(level - level[-1])
    out["adj_close"] = adj
    return out
