"""One interface for every market-data backend; the Dagster resource picks one by config."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from vfr_ml_pipelines.lib.market_data.rejections import empty_rejected


class ProviderError(RuntimeError):
    """A provider could not deliver data. The message names the provider, the request
    (symbol, dates, endpoint) and what went wrong, and never contains credentials."""

    def __init__(self, message: str, *, symbol: str | None = None, day: date | None = None, field: str | None = None):
        super().__init__(message)
        self.symbol = symbol
        self.day = day
        self.field = field


@dataclass(frozen=True)
class ProviderLoad:
    """What a provider delivered for many symbols when one symbol's source may be unusable
    as a whole: `frame` holds the rows of the usable sources, `rejected` (the columns of
    `rejections.REJECTED_COLUMNS`) one row per symbol whose source was refused entirely
    (an empty file, a wrong header, unsorted dates, undecodable bytes), with the reason."""

    frame: pd.DataFrame
    rejected: pd.DataFrame


class MarketDataProvider(ABC):
    """Returns frames with exactly the columns of `schema.py`. Rows are returned as the
    source has them; validation (and quarantine of bad rows) happens in `validation.py`,
    so every backend gets the same checks."""

    name: str

    @abstractmethod
    def universe(self, as_of: date) -> pd.DataFrame:
        """Every symbol listed on or before `as_of`, delisted ones included with their
        `delisted_on` (UNIVERSE_COLUMNS): daily membership is derived from the listing
        dates, so a backfill over years keeps the symbols that left (no survivorship bias)."""

    @abstractmethod
    def prices(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Daily bars with trade_date in [start, end] (PRICE_COLUMNS)."""

    @abstractmethod
    def fundamentals(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Quarterly reports with filing_date in [start, end] (FUNDAMENTAL_COLUMNS)."""

    @abstractmethod
    def news(self, symbols: Sequence[str], start: date, end: date) -> pd.DataFrame:
        """Headlines whose trading day is in [start, end] (NEWS_COLUMNS)."""

    def confirmed_moves(self) -> set[tuple[str, date]]:
        """(symbol, session) pairs whose big raw move the user has confirmed as genuine: the
        jump screen keeps them whatever it would conclude (`corporate_actions`). None by
        default."""
        return set()

    # --- loads that isolate one symbol's unusable source from the others ---------------------
    # The assets call these. The defaults isolate nothing (one error ends the load): a
    # provider whose sources are per symbol (csv files) overrides them so that one bad file
    # holds out that symbol only, and the coverage check decides whether the rest is enough.

    def load_universe(self, as_of: date) -> ProviderLoad:
        return ProviderLoad(self.universe(as_of), empty_rejected())

    def load_prices(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return ProviderLoad(self.prices(symbols, start, end), empty_rejected())

    def load_fundamentals(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return ProviderLoad(self.fundamentals(symbols, start, end), empty_rejected())

    def load_news(self, symbols: Sequence[str], start: date, end: date) -> ProviderLoad:
        return ProviderLoad(self.news(symbols, start, end), empty_rejected())
