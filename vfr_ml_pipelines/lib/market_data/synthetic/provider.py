"""The synthetic market served as a MarketDataProvider: frames of any date range and symbol subset.

A factor model (market, ten sectors, idiosyncratic part) with GARCH(1,1) volatility and
Student-t shocks on the NYSE calendar; splits and dividends on raw prices with a
total-return adjusted close; quarterly fundamentals filed 25-60 days after the quarter;
daily headlines whose Loughran-McDonald tone carries news. Four weak signals (one-week
reversal, momentum, value, news) set each symbol's expected return, and `generate_oracle`
returns that expectation, which no feature may see. The model, the signals with their
formulas and the measured calibration are in docs/synthetic_market.md; the engine is
`simulation.py`, the configuration `config.py`.

History stability: a day's raw prices, events, fundamentals, news and oracle depend only on
the seed, `start` and the days before it, so a later `as_of` appends rows and never rewrites
them. Two things do move with `as_of`, by design:
- `adj_close` is anchored at the last generated day (as vendors do): old adjusted values
  change when a later split or dividend enters the range, their daily ratios never do;
- with `listing_anchor=None` the recently listed symbols are listed `recent_listing_days`
  sessions before `as_of`; pass a fixed `listing_anchor` for listing dates that stay put.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.provider import MarketDataProvider, ProviderError
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    NEWS_COLUMNS,
    ORACLE_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
)
from vfr_ml_pipelines.lib.market_data.synthetic import fundamentals
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig, stream
from vfr_ml_pipelines.lib.market_data.synthetic.simulation import Simulation, simulate


# ----------------------------------------------------------------------------- simulation


def _simulation_end(config: SyntheticMarketConfig) -> date:
    # Simulate to the end of as_of's quarter: daily partitions of one quarter share a run,
    # and history stability makes the longer run's first rows those of the shorter one.
    quarter_end = fundamentals.quarter_end(config.as_of)
    return max(config.as_of, min(quarter_end, calendar.calendar_end()))


@lru_cache(maxsize=2)
def _simulate(config: SyntheticMarketConfig, end: date) -> Simulation:
    return simulate(config, end)


def simulation(config: SyntheticMarketConfig) -> Simulation:
    """The (cached) simulation behind `config`; it may run past `as_of`, which no public
    function ever shows."""
    return _simulate(replace(config, as_of=_simulation_end(config), listing_anchor=None), _simulation_end(config))


@dataclass(frozen=True)
class _Listing:
    """When each symbol trades, as row indices into the simulation's sessions."""

    listed_on: list[date]
    delisted_on: list[date | None]  # first session without a bar; None if none up to as_of
    first_row: np.ndarray  # first row with a bar
    last_row: np.ndarray  # last row with a bar (<= as_of); last_row < first_row: none
    as_of_row: int


def _listing(config: SyntheticMarketConfig, sim: Simulation) -> _Listing:
    n = config.n_symbols
    rng = stream(config, 16)
    # symbols listed before the simulated history: an IPO 1-30 years earlier, on a weekday
    listed = []
    for years in rng.uniform(1.0, 30.0, n):
        day = config.start - timedelta(days=int(years * 365.25))
        while day.weekday() >= 5:
            day += timedelta(days=1)
        listed.append(day)
    anchor = config.listing_anchor or config.as_of
    upto = calendar.trading_days(anchor - timedelta(days=2 * config.recent_listing_days + 15), anchor)
    for k in range(config.recent_listings):
        listed[n - 1 - k] = upto[-config.recent_listing_days] if len(upto) >= config.recent_listing_days else upto[0]

    horizon = config.delisting_after + 21 * max(config.delistings - 1, 0)
    after_start = calendar.trading_days(config.start, config.start + timedelta(days=int(horizon * 1.6) + 30))
    delisted: list[date | None] = [None] * n
    for k in range(config.delistings):
        idx = config.delisting_after + 21 * k
        if idx < len(after_start) and after_start[idx] <= config.as_of:
            delisted[n - 1 - config.recent_listings - k] = after_start[idx]

    ordinals = sim.ordinals
    as_of_row = int(np.searchsorted(ordinals, config.as_of.toordinal(), side="right")) - 1
    first_row = np.maximum(np.searchsorted(ordinals, [d.toordinal() for d in listed], side="left"), sim.first)
    last = [as_of_row if d is None else int(np.searchsorted(ordinals, d.toordinal(), side="left")) - 1 for d in delisted]
    return _Listing(listed, delisted, first_row, np.minimum(np.array(last), as_of_row), as_of_row)


