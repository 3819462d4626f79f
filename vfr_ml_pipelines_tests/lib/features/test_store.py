"""The features domain's SQL (`lib/features/store.py`) on the real PostgreSQL: what the
feature run reads, the labels it replaces, the freshness query of the matrix check."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.features import store

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)


@pytest.fixture
def engine(make_engine):
    return make_engine("features_store")


def _bar(symbol: str, day: date, close: float, *, dividend: float = 0.0, split_ratio: float = 1.0) -> dict:
    return {"symbol": symbol, "trade_date": day, "open": close, "high": close, "low": close, "close": close,
            "adj_close": close, "volume": 1000, "dividend": dividend, "split_ratio": split_ratio, "source": "test"}


def _append(engine, table: str, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_sql(table, engine, schema="vfr_ml", if_exists="append", index=False)


def test_an_empty_warehouse_has_no_dataset_and_no_price_day(engine):
    assert store.datasets_with_rows(engine) == set()
    assert store.latest_price_day(engine) is None
    prices = store.read_raw_prices(engine)
    assert prices.empty
    assert list(prices.columns) == ["symbol", "trade_date", "open", "high", "low", "close", "adj_close", "volume",
                                    "dividend", "split_ratio"]


def test_prices_are_read_by_symbol_and_day_with_their_events(engine):
    _append(engine, "raw_prices", [_bar("BBB", D2, 20.0), _bar("AAA", D3, 11.0, dividend=0.5),
                                   _bar("AAA", D1, 10.0, split_ratio=2.0), _bar("BBB", D1, 19.0)])
    prices = store.read_raw_prices(engine)
    assert list(zip(prices["symbol"], prices["trade_date"])) == [("AAA", D1), ("AAA", D3), ("BBB", D1), ("BBB", D2)]
    assert prices["split_ratio"].tolist() == [2.0, 1.0, 1.0, 1.0]
    assert prices["dividend"].tolist() == [0.0, 0.5, 0.0, 0.0]
    assert store.latest_price_day(engine) == D3
    assert store.datasets_with_rows(engine) == {"prices"}


def test_fundamentals_news_and_sectors_are_read(engine):
    _append(engine, "raw_fundamentals", [
        {"symbol": "BBB", "period_end": date(2023, 9, 30), "filing_date": date(2023, 11, 1), "revenue": 5.0, "source": "t"},
        {"symbol": "AAA", "period_end": date(2023, 9, 30), "filing_date": date(2023, 11, 9), "revenue": 7.0, "source": "t"},
        {"symbol": "AAA", "period_end": date(2023, 6, 30), "filing_date": date(2023, 8, 2), "revenue": 6.0, "source": "t"},
    ])
    published = datetime(2024, 1, 2, 15, 30, tzinfo=timezone.utc)
    _append(engine, "raw_news", [{"trade_date": D1, "symbol": "AAA", "published_at": published, "headline": "beats",
                                  "headline_md5": "0" * 32, "source": "wire", "url": None, "provider": "test"}])
    _append(engine, "universe", [{"symbol": "AAA", "sector": "Tech", "listed_on": D1, "source": "t"},
                                 {"symbol": "BBB", "sector": "Energy", "listed_on": D1, "source": "t"}])
    reports = store.read_raw_fundamentals(engine)
    assert list(zip(reports["symbol"], reports["filing_date"])) == [
        ("AAA", date(2023, 8, 2)), ("AAA", date(2023, 11, 9)), ("BBB", date(2023, 11, 1))]
    assert {"period_end", "revenue", "shares_outstanding"} <= set(reports.columns)
    news = store.read_raw_news(engine)
    assert list(news.columns) == ["symbol", "published_at", "headline", "source", "url"]
    assert news["headline"].tolist() == ["beats"] and news["published_at"].iloc[0] == published
    assert dict(zip(*store.read_sectors(engine).to_dict("list").values())) == {"AAA": "Tech", "BBB": "Energy"}
    assert store.datasets_with_rows(engine) == {"fundamentals", "news"}


def _labels(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["horizon", "trade_date", "symbol", "forward_return"])
    return frame.assign(excess_return=0.0, known_date=frame["trade_date"] + pd.Timedelta(days=7), rank_return=0.0,
                        extra_column="not stored")


def test_labels_replace_the_stored_history_up_to_their_last_day(engine):
    with engine.begin() as conn:
        assert store.replace_labels(conn, _labels([("1d", D1, "AAA", 0.1), ("1d", D2, "AAA", 0.2),
                                                   ("1w", D3, "BBB", 0.3)])) == 3
    with engine.begin() as conn:
        # a corrected price: every day is recomputed, the older days too, and none is kept twice
        assert store.replace_labels(conn, _labels([("1d", D2, "AAA", -0.2), ("1w", D3, "BBB", 0.3)])) == 2
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT horizon, trade_date, symbol, forward_return FROM vfr_ml.labels ORDER BY trade_date")).all()
    assert [tuple(r) for r in stored] == [("1d", D2, "AAA", -0.2), ("1w", D3, "BBB", 0.3)]
