"""The serving domain's SQL (lib/serving/store.py), on a migrated PostgreSQL database of this
module's own."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving import store

D1, D2, D3 = date(2031, 3, 3), date(2031, 3, 4), date(2031, 3, 5)


@pytest.fixture(scope="module")
def db(make_engine):
    engine = make_engine("serving_store")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vfr_ml.raw_prices (symbol, trade_date, open, high, low, close, adj_close, volume, source) "
                "VALUES (:s, :d, :c, :c, :c, :c, :c, 100, 'test')"
            ),
            [{"s": s, "d": d, "c": c} for s, d, c in [("AAA", D1, 10.0), ("BBB", D1, 20.0), ("AAA", D2, 11.0), ("AAA", D3, 12.0)]],
        )
        conn.execute(
            text("INSERT INTO vfr_ml.universe_membership (trade_date, symbol, sector, source) VALUES (:d, :s, 'Tech', 'test')"),
            [{"d": D2, "s": s} for s in ("CCC", "AAA", "BBB")],
        )
    return engine


def _rows(day: date, symbols: list[str], model_version: str = "1", horizon: str = "1w") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "as_of_date": day, "horizon": horizon, "model_name": "vfr-1w", "model_version": model_version,
                "symbol": s, "expected_return": 0.01, "probability": 0.6, "direction": "BUY", "confidence": 0.2,
                "current_price": 10.0, "features": json.dumps({"rsi_14": 50.0}), "feature_completeness": 1.0,
                "feature_quality_score": 0.9, "predicted_at": datetime(2031, 3, 5, 23, tzinfo=UTC),
            }
            for s in symbols
        ]
    )


def test_latest_predictions_are_the_latest_day_of_that_version_only(db):
    with db.begin() as conn:
        store.replace_predictions(conn, _rows(D1, ["AAA", "BBB"]), as_of=D1, horizon="1w", model_name="vfr-1w", model_version="1")
        store.replace_predictions(conn, _rows(D2, ["BBB", "AAA"]), as_of=D2, horizon="1w", model_name="vfr-1w", model_version="1")
        store.replace_predictions(
            conn, _rows(D3, ["AAA"], model_version="2"), as_of=D3, horizon="1w", model_name="vfr-1w", model_version="2"
        )
    latest = store.latest_predictions(db, "1w", "vfr-1w", "1")
    assert latest["symbol"].tolist() == ["AAA", "BBB"]
    assert set(latest["as_of_date"]) == {D2}
    assert store.latest_predictions(db, "1w", "vfr-1w", "2")["as_of_date"].tolist() == [D3]
    assert store.latest_predictions(db, "1m", "vfr-1w", "1").empty


def test_replacing_a_day_drops_the_symbols_it_no_longer_predicts(db):
    with db.begin() as conn:
        store.replace_predictions(conn, _rows(D1, ["AAA", "BBB"]), as_of=D1, horizon="1w", model_name="vfr-1w", model_version="1")
        store.replace_predictions(
            conn, _rows(D3, ["AAA"], model_version="2"), as_of=D3, horizon="1w", model_name="vfr-1w", model_version="2"
        )
        store.replace_predictions(conn, _rows(D2, ["AAA", "BBB", "CCC"]), as_of=D2, horizon="1w", model_name="vfr-1w", model_version="1")
        store.replace_predictions(conn, _rows(D2, ["CCC"]), as_of=D2, horizon="1w", model_name="vfr-1w", model_version="1")
    assert store.latest_predictions(db, "1w", "vfr-1w", "1")["symbol"].tolist() == ["CCC"]
    # other days and versions are untouched
    with db.connect() as conn:
        others = conn.execute(
            text("SELECT count(*) FROM vfr_ml.predictions WHERE NOT (as_of_date = :d AND model_version = '1')"), {"d": D2}
        ).scalar_one()
    assert others == 3  # D1: AAA, BBB (version 1); D3: AAA (version 2)
