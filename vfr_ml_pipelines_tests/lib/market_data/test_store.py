"""The market-data store against the real PostgreSQL: what the loads write and read back,
and the quality queries of the checks, on a database of its own."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import text

from vfr_ml_pipelines.lib.market_data import store
from vfr_ml_pipelines.lib.market_data.corporate_actions import DOUBT_PREFIX
from vfr_ml_pipelines.lib.warehouse import read_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_quarantine
from vfr_ml_pipelines_tests.lib.market_data.market_rows import DAYS, END, START, bar, rejected, write_prices, write_universe


def test_the_universe_is_read_back_as_written(market_engine):
    write_universe(market_engine, {"AAA": DAYS, "BBB": DAYS[5:]})
    assert store.universe(market_engine, START, END) == ["AAA", "BBB"]
    assert store.universe(market_engine, DAYS[0], DAYS[4]) == ["AAA"]
    by_session = store.universe_by_session(market_engine, DAYS[4], DAYS[5])
    assert sorted(map(tuple, by_session[["trade_date", "symbol"]].to_numpy().tolist())) == [
        (DAYS[4], "AAA"), (DAYS[5], "AAA"), (DAYS[5], "BBB")
    ]
    master = read_frame(market_engine, "SELECT symbol, name FROM vfr_ml.universe ORDER BY symbol")
    assert master.to_dict("records") == [{"symbol": "AAA", "name": "Aaa"}, {"symbol": "BBB", "name": "Bbb"}]


def test_the_last_stored_session(market_engine):
    assert store.last_stored_session(market_engine, END) is None
    write_prices(market_engine, [bar("AAA", DAYS[2]), bar("BBB", DAYS[4])])
    assert store.last_stored_session(market_engine, END) == DAYS[4]
    assert store.last_stored_session(market_engine, DAYS[3]) == DAYS[2]
    assert store.last_stored_session(market_engine, DAYS[1]) is None


def test_the_closes_of_a_session(market_engine):
    write_prices(market_engine, [bar("BBB", DAYS[1], close=20.0), bar("AAA", DAYS[1], close=10.0), bar("AAA", DAYS[2], close=11.0)])
    closes = store.closes_on(market_engine, DAYS[1]).sort_values("symbol")
    assert closes.to_dict("records") == [{"symbol": "AAA", "close": 10.0}, {"symbol": "BBB", "close": 20.0}]
    assert store.closes_on(market_engine, DAYS[0]).empty


def test_write_range_replaces_the_range_and_its_quarantine(market_engine):
    write_prices(market_engine, [bar("AAA", d) for d in DAYS], rejected([("prices", "AAA", DAYS[0], "close", "bad")]))
    write_prices(market_engine, [bar("AAA", d, close=11.0) for d in DAYS[:3]], rejected([]))
    prices = read_frame(market_engine, "SELECT trade_date, close FROM vfr_ml.raw_prices ORDER BY trade_date")
    assert prices["trade_date"].tolist() == DAYS[:3] and set(prices["close"]) == {11.0}
    assert read_frame(market_engine, "SELECT count(*) AS n FROM vfr_ml.quarantine")["n"].iloc[0] == 0


def test_the_oracle_is_replaced_by_range(market_engine):
    oracle = pd.DataFrame({"horizon": ["1d", "1w"], "trade_date": [DAYS[0], DAYS[0]], "symbol": ["AAA", "AAA"],
                           "expected_return": [0.001, 0.004]})
    store.write_oracle(market_engine, oracle, START, END)
    store.write_oracle(market_engine, oracle.iloc[:1], START, END)
    stored = read_frame(market_engine, "SELECT horizon, expected_return FROM vfr_ml_oracle.expected_returns")
    assert stored.to_dict("records") == [{"horizon": "1d", "expected_return": 0.001}]


def test_a_load_reads_back_the_last_bars_and_the_open_doubts(market_engine):
    write_prices(market_engine, [bar("AAA", d, close=10.0 + i) for i, d in enumerate(DAYS[:5])] + [bar("BBB", DAYS[1])])
    last = store.last_bars_before(market_engine, DAYS[4]).set_index("symbol")
    assert last.loc["AAA", "trade_date"] == DAYS[3] and last.loc["AAA", "close"] == 13.0
    assert last.loc["BBB", "trade_date"] == DAYS[1]

    doubt = f"{DOUBT_PREFIX}: close moved 60%"
    quarantined = rejected([("prices", "CCC", DAYS[2], "close", doubt), ("prices", "AAA", DAYS[1], "close", doubt)])
    with market_engine.begin() as conn:
        replace_quarantine(conn, "prices", "test", START, END, quarantined, "r1")
    # AAA's doubt was resolved by a later stored bar, CCC's was not
    assert store.open_doubts(market_engine, DAYS[10]) == {"CCC": (DAYS[2], doubt)}
    held = store.held_out(market_engine, START, END)
    assert held[["symbol", "first_day", "sessions"]].to_dict("records") == [
        {"symbol": "AAA", "first_day": DAYS[1], "sessions": 1}, {"symbol": "CCC", "first_day": DAYS[2], "sessions": 1}
    ]


def test_invalid_bars_are_found(market_engine):
    write_prices(market_engine, [
        bar("AAA", DAYS[0]),
        bar("NAN", DAYS[0]),
        bar("BIG", DAYS[0], close=500.0),
        bar("VOL", DAYS[0], volume=10**9),
    ])
    with market_engine.begin() as conn:  # COPY stores NaN as NULL; NaN passes the table's `> 0` check
        conn.execute(text("UPDATE vfr_ml.raw_prices SET adj_close = 'NaN' WHERE symbol = 'NAN'"))
    bad = store.invalid_bars(market_engine, START, END, max_price=100.0, max_volume=1e6)
    assert sorted(bad["symbol"]) == ["BIG", "NAN", "VOL"]


def test_coverage_counts_the_listed_symbols_with_a_bar(market_engine):
    write_universe(market_engine, {"AAA": DAYS[:2], "BBB": DAYS[:2]})
    write_prices(market_engine, [bar("AAA", DAYS[0]), bar("BBB", DAYS[0]), bar("AAA", DAYS[1])])
    coverage = store.coverage(market_engine, START, END)
    assert coverage[["trade_date", "members", "with_bar", "without_bar", "share"]].to_dict("records") == [
        {"trade_date": DAYS[0], "members": 2, "with_bar": 2, "without_bar": None, "share": 1.0},
        {"trade_date": DAYS[1], "members": 2, "with_bar": 1, "without_bar": "BBB", "share": 0.5},
    ]


def test_stored_bars_and_repeated_bars(market_engine):
    write_prices(market_engine, [bar("AAA", DAYS[0]), bar("AAA", DAYS[1]), bar("AAA", DAYS[2], close=12.0)])
    assert store.stored_bars(market_engine, DAYS[1], DAYS[2])["trade_date"].tolist() == DAYS[1:3]
    # DAYS[1] repeats DAYS[0] (looked back to), DAYS[2] moved
    repeats = store.repeated_bars(market_engine, DAYS[0], DAYS[1], DAYS[2])
    assert repeats.to_dict("records") == [{"symbol": "AAA", "trade_date": DAYS[1]}]


def test_zero_volume_runs_need_a_moving_close(market_engine):
    rows = [bar("MOV", d, close=10.0 + i, volume=0) for i, d in enumerate(DAYS[:12])]
    rows += [bar("FLAT", d, volume=0) for d in DAYS[:12]]
    rows += [bar("SHORT", d, close=10.0 + i, volume=0) for i, d in enumerate(DAYS[:3])]
    write_prices(market_engine, rows)
    runs = store.zero_volume_runs(market_engine, DAYS[5], END, min_sessions=10)
    assert runs[["symbol", "first_day", "last_day", "sessions"]].to_dict("records") == [
        {"symbol": "MOV", "first_day": DAYS[0], "last_day": DAYS[11], "sessions": 12}
    ]


def test_misdated_filings(market_engine):
    reports = pd.DataFrame({
        "symbol": ["OK", "LATE"], "period_end": [date(2023, 12, 31), date(2023, 9, 30)],
        "filing_date": [DAYS[0], DAYS[1]], "source": ["test", "test"],
    })
    store.write_range(market_engine, "vfr_ml.raw_fundamentals", "filing_date", reports, START, END,
                      dataset="fundamentals", provider="test", rejected=rejected([]), run_id="r1")
    bad = store.misdated_filings(market_engine, START, END, max_lag_days=120)
    assert bad.to_dict("records") == [{"symbol": "LATE", "period_end": date(2023, 9, 30), "filing_date": DAYS[1]}]


def test_stored_news_is_read_by_session(market_engine):
    news = pd.DataFrame({
        "trade_date": [DAYS[0], DAYS[1]], "symbol": ["AAA", "AAA"],
        "published_at": pd.to_datetime(["2024-03-01 14:00", "2024-03-04 15:00"]).tz_localize("America/New_York"),
        "headline": ["up", "down"], "headline_md5": ["0" * 32, "1" * 32], "source": [None, None], "url": [None, None],
        "provider": ["test", "test"],
    })
    store.write_range(market_engine, "vfr_ml.raw_news", "trade_date", news, START, END,
                      dataset="news", provider="test", rejected=rejected([]), run_id="r1")
    stored = store.stored_news(market_engine, DAYS[1], DAYS[1])
    assert stored["symbol"].tolist() == ["AAA"] and stored["trade_date"].tolist() == [DAYS[1]]
    assert stored["published_at"].iloc[0] == pd.Timestamp("2024-03-04 15:00", tz="America/New_York")
