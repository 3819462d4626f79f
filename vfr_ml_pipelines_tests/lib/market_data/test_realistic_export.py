"""The realistic price-only export: deterministic for a seed, and its planted cases are
what the provider, validation and the jump screen see (no database needed)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.corporate_actions import screen_jumps
from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider
from vfr_ml_pipelines.lib.market_data.realistic_export import write_price_only_export
from vfr_ml_pipelines.lib.market_data.validation import validate_prices, validate_universe

START, END = date(2024, 6, 3), date(2025, 11, 28)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return write_price_only_export(root, seed=5, start=START, end=END, n_symbols=20)


def test_same_seed_same_files(export, tmp_path):
    again = write_price_only_export(tmp_path, seed=5, start=START, end=END, n_symbols=20)
    for symbol in export.symbols:
        assert (export.root / "prices" / f"{symbol}.csv").read_bytes() == (tmp_path / "prices" / f"{symbol}.csv").read_bytes()
    assert again.splits == export.splits and again.dividends == export.dividends


def test_too_short_a_window_is_refused(tmp_path):
    with pytest.raises(ValueError, match="sessions"):
        write_price_only_export(tmp_path, start=date(2026, 9, 1), end=date(2026, 11, 20))


def test_planted_cases_are_what_the_pipeline_sees(export):
    provider = CsvMarketDataProvider(export.root)
    universe = validate_universe(provider.universe(END), today=END).clean.set_index("symbol")
    for symbol, last in export.delisted.items():
        assert universe.loc[symbol, "delisted_on"] == calendar.next_trading_day(last)
    for symbol, first in export.listed_late.items():
        assert universe.loc[symbol, "listed_on"] == first
    for symbol, (_, new_first) in export.reused.items():
        assert universe.loc[symbol, "listed_on"] == new_first

    result = validate_prices(provider.prices(export.symbols, START, END), start=START, end=END, today=END,
                             known_symbols=set(export.symbols))
    rejected = set(zip(result.rejected["symbol"], result.rejected["day"]))
    assert set(export.zero_duplicates) <= rejected
    assert (export.bad_as_of_bar, END) in rejected
    assert len(result.rejected) == len(export.zero_duplicates) + 1
    listed = result.clean[[d >= universe.loc[s, "listed_on"] for s, d in zip(result.clean["symbol"], result.clean["trade_date"])]]
    kept, held = screen_jumps(listed)
    assert held.empty  # genuine moves kept, splits explained by Adj Close
    bars = kept.set_index(["symbol", "trade_date"])
    for symbol, day, move in export.genuine_moves:
        before = kept[(kept["symbol"] == symbol) & (kept["trade_date"] < day)]["close"].iloc[-1]
        assert bars.loc[(symbol, day), "close"] / before - 1 == pytest.approx(move, abs=0.02)
    assert {(s, d): r for s, d, r in export.splits} == {
        k: v for k, v in bars["split_ratio"].items() if v != 1.0
    }
    assert {(s, d) for s, paid in export.dividends.items() for d, _ in paid} == set(bars[bars["dividend"] > 0].index)
    # real-market-like: daily volatility of the adjusted closes between 1 % and 3 %
    vol = kept.assign(r=kept.groupby("symbol")["adj_close"].pct_change()).groupby("symbol")["r"].std()
    assert 0.01 <= float(np.median(vol)) <= 0.03
