"""Fundamental features on small hand-built frames: values by hand, point in time, splits."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.fundamental import (
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    FUNDAMENTAL_FEATURES,
    compute_fundamental_features,
)
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS

SESSIONS = calendar.trading_days(date(2023, 1, 3), date(2024, 6, 28))

# six consecutive quarters, filed 5-6 weeks after period end
PERIODS = [date(2022, 12, 31), date(2023, 3, 31), date(2023, 6, 30), date(2023, 9, 30), date(2023, 12, 31), date(2024, 3, 31)]
FILINGS = [date(2023, 2, 10), date(2023, 5, 10), date(2023, 8, 10), date(2023, 11, 10), date(2024, 2, 9), date(2024, 5, 10)]


def make_prices(symbol: str = "AAA", close: float = 60.0, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": symbol, "trade_date": SESSIONS, "close": close, "adj_close": close,
                          "split_ratio": 1.0, "dividend": 0.0})
    for name, value in extra.items():
        frame[name] = value
    return frame


def make_reports(symbol: str = "AAA", **overrides) -> pd.DataFrame:
    """Six quarterly reports; every value column can be overridden with a list of six."""
    base = {
        "revenue": [100.0, 110.0, 120.0, 130.0, 140.0, 150.0],
        "gross_profit": [40.0, 44.0, 48.0, 52.0, 56.0, 60.0],
        "operating_income": [20.0, 22.0, 24.0, 26.0, 28.0, 30.0],
        "ebitda": [25.0, 27.0, 29.0, 31.0, 33.0, 35.0],
        "net_income": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0],
        "interest_expense": [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        "eps": [0.50, 0.60, 0.70, 0.80, 0.90, 1.00],
        "total_assets": [1000.0] * 6,
        "total_debt": [300.0] * 6,
        "cash": [50.0] * 6,
        "current_assets": [200.0] * 6,
        "current_liabilities": [80.0] * 6,
        "inventory": [40.0] * 6,
        "book_value": [400.0] * 6,
        "free_cash_flow": [8.0, 9.0, 10.0, 11.0, 12.0, 13.0],
        "shares_outstanding": [20.0] * 6,
        "dividends_paid": [-2.0] * 6,  # vendors report it as a cash outflow
    }
    base.update(overrides)
    frame = pd.DataFrame({"symbol": symbol, "period_end": PERIODS, "filing_date": FILINGS,
                          "fiscal_period": ["Q4", "Q1", "Q2", "Q3", "Q4", "Q1"], **base})
    return frame[list(FUNDAMENTAL_COLUMNS)]


def row_at(features: pd.DataFrame, day: date, symbol: str = "AAA") -> pd.Series:
    hit = features[(features["symbol"] == symbol) & (features["trade_date"] == day)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_feature_set_declares_at_least_25_fundamental_features():
    assert FEATURE_SET_VERSION == "fundamental-v1"
    assert len(FEATURE_NAMES) >= 25 and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.feature_type == "fundamental" for f in FUNDAMENTAL_FEATURES)
    # every ratio needs reports, except the trailing dividend yield: the price frame's
    # dividend events alone (so a price-only export keeps it; issue 18)
    sources = {f.name: f.source for f in FUNDAMENTAL_FEATURES}
    assert sources.pop("trailing_dividend_yield_252") == "prices"
    assert set(sources.values()) == {"fundamentals+prices"}
    features = compute_fundamental_features(make_prices(), make_reports())
    assert list(features.columns) == ["symbol", "trade_date", *FEATURE_NAMES]
    assert len(features) == len(SESSIONS)


def test_pe_and_ttm_by_hand():
    features = compute_fundamental_features(make_prices(close=60.0), make_reports())
    # 2024-03-01: visible reports are the first five (the 5th filed 2024-02-09);
    # the last 4 filed quarters are Q1..Q4 2023
    row = row_at(features, date(2024, 3, 1))
    eps_ttm = 0.60 + 0.70 + 0.80 + 0.90
    revenue_ttm = 110.0 + 120.0 + 130.0 + 140.0
    net_income_ttm = 11.0 + 12.0 + 13.0 + 14.0
    market_cap = 60.0 * 20.0
    assert row["pe_ttm"] == pytest.approx(60.0 / eps_ttm)
    assert row["earnings_yield_ttm"] == pytest.approx(eps_ttm / 60.0)
    assert row["ps_ttm"] == pytest.approx(market_cap / revenue_ttm)
    assert row["pb"] == pytest.approx(market_cap / 400.0)
    assert row["pfcf_ttm"] == pytest.approx(market_cap / (9.0 + 10.0 + 11.0 + 12.0))
    ev = market_cap + 300.0 - 50.0
    assert row["ev_ebitda_ttm"] == pytest.approx(ev / (27.0 + 29.0 + 31.0 + 33.0))
    assert row["roe_ttm"] == pytest.approx(net_income_ttm / 400.0)
    assert row["roa_ttm"] == pytest.approx(net_income_ttm / 1000.0)
    assert row["gross_margin_ttm"] == pytest.approx((44.0 + 48.0 + 52.0 + 56.0) / revenue_ttm)
    assert row["net_margin_ttm"] == pytest.approx(net_income_ttm / revenue_ttm)
    assert row["interest_coverage_ttm"] == pytest.approx((22.0 + 24.0 + 26.0 + 28.0) / 8.0)
    assert row["debt_to_equity"] == pytest.approx(300.0 / 400.0)
    assert row["current_ratio"] == pytest.approx(200.0 / 80.0)
    assert row["cash_to_assets"] == pytest.approx(0.05)
    assert row["dividend_yield_ttm"] == pytest.approx(8.0 / market_cap)  # |dividends_paid| TTM per share / price
    assert row["payout_ratio_ttm"] == pytest.approx(8.0 / net_income_ttm)
    assert row["accruals_ttm"] == pytest.approx((net_income_ttm - 42.0) / 1000.0)
    # growth: Q4 2023 against Q4 2022 (filed 4 reports earlier) and against Q3 2023
    assert row["revenue_yoy"] == pytest.approx(140.0 / 100.0 - 1)
    assert row["eps_yoy"] == pytest.approx(0.90 / 0.50 - 1)
    assert row["revenue_qoq"] == pytest.approx(140.0 / 130.0 - 1)
    assert row["days_since_filing"] == (date(2024, 3, 1) - date(2024, 2, 9)).days
    # before the 4th filing there is no TTM: the TTM features are NaN, balance-sheet ones are not
    early = row_at(features, date(2023, 11, 9))
    assert np.isnan(early["pe_ttm"]) and np.isnan(early["ps_ttm"]) and np.isnan(early["roe_ttm"])
    assert early["current_ratio"] == pytest.approx(2.5)
    assert row_at(features, date(2023, 11, 10))["pe_ttm"] == pytest.approx(60.0 / (0.5 + 0.6 + 0.7 + 0.8))
    # before the first filing: nothing is known
    assert row_at(features, date(2023, 2, 9))[list(FEATURE_NAMES)].isna().all()


def test_a_report_filed_on_d_plus_1_is_invisible_at_d_and_visible_from_d_plus_1():
    features = compute_fundamental_features(make_prices(), make_reports())
    before, on = row_at(features, date(2024, 5, 9)), row_at(features, date(2024, 5, 10))  # the 6th is filed 2024-05-10
    assert before["pe_ttm"] == pytest.approx(60.0 / (0.6 + 0.7 + 0.8 + 0.9))
    assert before["days_since_filing"] == (date(2024, 5, 9) - date(2024, 2, 9)).days
    assert on["pe_ttm"] == pytest.approx(60.0 / (0.7 + 0.8 + 0.9 + 1.0))
    assert on["days_since_filing"] == 0
    assert on["revenue_yoy"] == pytest.approx(150.0 / 110.0 - 1)


def test_truncating_reports_at_d_changes_nothing_at_or_before_d():
    """Independent reference for point in time: features up to D computed from all reports
    equal those computed from only the reports filed by D."""
    reports = pd.concat([make_reports("AAA"), make_reports("BBB", eps=[0.3, -0.2, 0.4, 0.5, 0.1, 0.7])])
    prices = pd.concat([make_prices("AAA"), make_prices("BBB", close=25.0)])
    full = compute_fundamental_features(prices, reports)
    for cutoff in (date(2023, 8, 9), date(2023, 11, 10), date(2024, 5, 9)):
        known = reports[pd.to_datetime(reports["filing_date"]) <= pd.Timestamp(cutoff)]
        part = compute_fundamental_features(prices, known)
        mask = full["trade_date"] <= cutoff
        pd.testing.assert_frame_equal(full[mask].reset_index(drop=True), part[mask].reset_index(drop=True))


def test_peg_by_hand_and_nan_for_negative_growth():
    features = compute_fundamental_features(make_prices(), make_reports())
    row = row_at(features, date(2024, 3, 1))
    growth_pct = (0.90 / 0.50 - 1) * 100
    assert row["peg_ttm"] == pytest.approx(row["pe_ttm"] / growth_pct)
    # the latest quarter earns less than a year before: negative growth, PEG undefined
    shrinking = make_reports(eps=[0.50, 0.60, 0.70, 0.80, 0.40, 1.00])
    row = row_at(compute_fundamental_features(make_prices(), shrinking), date(2024, 3, 1))
    assert row["eps_yoy"] == pytest.approx(-0.2)
    assert row["pe_ttm"] > 0 and np.isnan(row["peg_ttm"])
    # a loss a year before: growth from a negative base is meaningless
    from_loss = make_reports(eps=[-0.50, 0.60, 0.70, 0.80, 0.90, 1.00])
    row = row_at(compute_fundamental_features(make_prices(), from_loss), date(2024, 3, 1))
    assert np.isnan(row["eps_yoy"]) and np.isnan(row["peg_ttm"])


def test_quick_ratio_by_hand_and_undefined_denominators():
    reports = make_reports(current_assets=[200.0, 200.0, 200.0, 200.0, 150.0, 150.0],
                           current_liabilities=[80.0, 80.0, 80.0, 80.0, 60.0, 0.0],
                           inventory=[40.0, 40.0, 40.0, 40.0, 30.0, 30.0])
    features = compute_fundamental_features(make_prices(), reports)
    assert row_at(features, date(2024, 3, 1))["quick_ratio"] == pytest.approx((150.0 - 30.0) / 60.0)
    last = row_at(features, date(2024, 5, 10))  # current liabilities 0: no ratio
    assert np.isnan(last["quick_ratio"]) and np.isnan(last["current_ratio"])


def test_losses_keep_earnings_yield_but_not_pe():
    losing = make_reports(eps=[-0.5, -0.6, -0.7, -0.8, -0.9, -1.0], net_income=[-10.0] * 6)
    row = row_at(compute_fundamental_features(make_prices(), losing), date(2024, 3, 1))
    assert np.isnan(row["pe_ttm"]) and np.isnan(row["peg_ttm"])
    assert row["earnings_yield_ttm"] == pytest.approx(-(0.6 + 0.7 + 0.8 + 0.9) / 60.0)
    assert row["roe_ttm"] == pytest.approx(-40.0 / 400.0)
    assert np.isnan(row["payout_ratio_ttm"])


def test_split_between_filing_and_d_is_adjusted_with_split_ratio():
    split_day = date(2024, 3, 4)  # 2-for-1 after the 2024-02-09 filing
    prices = make_prices()
    after = prices["trade_date"] >= split_day
    prices.loc[after, "close"] = 30.0  # the raw price halves, the company is worth the same
    prices.loc[prices["trade_date"] == split_day, "split_ratio"] = 2.0
    features = compute_fundamental_features(prices, make_reports())
    before, on = row_at(features, date(2024, 3, 1)), row_at(features, split_day)
    for name in ("pe_ttm", "pb", "ps_ttm", "ev_ebitda_ttm", "earnings_yield_ttm", "dividend_yield_ttm", "log_market_cap"):
        assert on[name] == pytest.approx(before[name]), name
    assert on["pe_ttm"] == pytest.approx(30.0 / ((0.6 + 0.7 + 0.8 + 0.9) / 2))
    # the next report (filed 2024-05-10, after the split) states post-split shares and EPS
    post = make_reports(eps=[0.50, 0.60, 0.70, 0.80, 0.90, 0.50], shares_outstanding=[20.0] * 5 + [40.0])
    row = row_at(compute_fundamental_features(prices, post), date(2024, 5, 10))
    # TTM mixes three pre-split quarters (halved) with one post-split quarter
    assert row["pe_ttm"] == pytest.approx(30.0 / ((0.7 + 0.8 + 0.9) / 2 + 0.5))
    assert row["pb"] == pytest.approx(30.0 * 40.0 / 400.0)
    assert row["eps_yoy"] == pytest.approx(0.5 / (0.6 / 2) - 1)
    # documented caveat: without split_ratio the filed shares are not adjusted and the
    # market cap halves on the split day until the next filing
    raw = compute_fundamental_features(prices.drop(columns=["split_ratio"]), make_reports())
    assert row_at(raw, split_day)["pb"] == pytest.approx(before["pb"] / 2)


def test_split_on_the_filing_day_counts_as_already_in_the_report():
    prices = make_prices()
    prices.loc[prices["trade_date"] >= date(2024, 2, 9), "close"] = 30.0
    prices.loc[prices["trade_date"] == date(2024, 2, 9), "split_ratio"] = 2.0
    reports = make_reports(eps=[0.25, 0.30, 0.35, 0.40, 0.45, 0.50], shares_outstanding=[40.0] * 6)  # restated, post-split
    row = row_at(compute_fundamental_features(prices, reports), date(2024, 3, 1))
    # the three older quarters were filed before the split: their EPS is halved, the 5th is not
    assert row["pe_ttm"] == pytest.approx(30.0 / ((0.30 + 0.35 + 0.40) / 2 + 0.45))
    assert row["pb"] == pytest.approx(30.0 * 40.0 / 400.0)


def test_trailing_dividend_yield_from_ex_dates_is_split_adjusted():
    prices = make_prices()
    for day in (date(2023, 8, 1), date(2023, 11, 1), date(2024, 2, 1), date(2024, 5, 1)):
        prices.loc[prices["trade_date"] == day, "dividend"] = 0.25
    prices.loc[prices["trade_date"] >= date(2024, 3, 4), "close"] = 30.0
    prices.loc[prices["trade_date"] == date(2024, 3, 4), "split_ratio"] = 2.0
    features = compute_fundamental_features(prices, make_reports())
    last = row_at(features, SESSIONS[-1])
    assert last["trailing_dividend_yield_252"] == pytest.approx((0.25 / 2 * 3 + 0.25) / 30.0)
    assert np.isnan(row_at(features, SESSIONS[250])["trailing_dividend_yield_252"])  # window not full yet


def test_gap_in_quarters_gives_nan_ttm_but_growth_finds_its_base_quarter():
    reports = make_reports().drop(index=2).reset_index(drop=True)  # Q2 2023 never filed
    features = compute_fundamental_features(make_prices(), reports)
    row = row_at(features, date(2024, 3, 1))
    # the last 4 filed quarters (Q4 22, Q1 23, Q3 23, Q4 23) span 15 months: no TTM
    assert np.isnan(row["pe_ttm"]) and np.isnan(row["ps_ttm"]) and np.isnan(row["earnings_yield_ttm"])
    assert row["revenue_yoy"] == pytest.approx(140.0 / 100.0 - 1)  # Q4 23 vs Q4 22, by period_end
    assert row["revenue_qoq"] == pytest.approx(140.0 / 130.0 - 1)
    q3 = row_at(features, date(2023, 11, 10))  # Q3 23 has no previous quarter filed
    assert np.isnan(q3["revenue_qoq"])
    assert np.isnan(row_at(features, date(2024, 5, 10))["pe_ttm"])  # still a gap in the last 4


def test_no_infinities_on_zero_and_negative_denominators():
    zeros = make_reports(revenue=[0.0] * 6, book_value=[0.0] * 6, current_liabilities=[0.0] * 6,
                         interest_expense=[0.0] * 6, eps=[0.0] * 6, total_assets=[0.0] * 6, ebitda=[0.0] * 6,
                         free_cash_flow=[0.0] * 6, net_income=[0.0] * 6, shares_outstanding=[0.0] * 6)
    negative = make_reports("BBB", book_value=[-50.0] * 6, current_liabilities=[-1.0] * 6, revenue=[-5.0] * 6)
    prices = pd.concat([make_prices("AAA"), make_prices("BBB", close=0.0)])
    features = compute_fundamental_features(prices, pd.concat([zeros, negative]))
    values = features[list(FEATURE_NAMES)].to_numpy()
    assert not np.isinf(values).any()
    row = row_at(features, date(2024, 3, 1), "BBB")
    assert np.isnan(row["pb"]) and np.isnan(row["roe_ttm"]) and np.isnan(row["debt_to_equity"]) and np.isnan(row["ps_ttm"])


def test_row_order_does_not_matter_and_duplicates_are_rejected():
    prices = pd.concat([make_prices("AAA"), make_prices("BBB", close=25.0)])
    reports = pd.concat([make_reports("AAA"), make_reports("BBB")])
    a = compute_fundamental_features(prices, reports)
    b = compute_fundamental_features(prices.sample(frac=1.0, random_state=3), reports.sample(frac=1.0, random_state=4))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="AAA"):
        compute_fundamental_features(prices, pd.concat([reports, make_reports("AAA").iloc[[2]]]))
