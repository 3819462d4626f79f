"""The market-data checks' verdicts on rows stored in the real PostgreSQL: what passes,
what fails, and what a reader is told."""

from __future__ import annotations

import pandas as pd

from vfr_ml_pipelines.lib.market_data import quality, store
from vfr_ml_pipelines_tests.lib.market_data.market_rows import DAYS, bar, rejected, write_prices, write_universe


def test_coverage_names_the_worst_session_and_the_sessions_without_a_universe(market_engine):
    symbols = [f"S{i:02d}" for i in range(20)]
    write_universe(market_engine, {s: DAYS[:2] for s in symbols})
    write_prices(market_engine, [bar(s, DAYS[0]) for s in symbols] + [bar(s, DAYS[1]) for s in symbols[:18]])
    verdict = quality.prices_cover_the_universe(market_engine, DAYS[0], DAYS[2])
    assert not verdict.passed
    assert verdict.metadata["min_coverage"] == 0.9 and verdict.metadata["threshold"] == quality.MIN_COVERAGE
    assert verdict.metadata["sessions_below_threshold"] == 1 and verdict.metadata["sessions_without_universe"] == 1
    assert verdict.description.startswith(f"1 sessions below 95% coverage (worst {DAYS[1]}: 18/20; without a bar: S18 S19). ")
    assert "1 sessions have no universe" in verdict.description and verdict.description.endswith(quality.COVERAGE_ADVICE)

    full = quality.prices_cover_the_universe(market_engine, DAYS[0], DAYS[0])
    assert full.passed and full.description is None


def test_an_unexplained_jump_fails_unless_confirmed(market_engine):
    write_prices(market_engine, [bar("AAA", DAYS[0], close=100.0), bar("AAA", DAYS[1], close=50.0), bar("BBB", DAYS[1])])
    verdict = quality.no_unexplained_jumps(market_engine, DAYS[1], DAYS[1], set())
    assert not verdict.passed and verdict.metadata["unexplained_jumps"] == 1
    assert verdict.description.startswith(f"1 stored bars with an unexplained jump (e.g. AAA {DAYS[1]}: ")
    assert quality.no_unexplained_jumps(market_engine, DAYS[1], DAYS[1], {("AAA", DAYS[1])}).passed


def test_zero_volume_while_the_close_moves_is_named(market_engine):
    write_prices(market_engine, [bar("MOV", d, close=10.0 + i, volume=0) for i, d in enumerate(DAYS[:12])])
    verdict = quality.no_zero_volume_moves(market_engine, DAYS[0], DAYS[11])
    assert not verdict.passed and verdict.metadata["symbols"] == ["MOV"]
    assert f"MOV {DAYS[0]}..{DAYS[11]} (12 sessions)" in verdict.description


def test_news_stored_under_the_wrong_session_is_misplaced(market_engine):
    # 2024-03-01 17:00 New York is after that session's close: it belongs to 2024-03-04
    news = pd.DataFrame({
        "trade_date": [DAYS[0], DAYS[0]], "symbol": ["AAA", "BBB"],
        "published_at": pd.to_datetime(["2024-03-01 14:00", "2024-03-01 17:00"]).tz_localize("America/New_York"),
        "headline": ["in time", "after the close"], "headline_md5": ["0" * 32, "1" * 32],
        "source": [None, None], "url": [None, None], "provider": ["test", "test"],
    })
    store.write_range(market_engine, "vfr_ml.raw_news", "trade_date", news, DAYS[0], DAYS[-1],
                      dataset="news", provider="test", rejected=rejected([]), run_id="r1")
    verdict = quality.news_belongs_to_its_session(market_engine, DAYS[0], DAYS[0])
    assert not verdict.passed and verdict.metadata["headlines"] == 2 and verdict.metadata["misplaced"] == 1
    assert verdict.metadata["sample"]["symbol"].tolist() == ["BBB"]
    assert quality.news_belongs_to_its_session(market_engine, DAYS[1], DAYS[1]).metadata == {"headlines": 0, "misplaced": 0}
