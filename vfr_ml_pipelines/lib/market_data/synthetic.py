"""A deterministic synthetic equity market (first version).

Daily OHLCV for a universe with a market factor, sector factors, per-symbol volatility and
fat-tailed shocks, on a weekday calendar. It plants one weak, documented signal (a one-week
short-term reversal) so that a model has something real, and small, to learn.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

SECTORS = (
    "Technology", "Healthcare", "Financials", "Energy", "Industrials",
    "ConsumerDiscretionary", "ConsumerStaples", "Utilities", "Materials", "RealEstate",
)

# Daily expected return per unit of the trailing 5-day return: a weak one-week reversal.
REVERSAL_STRENGTH = -0.04


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """The market is anchored at `start`: a day's bars depend only on the seed and the days
    before it, so extending `as_of` appends history and never rewrites it."""

    as_of: date
    start: date = date(2023, 1, 2)
    n_symbols: int = 50
    seed: int = 7
    # the last `recent_listings` symbols were listed only `recent_listing_days` days ago
    recent_listings: int = 1
    recent_listing_days: int = 40

    def __post_init__(self) -> None:
        if self.n_symbols < 2:
            raise ValueError(f"n_symbols must be at least 2, got {self.n_symbols}")
        n_days = len(trading_days(self.start, self.as_of))
        if n_days < 80:
            raise ValueError(f"need at least 80 trading days from {self.start} to {self.as_of}, got {n_days}")


def trading_days(start: date, end: date) -> pd.DatetimeIndex:
    """Weekdays from `start` to `end` inclusive (holidays come with the market-data
    calendar)."""
    return pd.bdate_range(start=pd.Timestamp(start), end=pd.Timestamp(end))


def _stream(config: SyntheticMarketConfig, component: int) -> np.random.Generator:
    # one independent stream per component, drawn in time order, keeps history stable
    return np.random.default_rng([config.seed, component])


def _tickers(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list(string.ascii_uppercase))
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        ticker = "".join(rng.choice(letters, size=4))
        if ticker not in seen:
            seen.add(ticker)
            out.append(ticker)
    return out


def generate_universe(config: SyntheticMarketConfig) -> pd.DataFrame:
    symbols = _tickers(_stream(config, 0), config.n_symbols)
    days = trading_days(config.start, config.as_of)
    listed = [days[0]] * config.n_symbols
    for k in range(min(config.recent_listings, config.n_symbols - 1)):
        listed[config.n_symbols - 1 - k] = days[-config.recent_listing_days]
    return pd.DataFrame(
        {
            "symbol": symbols,
            "sector": [SECTORS[i % len(SECTORS)] for i in range(config.n_symbols)],
            "listed_on": [d.date() for d in listed],
        }
    )


def generate_prices(config: SyntheticMarketConfig) -> pd.DataFrame:
    universe = generate_universe(config)
    days = trading_days(config.start, config.as_of)
    n_days, n_sym = len(days), len(universe)

    static = _stream(config, 1)
    sector_idx = np.array([SECTORS.index(s) for s in universe["sector"]])
    beta = static.normal(1.0, 0.25, n_sym).clip(0.3, 2.0)
    idio_vol = static.uniform(0.010, 0.025, n_sym)
    start_price = 20.0 * np.exp(static.normal(0, 0.8, n_sym))
    base_volume = np.exp(static.normal(13.5, 1.0, n_sym))
    market = _stream(config, 2).standard_t(df=5, size=n_days) * 0.008
    sectors = _stream(config, 3).standard_t(df=5, size=(n_days, len(SECTORS))) * 0.005
    shocks = _stream(config, 4).standard_t(df=4, size=(n_days, n_sym)) / np.sqrt(2.0) * idio_vol
    bar_noise = _stream(config, 5).normal(0, 1, size=(n_days, n_sym, 4))

    returns = np.zeros((n_days, n_sym))
    for t in range(n_days):
        trailing = returns[max(0, t - 5):t].sum(axis=0)
        returns[t] = beta * market[t] + sectors[t, sector_idx] + shocks[t] + REVERSAL_STRENGTH * trailing

    close = start_price * np.exp(np.cumsum(returns, axis=0))
    prev_close = np.vstack([start_price, close[:-1]])
    daily_vol = idio_vol + 0.008
    open_ = prev_close * np.exp(0.3 * bar_noise[..., 0] * daily_vol)
    high = np.maximum(open_, close) * np.exp(0.5 * np.abs(bar_noise[..., 1]) * daily_vol)
    low = np.minimum(open_, close) * np.exp(-0.5 * np.abs(bar_noise[..., 2]) * daily_vol)
    volume = base_volume * np.exp(0.3 * bar_noise[..., 3]) * (1 + 20 * np.abs(returns))

    frame = pd.DataFrame(
        {
            "symbol": np.tile(universe["symbol"].to_numpy(), n_days),
            "trade_date": np.repeat(days.date, n_sym),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel().round().astype("int64"),
        }
    )
    frame["adj_close"] = frame["close"]
    listed = dict(zip(universe["symbol"], universe["listed_on"]))
    frame = frame[frame["trade_date"] >= frame["symbol"].map(listed)]
    return frame.sort_values(["symbol", "trade_date"]).reset_index(drop=True)
