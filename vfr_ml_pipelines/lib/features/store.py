"""The features domain's SQL: what the feature run reads from the warehouse (raw prices,
fundamentals, news, sectors, which raw datasets have rows), the labels it writes, and the
quality query of the feature-matrix check. The feature vectors themselves live in the
offline store (Parquet) and `online_store` (`vfr_ml.feature_latest`, `vfr_ml.feature_sets`)."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.warehouse import read_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_date_range

RAW_TABLES = {"prices": "vfr_ml.raw_prices", "fundamentals": "vfr_ml.raw_fundamentals", "news": "vfr_ml.raw_news"}
LABELS_TABLE = "vfr_ml.labels"
LABEL_TABLE_COLUMNS = ["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date", "rank_return"]

_RAW_PRICES = """
SELECT symbol, trade_date, open, high, low, close, adj_close, volume, dividend, split_ratio
FROM vfr_ml.raw_prices ORDER BY symbol, trade_date
"""
_RAW_FUNDAMENTALS = "SELECT * FROM vfr_ml.raw_fundamentals ORDER BY symbol, filing_date"
_RAW_NEWS = "SELECT symbol, published_at, headline, source, url FROM vfr_ml.raw_news"
_SECTORS = "SELECT symbol, sector FROM vfr_ml.universe"
_LATEST_PRICE_DAY = "SELECT max(trade_date) AS d FROM vfr_ml.raw_prices"


def read_raw_prices(engine: Engine | Connection) -> pd.DataFrame:
    """Every stored daily bar with its split and dividend events, by (symbol, trade_date)."""
    return read_frame(engine, _RAW_PRICES)


def read_raw_fundamentals(engine: Engine | Connection) -> pd.DataFrame:
    """Every filed report (amendments included), by (symbol, filing_date)."""
    return read_frame(engine, _RAW_FUNDAMENTALS)


def read_raw_news(engine: Engine | Connection) -> pd.DataFrame:
    """Every stored headline: symbol, published_at, headline, source, url."""
    return read_frame(engine, _RAW_NEWS)


def read_sectors(engine: Engine | Connection) -> pd.DataFrame:
    """symbol -> sector of the universe (for the sector-neutral transforms)."""
    return read_frame(engine, _SECTORS)


def datasets_with_rows(engine: Engine | Connection) -> set[str]:
    """The raw datasets (prices, fundamentals, news) with at least one stored row."""
    sql = "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {table}) AS {name}" for name, table in RAW_TABLES.items())
    row = read_frame(engine, sql).iloc[0]
    return {name for name in RAW_TABLES if bool(row[name])}


def replace_labels(conn: Connection, labels: pd.DataFrame) -> int:
    """Replace every stored label up to the last labelled day of `labels`
    (`compute_all_labels`' frame, the whole history) by `labels`: a corrected price
    anywhere changes the labels around it."""
    return replace_date_range(
        conn, LABELS_TABLE, labels[LABEL_TABLE_COLUMNS], "trade_date", date.min, labels["trade_date"].max()
    )


def latest_price_day(engine: Engine | Connection) -> date | None:
    """The last session with a stored price (None when there is none): how fresh the
    feature matrix must be."""
    return read_frame(engine, _LATEST_PRICE_DAY)["d"].iloc[0]
