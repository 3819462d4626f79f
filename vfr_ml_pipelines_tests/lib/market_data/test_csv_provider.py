"""The CSV provider on real files in tmp_path: a good folder round-trips through validation
unchanged; each kind of bad input gives a clear error or a quarantined row, never a silent
drop, and no path is ever built from something that is not a ticker."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.csv_provider import CsvMarketDataProvider
from vfr_ml_pipelines.lib.market_data.provider import ProviderError
from vfr_ml_pipelines.lib.market_data.rejections import SchemaError
from vfr_ml_pipelines.lib.market_data.schema import FUNDAMENTAL_COLUMNS, NEWS_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS
from vfr_ml_pipelines.lib.market_data.validation import (
    validate_fundamentals,
    validate_news,
    validate_prices,
    validate_universe,
)
from vfr_ml_pipelines_tests.csv_helpers import END, HEADER, ROWS, START, TODAY, price_file, write

GOOD = ["2023-12-29,9.80,10.10,9.70,10.00,9.90,900", *ROWS]


def validated(provider: CsvMarketDataProvider, symbols: list[str], known=None):
    frame = provider.prices(symbols, START, END)
    return validate_prices(frame, start=START, end=END, today=TODAY, known_symbols=known or set(symbols), source="csv")


def test_good_folder_round_trip(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    price_file(tmp_path, "BRK.B", ["2024-01-02,400,410,395,405,405,5000,0.25,1", "2024-01-03,405,406,200,202.5,202.5,9000,,2"],
               header=HEADER + ",Dividend,Split Ratio")
    write(tmp_path, "universe.csv",
          "symbol,name,sector,listed_on,delisted_on\nAAA,Triple A,Technology,2020-01-02,\n"
          "BRK.B,Berkshire B,Financials,1996-05-09,\nOLD,Gone Inc,Energy,2001-01-02,2023-06-30\n")
    provider = CsvMarketDataProvider(tmp_path)

    universe = validate_universe(provider.universe(TODAY), today=TODAY, source="csv")
    assert universe.rejected.empty
    # OLD left before as_of but stays, with its delisting date, for backfills of its sessions
    assert universe.clean["symbol"].tolist() == ["AAA", "BRK.B", "OLD"]
    assert universe.clean.set_index("symbol").loc["OLD", "delisted_on"] == date(2023, 6, 30)
    assert tuple(universe.clean.columns) == UNIVERSE_COLUMNS

    frame = provider.prices(["AAA", "BRK.B"], START, END)
    assert tuple(frame.columns) == PRICE_COLUMNS
    assert frame["trade_date"].min() == START  # 2023-12-29 is outside the requested range
    result = validated(provider, ["AAA", "BRK.B"])
    assert result.rejected.empty
    clean = result.clean
    assert len(clean) == 5 and clean["volume"].dtype == np.int64
    aaa = clean[clean["symbol"] == "AAA"].iloc[0]
    assert (aaa["trade_date"], aaa["open"], aaa["adj_close"], aaa["volume"]) == (date(2024, 1, 2), 10.0, 10.4, 1000)
    # no event columns: the events are what Adj Close implies. Dec 29 -> Jan 2 the vendor's
    # total return is 10.40 / 9.90 while the close went 10.00 -> 10.50, so the dividend that
    # makes (10.50 + D) / 10.00 equal it is D = 10.40 / 9.90 * 10.00 - 10.50
    assert aaa["dividend"] == pytest.approx(10.40 / 9.90 * 10.00 - 10.50) and aaa["split_ratio"] == 1.0
    brk = clean[clean["symbol"] == "BRK.B"]
    assert brk["dividend"].tolist() == [0.25, 0.0]  # blank event cell -> no event
    assert brk["split_ratio"].tolist() == [1.0, 2.0]


def test_universe_defaults_to_the_price_files(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    price_file(tmp_path, "BBB", GOOD[2:])
    price_file(tmp_path, "LATE", ["2024-03-01,1,1,1,1,1,1"])
    universe = CsvMarketDataProvider(tmp_path).universe(TODAY)
    assert universe["symbol"].tolist() == ["AAA", "BBB"]
    assert universe["sector"].tolist() == ["Unknown", "Unknown"]
    assert universe["listed_on"].tolist() == [date(2023, 12, 29), date(2024, 1, 3)]


def test_price_file_named_like_no_ticker_is_quarantined_not_opened(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    write(tmp_path, "prices/aapl lower.csv", "this file must never be read")
    provider = CsvMarketDataProvider(tmp_path)
    result = validate_universe(provider.universe(TODAY), today=TODAY, source="csv")
    assert result.clean["symbol"].tolist() == ["AAA"]
    rejected = result.rejected.iloc[0]
    assert rejected["symbol"] == "aapl lower" and rejected["field"].startswith("symbol")
    assert "not a valid ticker" in rejected["reason"]


@pytest.mark.parametrize(
    "symbol", ["../etc/passwd", "..", "A;DROP", "AAPL'; DROP TABLE x;--", "A" * 300, "a/b", "AAA\x00", "", None],
)
def test_invalid_tickers_never_become_paths(tmp_path, symbol):
    price_file(tmp_path, "AAA", GOOD)
    write(tmp_path, "etc/passwd.csv", HEADER + "\n" + GOOD[1])  # what a traversal would reach
    provider = CsvMarketDataProvider(tmp_path / "")
    for call in (provider.prices, provider.fundamentals, provider.news):
        with pytest.raises(ProviderError, match="not a valid ticker") as info:
            call(["AAA", symbol], START, END)
        assert info.value.field == "symbol"
        assert len(str(info.value)) < 300  # an overlong symbol is shortened


def test_missing_price_file_names_the_file(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    with pytest.raises(ProviderError, match=r"no price file .*prices/ZZZ\.csv for symbol ZZZ") as info:
        CsvMarketDataProvider(tmp_path).prices(["ZZZ"], START, END)
    assert info.value.symbol == "ZZZ"


def test_missing_folder(tmp_path):
    with pytest.raises(ProviderError, match="does not exist"):
        CsvMarketDataProvider(tmp_path / "nowhere")


def test_empty_file_is_a_schema_error_naming_it(tmp_path):
    path = write(tmp_path, "prices/AAA.csv", "")
    with pytest.raises(SchemaError, match="the file is empty") as info:
        CsvMarketDataProvider(tmp_path).prices(["AAA"], START, END)
    assert str(path) in str(info.value) and "AAA" in str(info.value)


def test_header_only_file_is_a_schema_error(tmp_path):
    price_file(tmp_path, "AAA", [])
    with pytest.raises(SchemaError, match="header but no rows"):
        CsvMarketDataProvider(tmp_path).prices(["AAA"], START, END)


def test_missing_columns_are_listed(tmp_path):
    path = price_file(tmp_path, "AAA", ["2024-01-02,10,11,9,10.5"], header="Date,Open,High,Low,Close")
    with pytest.raises(SchemaError) as info:
        CsvMarketDataProvider(tmp_path).prices(["AAA"], START, END)
    message = str(info.value)
    assert str(path) in message and "symbol AAA" in message and "Adj Close, Volume" in message
    assert info.value.missing == ("Adj Close", "Volume")


def test_unsorted_dates_name_the_file_and_line(tmp_path):
    path = price_file(tmp_path, "AAA", [GOOD[1], GOOD[3], GOOD[2]])
    with pytest.raises(ProviderError) as info:
        CsvMarketDataProvider(tmp_path).prices(["AAA"], START, END)
    message = str(info.value)
    assert str(path) in message and "line 4 has 2024-01-03 after 2024-01-04 on line 3" in message
    assert (info.value.symbol, info.value.day, info.value.field) == ("AAA", date(2024, 1, 3), "trade_date")


def test_duplicate_dates_are_quarantined(tmp_path):
    price_file(tmp_path, "AAA", [GOOD[1], GOOD[1], GOOD[2], GOOD[2].replace("10.60,10.50", "10.70,10.60")])
    result = validated(CsvMarketDataProvider(tmp_path), ["AAA"])
    assert result.duplicates_dropped == 1
    assert result.clean["trade_date"].tolist() == [date(2024, 1, 2)]
    assert result.rejected["day"].tolist() == [date(2024, 1, 3)] * 2
    assert "2 different rows for AAA on 2024-01-03" in result.rejected["reason"].iloc[0]


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("2024-01-03,10.5,ten,10.1,10.6,10.5,1100", "high", "high 'ten' is not a number"),
        ("2024-01-03,10.5,10.9,10.1,10.6,10.5,1.2k", "volume", "volume '1.2k' is not a number"),
        ("2024-01-03,NaN,10.9,10.1,10.6,10.5,1100", "open", "open is missing (NaN)"),
        ("2024-01-03,10.5,inf,10.1,10.6,10.5,1100", "high", "high is infinite (inf)"),
        ("2024-01-03,10.5,10.9,10.1,,10.5,1100", "close", "close is missing (NaN)"),
        ("2024-01-03,0,10.9,0,10.6,10.5,1100", "open,low", "open 0.0 is not positive"),
        ("2024-01-03,10.5,10.9,10.1,10.6,-10.5,1100", "adj_close", "adj_close -10.5 is not positive"),
        ("2024-01-03,10.5,9.5,10.0,9.8,9.8,1100", "high", "high 9.5 < low 10.0"),
        ("2024-01-03,10.5,10.9,10.1,10.6,10.5,-1", "volume", "volume -1.0 is negative"),
        ("2024-01-03,10.5,10.9,10.1,10.6", "adj_close,volume", "adj_close is missing"),
        ("03/01/2024,10.5,10.9,10.1,10.6,10.5,1100", "trade_date", "trade_date '03/01/2024' is not a date"),
    ],
)
def test_bad_values_are_quarantined_with_the_reason(tmp_path, line, field, reason):
    price_file(tmp_path, "AAA", [GOOD[1], line, GOOD[3]])
    result = validated(CsvMarketDataProvider(tmp_path), ["AAA"])
    assert result.clean["trade_date"].tolist() == [date(2024, 1, 2), date(2024, 1, 4)]
    rejected = result.rejected.iloc[0]
    assert len(result.rejected) == 1
    assert (rejected["dataset"], rejected["symbol"], rejected["field"]) == ("prices", "AAA", field)
    assert rejected["day"] == (None if field == "trade_date" else date(2024, 1, 3))
    assert reason in rejected["reason"]
    assert rejected["raw"]["symbol"] == "AAA"


def test_future_dates_are_quarantined(tmp_path):
    price_file(tmp_path, "AAA", [GOOD[1], "2024-03-01,10.5,10.9,10.1,10.6,10.5,1100"])
    provider = CsvMarketDataProvider(tmp_path)
    frame = provider.prices(["AAA"], START, date(2024, 12, 31))
    result = validate_prices(frame, start=START, end=date(2024, 12, 31), today=TODAY, known_symbols={"AAA"})
    rejected = result.rejected.iloc[0]
    assert (rejected["day"], rejected["field"]) == (date(2024, 3, 1), "trade_date")
    assert "in the future (today is 2024-02-15)" in rejected["reason"]


def test_unknown_symbols_are_quarantined(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    price_file(tmp_path, "NEW", GOOD)
    result = validated(CsvMarketDataProvider(tmp_path), ["AAA", "NEW"], known={"AAA"})
    assert set(result.clean["symbol"]) == {"AAA"}
    assert set(result.rejected["reason"]) == {"symbol NEW is not in the universe"}


def test_rows_longer_than_the_header_are_a_schema_error(tmp_path):
    price_file(tmp_path, "AAA", [GOOD[1], GOOD[2] + ",extra,fields"])
    with pytest.raises(SchemaError, match="line 3 has 9 fields but the header has 7"):
        CsvMarketDataProvider(tmp_path).prices(["AAA"], START, END)


def test_vendor_header_variants_and_byte_order_mark(tmp_path):
    path = tmp_path / "prices" / "AAA.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\ufeffdate,OPEN,high,low,close,adj_close,volume,Currency\n2024-01-02,10,11,9,10.5,10.4,1000,USD\n",
                    encoding="utf-8")
    result = validated(CsvMarketDataProvider(tmp_path), ["AAA"])
    assert result.rejected.empty and result.clean["close"].tolist() == [10.5]


def test_fundamentals_and_news_files(tmp_path):
    values = ",".join(["1000"] * (len(FUNDAMENTAL_COLUMNS) - 4))
    header = ",".join(FUNDAMENTAL_COLUMNS[1:])
    write(tmp_path, "fundamentals/AAA.csv", "\n".join([
        header,
        f"2023-09-30,2023-11-02,2023Q3,{values}",      # filed before the range
        f"2023-12-31,2024-01-25,2023Q4,{values}",      # good
        f"2024-03-31,2024-01-26,2024Q1,{values}",      # filed before its period ended
        f"2023-12-31,2024-01-26,2023Q4,{values.replace('1000', 'x', 1)}",  # non-numeric revenue
    ]) + "\n")
    write(tmp_path, "news/AAA.csv", "\n".join([
        "published_at,headline,source,url",
        "2024-01-03T14:30:00Z,AAA beats estimates,wire,https://example.com/1",
        "2024-01-03 10:00:00,Naive time,wire,https://example.com/2",
        "2024-01-04T15:00:00+00:00,,wire,https://example.com/3",
        "2023-06-01T15:00:00Z,Old news,wire,https://example.com/4",
    ]) + "\n")
    provider = CsvMarketDataProvider(tmp_path)
    assert provider.fundamentals(["BBB"], START, END).empty  # no file: no fundamentals

    fundamentals = validate_fundamentals(provider.fundamentals(["AAA"], START, END), start=START, end=END,
                                         today=TODAY, known_symbols={"AAA"}, source="csv")
    assert fundamentals.clean["period_end"].tolist() == [date(2023, 12, 31)]
    assert tuple(fundamentals.clean.columns) == FUNDAMENTAL_COLUMNS
    reasons = fundamentals.rejected.set_index("field")["reason"].to_dict()
    assert "filed before its period ended" in reasons["filing_date"]
    assert reasons["revenue"] == "revenue 'x' is not a number"

    frame = provider.news(["AAA"], START, END)
    assert len(frame) == 3  # the June headline is outside the range
    news = validate_news(frame, start=START, end=END, today=TODAY, known_symbols={"AAA"}, source="csv")
    assert tuple(news.clean.columns) == NEWS_COLUMNS
    assert news.clean["headline"].tolist() == ["AAA beats estimates"]
    assert news.clean["published_at"].iloc[0] == pd.Timestamp("2024-01-03 14:30Z")
    reasons = dict(zip(news.rejected["field"], news.rejected["reason"]))
    assert "has no time zone" in reasons["published_at"] and reasons["headline"] == "headline is empty"


def test_fundamentals_file_of_another_symbol_is_refused(tmp_path):
    header = ",".join(FUNDAMENTAL_COLUMNS)
    values = ",".join(["1000"] * (len(FUNDAMENTAL_COLUMNS) - 4))
    write(tmp_path, "fundamentals/AAA.csv", f"{header}\nBBB,2023-12-31,2024-01-25,2023Q4,{values}\n")
    with pytest.raises(ProviderError, match="line 2 has symbol 'BBB', but the file is for AAA"):
        CsvMarketDataProvider(tmp_path).fundamentals(["AAA"], START, END)


def test_a_file_that_ends_before_the_export_is_a_delisting(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    price_file(tmp_path, "GONE", GOOD[:2])  # last bar 2024-01-02, the export runs to 2024-01-04
    universe = CsvMarketDataProvider(tmp_path).universe(TODAY).set_index("symbol")
    assert universe.loc["GONE", "delisted_on"] == date(2024, 1, 3)  # the session after its last bar
    assert universe.loc["AAA", "delisted_on"] is None
    # as of its last day, GONE is still listed
    universe = CsvMarketDataProvider(tmp_path).universe(date(2024, 1, 2)).set_index("symbol")
    assert universe["delisted_on"].isna().all()
    # a stale export (every file ends on the same day, before as_of) delists nobody
    price_file(tmp_path, "GONE", GOOD)
    assert CsvMarketDataProvider(tmp_path).universe(TODAY)["delisted_on"].isna().all()


def test_a_ticker_reused_after_a_gap_is_listed_from_its_last_listing(tmp_path):
    old = ["2023-06-01,5,5,5,5,5,100", "2023-06-02,5,5,5,5,5,100"]  # another company, months before
    price_file(tmp_path, "REUSE", old + GOOD)
    universe = CsvMarketDataProvider(tmp_path).universe(TODAY).set_index("symbol")
    assert universe.loc["REUSE", "listed_on"] == date(2023, 12, 29)
    # no event is read from the step between the two listings
    frame = CsvMarketDataProvider(tmp_path).prices(["REUSE"], date(2023, 1, 3), END)
    assert frame["split_ratio"].tolist() == [1.0] * 6
    assert frame["dividend"].iloc[2] == 0.0


def test_split_derived_from_adj_close_without_event_columns(tmp_path):
    price_file(tmp_path, "SPL", [
        "2024-01-02,100,101,99,100,50,1000",
        "2024-01-03,51,52,50,51,51,2000",  # 2-for-1 ex today: Adj Close shows no move
    ])
    frame = CsvMarketDataProvider(tmp_path).prices(["SPL"], START, END)
    assert frame["split_ratio"].tolist() == [1.0, 2.0]
    assert frame["dividend"].tolist() == pytest.approx([0.0, 0.0])


def test_confirmed_moves_file(tmp_path):
    price_file(tmp_path, "AAA", GOOD)
    provider = CsvMarketDataProvider(tmp_path)
    assert provider.confirmed_moves() == set()
    write(tmp_path, "confirmed_moves.csv", "symbol,date\nAAA,2024-01-03\n")
    assert provider.confirmed_moves() == {("AAA", date(2024, 1, 3))}
    write(tmp_path, "confirmed_moves.csv", "symbol,date\nAAA,01/03/2024\n")
    with pytest.raises(ProviderError, match="confirmed_moves.csv line 2"):
        provider.confirmed_moves()
