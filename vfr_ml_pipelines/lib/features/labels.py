"""Forward-return labels, each with the day it becomes known."""

from __future__ import annotations

import pandas as pd

# trading days per horizon (VFR's horizons; `1w` is VFR's default)
HORIZON_DAYS: dict[str, int] = {"1d": 1, "1w": 5, "1m": 21}


def horizon_days(horizon: str) -> int:
    try:
        return HORIZON_DAYS[horizon]
    except KeyError:
        raise ValueError(f"unknown horizon {horizon!r}; expected one of {sorted(HORIZON_DAYS)}") from None


def compute_labels(prices: pd.DataFrame, horizon: str) -> pd.DataFrame:
    """Forward return from each day's adjusted close to the close `h` trading days later,
    the excess over the universe's mean that day, and `known_date` (the later day)."""
    h = horizon_days(horizon)
    ordered = prices.sort_values(["symbol", "trade_date"], kind="stable")
    grouped = ordered.groupby("symbol", sort=False)
    frame = ordered[["symbol", "trade_date"]].copy()
    frame["forward_return"] = grouped["adj_close"].shift(-h) / ordered["adj_close"] - 1.0
    frame["known_date"] = grouped["trade_date"].shift(-h)
    frame = frame.dropna(subset=["forward_return", "known_date"])
    frame["excess_return"] = frame["forward_return"] - frame.groupby("trade_date")["forward_return"].transform("mean")
    frame.insert(0, "horizon", horizon)
    return frame[["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date"]].reset_index(drop=True)
