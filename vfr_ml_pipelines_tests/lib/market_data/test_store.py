"""The market-data store against the real PostgreSQL: what the loads write and read back,
and the quality queries of the checks, on a database of its own."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.market_data import calendar, store
from vfr_ml_pipelines.lib.market_data.corporate_actions import DOUBT_PREFIX
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS
from vfr_ml_pipelines.lib.warehouse import read_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_quarantine

DAYS = calendar.trading_days(date(2024, 3, 1), date(2024, 3, 28))  # 19 sessions, Good Friday excluded
START, END = DAYS[0], DAYS[-1]


@pytest.fixture(scope="module")
def store_database(make_engine):
    return make_engine("md_store")


@pytest.fixture
def engine(store_database):
    """The module's database, emptied after each test."""
    yield store_database
    with store_database.begin() as conn:
        conn.execute(text(
            "TRUNCATE vfr_ml.universe, vfr_ml.universe_membership, vfr_ml.raw_prices, vfr_ml.raw_fundamentals, "
            "vfr_ml.raw_news, vfr_ml.quarantine, vfr_ml_oracle.expected_returns"
        ))


def _bar(symbol: str, day: date, close: float = 10.0, volume: int = 1000, **overrides) -> dict:
    row = {"symbol": symbol, "trade_date": day, "open": close, "high": close * 1.01, "low": close * 0.99,
           "close": close, "adj_close": close, "volume": volume, "dividend": 0.0, "split_ratio": 1.0, "source": "test"}
    return {**row, **overrides}


def _write_prices(engine, rows: list[dict], rejected: pd.DataFrame | None = None) -> None:
    store.write_range(engine, "vfr_ml.raw_prices", "trade_date", pd.DataFrame(rows), START, END,
                      dataset="prices", provider="test", rejected=rejected if rejected is not None else _rejected([]), run_id="r1")


