"""Rows the outcome and roll-up tests start from: predictions written by the real writer, and
labels as the labels asset stores them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, text

from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions
from vfr_ml_pipelines_tests.helpers import prediction_frame


def emptied(engine: Engine, tables: str) -> Engine:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    return engine


def write_predictions(conn, horizon: str, as_of: date, rows: list[tuple[str, float, float, float]]) -> None:
    """rows: (symbol, current_price, expected_return, confidence); probability and direction agree
    with the expected return (helpers.prediction_frame)."""
    write_ml_predictions(conn, prediction_frame(rows, as_of), horizon, as_of)


def write_label(conn, horizon: str, symbol: str, trade_date: date, known: date, forward_return: float) -> None:
    conn.execute(
        text(
            "INSERT INTO vfr_ml.labels (horizon, trade_date, symbol, forward_return, excess_return, known_date) "
            "VALUES (:h, :d, :s, :r, 0, :k)"
        ),
        {"h": horizon, "d": trade_date, "s": symbol, "r": forward_return, "k": known},
    )


def write_price(conn, symbol: str, day: date, close: float) -> None:
    """A raw_prices bar (loaded_at: the transaction's start, as a price load writes it)."""
    conn.execute(
        text(
            "INSERT INTO vfr_ml.raw_prices (symbol, trade_date, open, high, low, close, adj_close, volume, source) "
            "VALUES (:s, :d, :c, :c, :c, :c, :c, 1000, 'test')"
        ),
        {"s": symbol, "d": day, "c": close},
    )