def _rows(sim: Simulation, listing: _Listing, start: date, end: date) -> tuple[int, int]:
    """[lo, hi) rows of the sessions within [start, end], up to as_of."""
    lo = int(np.searchsorted(sim.ordinals, start.toordinal(), side="left"))
    hi = int(np.searchsorted(sim.ordinals, end.toordinal(), side="right"))
    return lo, min(hi, listing.as_of_row + 1)


# ----------------------------------------------------------------------------- frames


def _universe_frame(config: SyntheticMarketConfig, sim: Simulation, listing: _Listing, as_of: date) -> pd.DataFrame:
    st = sim.static
    rows = [
        (st.symbols[i], st.names[i], st.sectors[i], listing.listed_on[i],
         listing.delisted_on[i] if listing.delisted_on[i] is not None and listing.delisted_on[i] <= as_of else None)
        for i in range(config.n_symbols)
        if listing.listed_on[i] <= as_of and listing.first_row[i] <= listing.last_row[i]
    ]
    frame = pd.DataFrame(rows, columns=list(UNIVERSE_COLUMNS))
    for col in ("listed_on", "delisted_on"):
        frame[col] = frame[col].astype(object)
    return frame.sort_values("symbol").reset_index(drop=True)


def _symbol_indices(sim: Simulation, symbols: Sequence[str] | None) -> np.ndarray:
    lookup = {s: i for i, s in enumerate(sim.static.symbols)}
    if symbols is None:
        chosen = list(lookup)
    else:
        chosen = list(dict.fromkeys(symbols))
        unknown = [s for s in chosen if s not in lookup]
        if unknown:
            raise ProviderError(f"synthetic: unknown symbol {unknown[0]!r} ({len(unknown)} unknown)", symbol=unknown[0])
    return np.array([lookup[s] for s in sorted(chosen)], dtype=np.int64)


def _block_mask(idx: np.ndarray, listing: _Listing, lo: int, hi: int) -> np.ndarray:
    """(symbols, rows lo..hi-1) mask of the bars that exist."""
    rows = np.arange(lo, hi)
    return (rows[None, :] >= listing.first_row[idx, None]) & (rows[None, :] <= listing.last_row[idx, None])


def _price_frame(sim: Simulation, listing: _Listing, idx: np.ndarray, start: date, end: date) -> pd.DataFrame:
    lo, hi = _rows(sim, listing, start, end)
    if hi <= lo or len(idx) == 0:
        return _empty(PRICE_COLUMNS)
    mask = _block_mask(idx, listing, lo, hi)
    # adjusted close: the total-return index anchored at the symbol's last generated bar
    log_index = np.cumsum(np.log1p(sim.total_return[:, idx]), axis=0)
    last = np.maximum(listing.last_row[idx], 0)
    anchor_close = sim.close[last, idx]
    adj = anchor_close[None, :] * np.exp(log_index[lo:hi] - log_index[last, np.arange(len(idx))][None, :])

    def take(a: np.ndarray) -> np.ndarray:
        return a[lo:hi][:, idx].T[mask]

    counts = mask.sum(axis=1)
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(np.array(sim.static.symbols, dtype=object)[idx], counts),
            "trade_date": np.broadcast_to(np.array(sim.days[lo:hi], dtype=object), mask.shape)[mask],
            "open": take(sim.open), "high": take(sim.high), "low": take(sim.low), "close": take(sim.close),
            "adj_close": adj.T[mask], "volume": take(sim.volume).astype(np.int64),
            "dividend": take(sim.dividend), "split_ratio": take(sim.split),
        }
    )
    return frame.reset_index(drop=True)