def _rejected(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([(d, s, day, f, reason, {}) for d, s, day, f, reason in rows], columns=list(REJECTED_COLUMNS))


def _write_universe(engine, listed: dict[str, list[date]]) -> None:
    master = pd.DataFrame(
        [(s, s.title(), "Tech", min(days), None, "test") for s, days in listed.items()],
        columns=store.UNIVERSE_MASTER_COLUMNS,
    )
    membership = pd.DataFrame(
        [(d, s, "Tech", "test") for s, days in listed.items() for d in days], columns=["trade_date", "symbol", "sector", "source"]
    )
    store.write_universe(engine, master, membership, START, END, provider="test", rejected=_rejected([]), run_id="r1")


def test_the_universe_is_read_back_as_written(engine):
    _write_universe(engine, {"AAA": DAYS, "BBB": DAYS[5:]})
    assert store.universe(engine, START, END) == ["AAA", "BBB"]
    assert store.universe(engine, DAYS[0], DAYS[4]) == ["AAA"]
    by_session = store.universe_by_session(engine, DAYS[4], DAYS[5])
    assert sorted(map(tuple, by_session[["trade_date", "symbol"]].to_numpy().tolist())) == [
        (DAYS[4], "AAA"), (DAYS[5], "AAA"), (DAYS[5], "BBB")
    ]
    master = read_frame(engine, "SELECT symbol, name FROM vfr_ml.universe ORDER BY symbol")
    assert master.to_dict("records") == [{"symbol": "AAA", "name": "Aaa"}, {"symbol": "BBB", "name": "Bbb"}]


def test_the_last_stored_session(engine):
    assert store.last_stored_session(engine, END) is None
    _write_prices(engine, [_bar("AAA", DAYS[2]), _bar("BBB", DAYS[4])])
    assert store.last_stored_session(engine, END) == DAYS[4]
    assert store.last_stored_session(engine, DAYS[3]) == DAYS[2]
    assert store.last_stored_session(engine, DAYS[1]) is None


def test_write_range_replaces_the_range_and_its_quarantine(engine):
    _write_prices(engine, [_bar("AAA", d) for d in DAYS], _rejected([("prices", "AAA", DAYS[0], "close", "bad")]))
    _write_prices(engine, [_bar("AAA", d, close=11.0) for d in DAYS[:3]], _rejected([]))
    prices = read_frame(engine, "SELECT trade_date, close FROM vfr_ml.raw_prices ORDER BY trade_date")
    assert prices["trade_date"].tolist() == DAYS[:3] and set(prices["close"]) == {11.0}
    assert read_frame(engine, "SELECT count(*) AS n FROM vfr_ml.quarantine")["n"].iloc[0] == 0


def test_the_oracle_is_replaced_by_range(engine):
    oracle = pd.DataFrame({"horizon": ["1d", "1w"], "trade_date": [DAYS[0], DAYS[0]], "symbol": ["AAA", "AAA"],
                           "expected_return": [0.001, 0.004]})
    store.write_oracle(engine, oracle, START, END)
    store.write_oracle(engine, oracle.iloc[:1], START, END)
    stored = read_frame(engine, "SELECT horizon, expected_return FROM vfr_ml_oracle.expected_returns")
    assert stored.to_dict("records") == [{"horizon": "1d", "expected_return": 0.001}]


def test_a_load_reads_back_the_last_bars_and_the_open_doubts(engine):
    _write_prices(engine, [_bar("AAA", d, close=10.0 + i) for i, d in enumerate(DAYS[:5])] + [_bar("BBB", DAYS[1])])
    last = store.last_bars_before(engine, DAYS[4]).set_index("symbol")
    assert last.loc["AAA", "trade_date"] == DAYS[3] and last.loc["AAA", "close"] == 13.0
    assert last.loc["BBB", "trade_date"] == DAYS[1]

    doubt = f"{DOUBT_PREFIX}: close moved 60%"
    quarantined = _rejected([("prices", "CCC", DAYS[2], "close", doubt), ("prices", "AAA", DAYS[1], "close", doubt)])
    with engine.begin() as conn:
        replace_quarantine(conn, "prices", "test", START, END, quarantined, "r1")
    # AAA's doubt was resolved by a later stored bar, CCC's was not
    assert store.open_doubts(engine, DAYS[10]) == {"CCC": (DAYS[2], doubt)}
    held = store.held_out(engine, START, END)
    assert held[["symbol", "first_day", "sessions"]].to_dict("records") == [
        {"symbol": "AAA", "first_day": DAYS[1], "sessions": 1}, {"symbol": "CCC", "first_day": DAYS[2], "sessions": 1}
    ]


def test_invalid_bars_are_found(engine):
    _write_prices(engine, [
        _bar("AAA", DAYS[0]),
        _bar("NAN", DAYS[0]),
        _bar("BIG", DAYS[0], close=500.0),
        _bar("VOL", DAYS[0], volume=10**9),
    ])
    with engine.begin() as conn:  # COPY stores NaN as NULL; NaN passes the table's `> 0` check
        conn.execute(text("UPDATE vfr_ml.raw_prices SET adj_close = 'NaN' WHERE symbol = 'NAN'"))
    bad = store.invalid_bars(engine, START, END, max_price=100.0, max_volume=1e6)
    assert sorted(bad["symbol"]) == ["BIG", "NAN", "VOL"]


def test_coverage_counts_the_listed_symbols_with_a_bar(engine):
    _write_universe(engine, {"AAA": DAYS[:2], "BBB": DAYS[:2]})
    _write_prices(engine, [_bar("AAA", DAYS[0]), _bar("BBB", DAYS[0]), _bar("AAA", DAYS[1])])
    coverage = store.coverage(engine, START, END)
    assert coverage[["trade_date", "members", "with_bar", "without_bar", "share"]].to_dict("records") == [
        {"trade_date": DAYS[0], "members": 2, "with_bar": 2, "without_bar": None, "share": 1.0},
        {"trade_date": DAYS[1], "members": 2, "with_bar": 1, "without_bar": "BBB", "share": 0.5},
    ]


def test_stored_bars_and_repeated_bars(engine):
    _write_prices(engine, [_bar("AAA", DAYS[0]), _bar("AAA", DAYS[1]), _bar("AAA", DAYS[2], close=12.0)])
    assert store.stored_bars(engine, DAYS[1], DAYS[2])["trade_date"].tolist() == DAYS[1:3]
    # DAYS[1] repeats DAYS[0] (looked back to), DAYS[2] moved
    repeats = store.repeated_bars(engine, DAYS[0], DAYS[1], DAYS[2])
    assert repeats.to_dict("records") == [{"symbol": "AAA", "trade_date": DAYS[1]}]


def test_zero_volume_runs_need_a_moving_close(engine):
    rows = [_bar("MOV", d, close=10.0 + i, volume=0) for i, d in enumerate(DAYS[:12])]
    rows += [_bar("FLAT", d, volume=0) for d in DAYS[:12]]
    rows += [_bar("SHORT", d, close=10.0 + i, volume=0) for i, d in enumerate(DAYS[:3])]
    _write_prices(engine, rows)
    runs = store.zero_volume_runs(engine, DAYS[5], END, min_sessions=10)
    assert runs[["symbol", "first_day", "last_day", "sessions"]].to_dict("records") == [
        {"symbol": "MOV", "first_day": DAYS[0], "last_day": DAYS[11], "sessions": 12}
    ]


def test_misdated_filings(engine):
    reports = pd.DataFrame({
        "symbol": ["OK", "LATE"], "period_end": [date(2023, 12, 31), date(2023, 9, 30)],
        "filing_date": [DAYS[0], DAYS[1]], "source": ["test", "test"],
    })
    store.write_range(engine, "vfr_ml.raw_fundamentals", "filing_date", reports, START, END,
                      dataset="fundamentals", provider="test", rejected=_rejected([]), run_id="r1")
    bad = store.misdated_filings(engine, START, END, max_lag_days=120)
    assert bad.to_dict("records") == [{"symbol": "LATE", "period_end": date(2023, 9, 30), "filing_date": DAYS[1]}]


def test_stored_news_is_read_by_session(engine):
    news = pd.DataFrame({
        "trade_date": [DAYS[0], DAYS[1]], "symbol": ["AAA", "AAA"],
        "published_at": pd.to_datetime(["2024-03-01 14:00", "2024-03-04 15:00"]).tz_localize("America/New_York"),
        "headline": ["up", "down"], "headline_md5": ["0" * 32, "1" * 32], "source": [None, None], "url": [None, None],
        "provider": ["test", "test"],
    })
    store.write_range(engine, "vfr_ml.raw_news", "trade_date", news, START, END,
                      dataset="news", provider="test", rejected=_rejected([]), run_id="r1")
    stored = store.stored_news(engine, DAYS[1], DAYS[1])
    assert stored["symbol"].tolist() == ["AAA"] and stored["trade_date"].tolist() == [DAYS[1]]
    assert stored["published_at"].iloc[0] == pd.Timestamp("2024-03-04 15:00", tz="America/New_York")
