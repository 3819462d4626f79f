"""A small, fast market for the backtest tests: a market factor, sectors, and a planted
persistent signal whose oracle expected return is known exactly.

The signal x follows an AR(1) (persistence 0.9) per symbol; the close-to-close return of
session t + 1 is `strength` * x[t] + beta * market + noise, so the oracle's expected return at t
is strength * x[t] (plus the market's zero mean)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_market(n_dates: int = 300, n_symbols: int = 40, *, seed: int = 7, strength: float = 0.004, n_sectors: int = 4):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-02", periods=n_dates)
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    signal = np.zeros((n_dates, n_symbols))
    signal[0] = rng.standard_normal(n_symbols)
    for t in range(1, n_dates):
        signal[t] = 0.9 * signal[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal(n_symbols)
    market = 0.01 * rng.standard_normal(n_dates)
    beta = rng.uniform(0.6, 1.4, n_symbols)
    returns = np.zeros((n_dates, n_symbols))
    returns[1:] = strength * signal[:-1] + beta * market[1:, None] + 0.015 * rng.standard_normal((n_dates - 1, n_symbols))
    close = 100.0 * np.cumprod(1.0 + returns, axis=0)
    # the open sits between the previous close and the close (a quarter of the move overnight)
    previous = np.vstack([close[:1], close[:-1]])
    open_ = previous * (1.0 + 0.25 * returns)
    volume = rng.uniform(5e5, 2e6, (n_dates, n_symbols))
    grid = pd.MultiIndex.from_product([dates, symbols], names=["trade_date", "symbol"])
    prices = pd.DataFrame(
        {"open": open_.ravel(), "close": close.ravel(), "adj_close": close.ravel(), "volume": volume.ravel()}, index=grid
    ).reset_index()
    oracle = pd.DataFrame({"expected_return": (strength * signal).ravel()}, index=grid).reset_index()
    sectors = pd.Series([f"sector_{i % n_sectors}" for i in range(n_symbols)], index=symbols, name="sector")
    market_returns = pd.Series(market, index=dates, name="market")
    return prices, oracle, sectors, market_returns