def _fundamental_frame(sim: Simulation, listing: _Listing, idx: np.ndarray, start: date, end: date) -> pd.DataFrame:
    q = sim.quarters
    filing_row = q["_filing_row"][:, idx]  # (quarters, symbols)
    n_days = len(sim.days)
    lo, hi = _rows(sim, listing, start, end)
    # a report exists once filed, while the symbol is listed; it is served by filing date
    alive_until = np.array([
        n_days if listing.delisted_on[i] is None else int(listing.last_row[i]) + 1 for i in idx
    ])
    listed_row = np.searchsorted(sim.ordinals, [listing.listed_on[i].toordinal() for i in idx], side="left")
    ok = (filing_row >= lo) & (filing_row < hi) & (filing_row >= listed_row[None, :]) & (filing_row < alive_until[None, :])
    qi, si = np.nonzero(ok)
    if len(qi) == 0:
        return _empty(FUNDAMENTAL_COLUMNS)
    period_end = q["_period_end"][qi]
    days = np.array(sim.days, dtype=object)
    frame = pd.DataFrame(
        {
            "symbol": np.array(sim.static.symbols, dtype=object)[idx[si]],
            "period_end": period_end,
            "filing_date": days[filing_row[qi, si]],
            "fiscal_period": np.array([f"Q{(p.month - 1) // 3 + 1}" for p in period_end], dtype=object),
        }
    )
    for col in FUNDAMENTAL_COLUMNS[4:]:
        frame[col] = q[col][qi, idx[si]].astype("float64")
    return frame.sort_values(["symbol", "period_end"], kind="stable").reset_index(drop=True)


def _news_frame(sim: Simulation, listing: _Listing, idx: np.ndarray, start: date, end: date) -> pd.DataFrame:
    lo, hi = _rows(sim, listing, start, end)
    if hi <= lo or len(idx) == 0:
        return _empty(NEWS_COLUMNS)
    news, day = sim.news()
    a, b = np.searchsorted(day, lo, side="left"), np.searchsorted(day, hi, side="left")
    part = news.iloc[a:b]
    row = day[a:b]
    position = np.full(len(sim.static.symbols), -1)
    position[idx] = np.arange(len(idx))
    symbol_index = pd.Index(sim.static.symbols).get_indexer(part["symbol"])
    pos = position[symbol_index]
    keep = pos >= 0
    keep[keep] &= (row[keep] >= listing.first_row[idx[pos[keep]]]) & (row[keep] <= listing.last_row[idx[pos[keep]]])
    out = part[keep]
    return out.sort_values(["symbol", "published_at"], kind="stable").reset_index(drop=True)[list(NEWS_COLUMNS)]


def _oracle_frame(sim: Simulation, listing: _Listing, idx: np.ndarray, start: date, end: date) -> pd.DataFrame:
    lo, hi = _rows(sim, listing, start, end)
    if hi <= lo or len(idx) == 0:
        return _empty(ORACLE_COLUMNS)
    mask = _block_mask(idx, listing, lo, hi)
    counts = mask.sum(axis=1)
    symbols = np.repeat(np.array(sim.static.symbols, dtype=object)[idx], counts)
    days = np.broadcast_to(np.array(sim.days[lo:hi], dtype=object), mask.shape)[mask]
    parts = [
        pd.DataFrame({"symbol": symbols, "trade_date": days, "horizon": name, "expected_return": sim.oracle[name][lo:hi][:, idx].T[mask]})
        for name in HORIZON_DAYS
    ]
    return pd.concat(parts, ignore_index=True)[list(ORACLE_COLUMNS)]


