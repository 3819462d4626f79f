"""validation.py: every rule rejects the right rows with a reason naming symbol, day and
field; clean frames have exactly the schema columns and dtypes; nothing vanishes."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS, NEWS_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS, SchemaError
from vfr_ml_pipelines.lib.market_data.validation import (
    validate_fundamentals,
    validate_news,
    validate_prices,
    validate_universe,
)

START, END, TODAY = date(2024, 1, 2), date(2024, 1, 31), date(2024, 2, 15)
KNOWN = {"AAA", "BBB", "BRK.B"}


def bar(symbol="AAA", day="2024-01-02", **values) -> dict:
    row = {"symbol": symbol, "trade_date": day, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
           "adj_close": 10.4, "volume": 1000, "dividend": 0.0, "split_ratio": 1.0}
    row.update(values)
    return row


def prices(*rows: dict, **kw):
    options = {"start": START, "end": END, "today": TODAY, "known_symbols": KNOWN, "source": "test", **kw}
    return validate_prices(pd.DataFrame(list(rows)), **options)


def only_rejection(result) -> dict:
    assert len(result.rejected) == 1, result.rejected[["symbol", "field", "reason"]]
    return result.rejected.iloc[0].to_dict()


def test_good_prices_are_clean_with_schema_dtypes():
    result = prices(bar(day="2024-01-03"), bar(), bar("BRK.B", volume="2500"))
    assert result.rejected.empty
    clean = result.clean
    assert tuple(clean.columns) == PRICE_COLUMNS
    assert clean["volume"].dtype == np.int64
    for column in ("open", "high", "low", "close", "adj_close", "dividend", "split_ratio"):
        assert clean[column].dtype == np.float64
    assert all(type(d) is date for d in clean["trade_date"])
    # sorted by symbol, then day
    assert list(zip(clean["symbol"], clean["trade_date"])) == [
        ("AAA", date(2024, 1, 2)), ("AAA", date(2024, 1, 3)), ("BRK.B", date(2024, 1, 2))]


def test_rejected_frame_has_the_quarantine_columns_and_json_safe_raw():
    result = prices(bar(open="abc", high=float("inf"), low=float("nan")))
    rejected = result.rejected
    assert tuple(rejected.columns) == REJECTED_COLUMNS
    row = rejected.iloc[0]
    assert row["dataset"] == "prices" and row["symbol"] == "AAA" and row["day"] == date(2024, 1, 2)
    assert row["field"].split(",") == ["open", "high", "low"]
    assert "open 'abc' is not a number" in row["reason"]
    assert "high is infinite" in row["reason"] and "low is missing (NaN)" in row["reason"]
    raw = json.loads(json.dumps(row["raw"], allow_nan=False))  # strict JSON: no NaN/inf literals
    assert raw["open"] == "abc" and raw["high"] == "inf" and raw["low"] == "nan"


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"close": "ten"}, "close", "close 'ten' is not a number"),
        ({"volume": "lots"}, "volume", "volume 'lots' is not a number"),
        ({"open": True}, "open", "open True is not a number"),
        ({"open": None}, "open", "open is missing"),
        ({"adj_close": ""}, "adj_close", "adj_close is missing (blank)"),
        ({"close": float("nan")}, "close", "close is missing (NaN)"),
        ({"high": float("-inf")}, "high", "high is infinite (-inf)"),
        ({"open": 0.0, "low": 0.0}, "open,low", "open 0.0 is not positive"),
        ({"close": -1.0, "low": -2.0}, "low,close", "close -1.0 is not positive"),
        ({"adj_close": -3.0}, "adj_close", "adj_close -3.0 is not positive"),
        ({"high": 9.5, "low": 10.0, "open": 9.8, "close": 9.8}, "high", "high 9.5 < low 10.0"),
        ({"open": 11.5}, "open", "open 11.5 is outside [low 9.0, high 11.0]"),
        ({"close": 8.0}, "close", "close 8.0 is outside [low 9.0, high 11.0]"),
        ({"volume": -5}, "volume", "volume -5.0 is negative"),
        ({"volume": 12.5}, "volume", "volume 12.5 is not a whole number"),
        ({"split_ratio": 0.0}, "split_ratio", "split_ratio 0.0 is not positive"),
        ({"split_ratio": -2.0}, "split_ratio", "split_ratio -2.0 is not positive"),
        ({"dividend": -0.1}, "dividend", "dividend -0.1 is negative"),
        ({"day": "2023-12-29"}, "trade_date", "trade_date 2023-12-29 is outside the requested range 2024-01-02..2024-01-31"),
        ({"day": "2024-03-01"}, "trade_date", "trade_date 2024-03-01 is in the future (today is 2024-02-15)"),
        ({"day": "01/02/2024"}, "trade_date", "trade_date '01/02/2024' is not a date"),
        ({"day": None}, "trade_date", "trade_date is missing"),
    ],
)
def test_each_price_rule_rejects_with_symbol_day_field_and_reason(values, field, reason):
    values = dict(values)
    day = values.pop("day", "2024-01-02")
    rejected = only_rejection(prices(bar(day=day, **values), bar("BBB")))
    assert rejected["symbol"] == "AAA"
    assert rejected["field"] == field
    assert reason in rejected["reason"]
    parsed_day = {"2023-12-29": date(2023, 12, 29), "2024-03-01": date(2024, 3, 1), "2024-01-02": date(2024, 1, 2)}.get(day)
    assert rejected["day"] == parsed_day


def test_the_good_row_next_to_a_bad_one_survives():
    result = prices(bar(high=9.5, low=10.0), bar("BBB"))
    assert result.clean["symbol"].tolist() == ["BBB"]


def test_boundaries_are_accepted():
    # open/close on the high/low, zero volume, first and last day of the range, today
    result = prices(bar(open=11.0, close=9.0, volume=0), bar(day="2024-01-31"), today=date(2024, 1, 31))
    assert result.rejected.empty and len(result.clean) == 2


@pytest.mark.parametrize(
    "symbol",
    ["../etc/passwd", "A;DROP", "AAPL'; DROP TABLE raw_prices;--", "aapl", "A" * 11, "AB CD", "", "BRK.BBBB", 42],
)
def test_invalid_tickers_are_rejected(symbol):
    rejected = only_rejection(prices(bar(symbol=symbol), bar("BBB"), known_symbols=None))
    assert rejected["field"] == "symbol"
    assert "not a valid ticker" in rejected["reason"] or "symbol is missing" in rejected["reason"]


def test_overlong_symbol_is_shortened_in_the_reason_but_kept_in_raw():
    symbol = "X" * 500
    rejected = only_rejection(prices(bar(symbol=symbol), known_symbols=None))
    assert len(rejected["reason"]) < 200
    assert rejected["raw"]["symbol"] == symbol


def test_a_zero_copy_of_a_day_is_rejected_and_the_real_bar_kept():
    zeros = bar(open=0.0, high=0.0, low=0.0, close=0.0, adj_close=0.0, volume=0)
    result = prices(bar(), zeros)
    assert result.clean["close"].tolist() == [10.5]
    rejected = only_rejection(result)
    assert "close 0.0 is not positive" in rejected["reason"] and "different rows" not in rejected["reason"]


def test_unknown_symbol_is_rejected():
    rejected = only_rejection(prices(bar("ZZZ"), bar()))
    assert (rejected["symbol"], rejected["field"]) == ("ZZZ", "symbol")
    assert rejected["reason"] == "symbol ZZZ is not in the universe"


def test_identical_duplicates_keep_one_and_differing_duplicates_reject_all():
    result = prices(bar(), bar(), bar("BBB"), bar("BBB", close=10.6))
    assert result.duplicates_dropped == 1
    assert result.clean["symbol"].tolist() == ["AAA"]
    assert result.rejected["symbol"].tolist() == ["BBB", "BBB"]
    assert set(result.rejected["field"]) == {"trade_date"}
    assert "2 different rows for BBB on 2024-01-02" in result.rejected["reason"].iloc[0]


def test_multiple_problems_in_one_row_are_all_reported():
    rejected = only_rejection(prices(bar(volume=-1, dividend=-1.0, split_ratio=0.0)))
    assert rejected["field"] == "volume,split_ratio,dividend"
    assert rejected["reason"].count(";") == 2


def test_missing_columns_raise_schema_error_naming_source_symbol_and_columns():
    frame = pd.DataFrame([bar()]).drop(columns=["high", "volume"])
    with pytest.raises(SchemaError) as info:
        validate_prices(frame, start=START, end=END, today=TODAY, source="prices/AAA.csv")
    message = str(info.value)
    assert "prices/AAA.csv" in message and "AAA" in message and "high, volume" in message
    assert info.value.missing == ("high", "volume")


def test_not_a_frame_raises_schema_error():
    with pytest.raises(SchemaError, match="must be a DataFrame"):
        validate_prices(None, start=START, end=END, today=TODAY, source="fmp")


def test_empty_frames_give_empty_typed_results():
    result = validate_prices(pd.DataFrame(columns=list(PRICE_COLUMNS)), start=START, end=END, today=TODAY)
    assert result.clean.empty and result.rejected.empty
    assert tuple(result.clean.columns) == PRICE_COLUMNS and result.clean["volume"].dtype == np.int64
    assert tuple(result.rejected.columns) == REJECTED_COLUMNS


# --- fundamentals ----------------------------------------------------------------------------


def report(symbol="AAA", period_end="2023-12-31", filing_date="2024-01-20", **values) -> dict:
    row = {c: 1.0e9 for c in FUNDAMENTAL_COLUMNS}
    row.update(symbol=symbol, period_end=period_end, filing_date=filing_date, fiscal_period="2023Q4",
               shares_outstanding=5.0e8, inventory=np.nan)
    row.update(values)
    return row


def fundamentals(*rows, **kw):
    options = {"start": START, "end": END, "today": TODAY, "known_symbols": KNOWN, **kw}
    return validate_fundamentals(pd.DataFrame(list(rows)), **options)


def test_good_fundamentals_allow_missing_items():
    result = fundamentals(report(), report("BBB", revenue="2.5e9"))
    assert result.rejected.empty
    assert tuple(result.clean.columns) == FUNDAMENTAL_COLUMNS
    assert result.clean["revenue"].dtype == np.float64 and result.clean["inventory"].isna().all()
    assert all(type(d) is date for d in result.clean["filing_date"])


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"filing_date": "2024-01-10", "period_end": "2024-03-31"}, "filing_date",
         "filed before its period ended (filing_date 2024-01-10 < period_end 2024-03-31)"),
        ({"revenue": "n/a"}, "revenue", "revenue 'n/a' is not a number"),
        ({"eps": float("inf")}, "eps", "eps is infinite"),
        ({"shares_outstanding": 0.0}, "shares_outstanding", "shares_outstanding 0.0 is not positive"),
        ({"shares_outstanding": -1.0}, "shares_outstanding", "shares_outstanding -1.0 is not positive"),
        ({"filing_date": "2024-02-20", "period_end": "2024-01-31"}, "filing_date",
         "filing_date 2024-02-20 is in the future (today is 2024-02-15)"),
        ({"filing_date": "2023-12-31"}, "filing_date", "outside the requested range"),
        ({"filing_date": None}, "filing_date", "filing_date is missing"),
        ({"symbol": "ZZZ"}, "symbol", "symbol ZZZ is not in the universe"),
    ],
)
def test_each_fundamentals_rule(values, field, reason):
    rejected = only_rejection(fundamentals(report(**values), report("BBB")))
    assert rejected["dataset"] == "fundamentals"
    assert rejected["symbol"] == values.get("symbol", "AAA")
    assert rejected["field"] == field
    assert reason in rejected["reason"]


def test_amendments_are_kept_and_conflicting_reports_rejected():
    amended = report(filing_date="2024-01-25", revenue=1.1e9)
    result = fundamentals(report(), amended, report("BBB"), report("BBB", revenue=2.0))
    assert len(result.clean) == 2 and result.clean["symbol"].tolist() == ["AAA", "AAA"]
    assert result.rejected["symbol"].tolist() == ["BBB", "BBB"]
    assert "BBB period 2023-12-31 filed 2024-01-20" in result.rejected["reason"].iloc[0]


# --- news ------------------------------------------------------------------------------------


def headline(symbol="AAA", published_at="2024-01-03T14:30:00Z", **values) -> dict:
    row = {"symbol": symbol, "published_at": published_at, "headline": "AAA beats estimates",
           "source": "wire", "url": "https://example.com/a"}
    row.update(values)
    return row


def news(*rows, **kw):
    options = {"start": START, "end": END, "today": TODAY, "known_symbols": KNOWN, **kw}
    return validate_news(pd.DataFrame(list(rows)), **options)


def test_good_news_is_tz_aware_utc():
    result = news(headline(), headline("BBB", published_at="2024-01-03T09:00:00-05:00", source=None))
    assert result.rejected.empty
    assert tuple(result.clean.columns) == NEWS_COLUMNS
    assert str(result.clean["published_at"].dtype) == "datetime64[ns, UTC]"
    assert result.clean.loc[result.clean["symbol"] == "BBB", "published_at"].iloc[0] == pd.Timestamp("2024-01-03 14:00Z")
    assert result.clean["source"].tolist() == ["wire", ""]


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"published_at": "yesterday-ish"}, "published_at", "published_at 'yesterday-ish' is not a timestamp"),
        ({"published_at": "2024-01-03 10:00:00"}, "published_at", "has no time zone"),
        ({"published_at": None}, "published_at", "published_at is missing"),
        ({"headline": "   "}, "headline", "headline is empty"),
        ({"headline": None}, "headline", "headline is empty"),
        ({"symbol": "../x"}, "symbol", "not a valid ticker"),
        ({"published_at": "2024-03-01T12:00:00Z"}, "published_at", "is in the future"),
        # Friday after the close -> Monday's session, past the end of the range
        ({"published_at": "2024-01-31T21:30:00Z"}, "published_at", "belongs to session 2024-02-01, outside"),
    ],
)
def test_each_news_rule(values, field, reason):
    rejected = only_rejection(news(headline(**values), headline("BBB")))
    assert rejected["dataset"] == "news"
    assert rejected["field"] == field
    assert reason in rejected["reason"]


def test_weekend_news_belongs_to_monday():
    # Saturday 2023-12-30 -> next session is Tuesday 2024-01-02 (New Year's Day closed)
    result = news(headline(published_at="2023-12-30T15:00:00Z"))
    assert result.rejected.empty


# --- universe --------------------------------------------------------------------------------


def listing(symbol="AAA", **values) -> dict:
    row = {"symbol": symbol, "name": "Triple A", "sector": "Technology", "listed_on": "2020-01-02", "delisted_on": None}
    row.update(values)
    return row


def test_universe_rules():
    frame = pd.DataFrame([
        listing(),
        listing("BBB", sector=None),
        listing("CCC", listed_on=None),
        listing("DDD", delisted_on="2019-01-01"),
        listing("../x"),
        listing("EEE", listed_on="2030-01-01"),
        listing("FFF"), listing("FFF", name="Other"),
    ])
    result = validate_universe(frame, today=TODAY, source="universe.csv")
    assert tuple(result.clean.columns) == UNIVERSE_COLUMNS
    assert result.clean["symbol"].tolist() == ["AAA", "BBB"]
    assert result.clean["sector"].tolist() == ["Technology", "Unknown"]
    rejected = result.rejected
    keys = rejected["symbol"] + "/" + rejected.groupby("symbol").cumcount().astype(str)
    reasons = dict(zip(keys, rejected["reason"]))
    assert reasons["CCC/0"] == "listed_on is missing"
    assert "delisted before it was listed" in reasons["DDD/0"]
    assert "not a valid ticker" in reasons["../x/0"]
    assert "in the future" in reasons["EEE/0"]
    assert "2 different rows for symbol FFF" in reasons["FFF/1"]


def test_universe_without_today_as_the_pipeline_calls_it():
    result = validate_universe(pd.DataFrame([listing()]), source="synthetic")
    assert result.clean["listed_on"].tolist() == [date(2020, 1, 2)]