_FLOAT_COLUMNS = {"open", "high", "low", "close", "adj_close", "dividend", "split_ratio", "expected_return", *FUNDAMENTAL_COLUMNS[4:]}


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    """No rows, with the dtypes the columns have when there are rows."""
    def dtype(column: str) -> str:
        if column in _FLOAT_COLUMNS:
            return "float64"
        return {"volume": "int64", "published_at": "datetime64[ns, UTC]"}.get(column, "object")

    return pd.DataFrame({c: pd.Series(dtype=dtype(c)) for c in columns})


# ----------------------------------------------------------------------------- public API


class SyntheticMarketProvider(MarketDataProvider):
    """Serves one simulated market (simulated once, then cached) for any symbol subset and
    date range up to `config.as_of`. `oracle` is the planted expected return, kept apart
    from everything a model may see."""

    name = "synthetic"

    def __init__(self, config: SyntheticMarketConfig):
        self.config = config
        self._sim: Simulation | None = None
        self._listing: _Listing | None = None

    def _state(self) -> tuple[Simulation, _Listing]:
        if self._sim is None or self._listing is None:
            self._sim = simulation(self.config)
            self._listing = _listing(self.config, self._sim)
        return self._sim, self._listing

    def universe(self, as_of: date) -> pd.DataFrame:
        """Symbols listed on or before `as_of` (capped at the config's `as_of`); symbols that
        left the market by then are kept with their `delisted_on`, the first session they
        no longer trade, so a symbol master learns of the delisting."""
        sim, listing = self._state()
        return _universe_frame(self.config, sim, listing, min(as_of, self.config.as_of))

    def prices(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        sim, listing = self._state()
        return _price_frame(sim, listing, _symbol_indices(sim, symbols), start, end)

    def fundamentals(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        sim, listing = self._state()
        return _fundamental_frame(sim, listing, _symbol_indices(sim, symbols), start, end)

    def news(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        sim, listing = self._state()
        return _news_frame(sim, listing, _symbol_indices(sim, symbols), start, end)

    def oracle(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Planted expected forward return per (symbol, trade_date, horizon) (ORACLE_COLUMNS)."""
        sim, listing = self._state()
        return _oracle_frame(sim, listing, _symbol_indices(sim, symbols), start, end)

    def all_symbols(self) -> list[str]:
        return sorted(self._state()[0].static.symbols)


def generate_universe(config: SyntheticMarketConfig) -> pd.DataFrame:
    """Every symbol that has traded from `start` to `as_of` (UNIVERSE_COLUMNS)."""
    return SyntheticMarketProvider(config).universe(config.as_of)


def generate_prices(config: SyntheticMarketConfig) -> pd.DataFrame:
    """Daily bars of every symbol from `start` to `as_of` (PRICE_COLUMNS), by symbol and day."""
    provider = SyntheticMarketProvider(config)
    return provider.prices(provider.all_symbols(), config.start, config.as_of)


def generate_fundamentals(config: SyntheticMarketConfig) -> pd.DataFrame:
    """Every quarterly report filed up to `as_of`, including the ones filed shortly before
    `start` (so the latest report is known on the first day) (FUNDAMENTAL_COLUMNS)."""
    provider = SyntheticMarketProvider(config)
    return provider.fundamentals(provider.all_symbols(), date(1900, 1, 1), config.as_of)


def generate_news(config: SyntheticMarketConfig) -> pd.DataFrame:
    """Headlines of every session from `start` to `as_of` (NEWS_COLUMNS)."""
    provider = SyntheticMarketProvider(config)
    return provider.news(provider.all_symbols(), config.start, config.as_of)


def generate_oracle(config: SyntheticMarketConfig) -> pd.DataFrame:
    """The planted expected forward return of every bar (ORACLE_COLUMNS). Never a feature."""
    provider = SyntheticMarketProvider(config)
    return provider.oracle(provider.all_symbols(), config.start, config.as_of)
