"""vfr_store/predictions.py on a migrated PostgreSQL database of this module's own: the
enhancement definition, ml_predictions and session rows, and the stale-outcome delete, each
read back from the tables."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.vfr_store import predictions as store

AS_OF = date(2031, 3, 3)


TABLES = "ml_predictions, ml_enhancement_definitions, vfr_ml.ml_prediction_sessions, ml_outcomes"  # emptied before each test (conftest.py)


def _row(enhancement_id, ticker: str, value: str, price: str = "10.0000") -> dict:
    return {
        "id": uuid.uuid5(uuid.NAMESPACE_DNS, ticker), "ticker": ticker, "ts": datetime(2031, 3, 3, 23, tzinfo=UTC),
        "enhancement_id": enhancement_id, "horizon": "1w", "type": "direction", "value": Decimal(value),
        "confidence": Decimal("0.2000"), "price": Decimal(price), "tier": "premium", "as_of": AS_OF,
        "model_name": "vfr-1w", "model_version": "3", "expected_return": 0.0125,
    }


def test_enhancement_definition_is_created_once_and_keeps_an_operators_threshold(db):
    with db.begin() as conn:
        first = store.upsert_enhancement_definition(conn, "vfr_ml_pipelines_1w", "1w", Decimal("0.1000"))
        conn.execute(text("UPDATE ml_enhancement_definitions SET min_confidence_threshold = 0.3, is_active = false"))
        again = store.upsert_enhancement_definition(conn, "vfr_ml_pipelines_1w", "1w", Decimal("0.1000"))
        row = conn.execute(text("SELECT min_confidence_threshold, is_active, prediction_horizon FROM ml_enhancement_definitions")).one()
    assert first == again
    assert (row.min_confidence_threshold, row.is_active, row.prediction_horizon) == (Decimal("0.3000"), True, "1w")


def test_prediction_and_session_rows_round_trip(db):
    with db.begin() as conn:
        eid = store.upsert_enhancement_definition(conn, "vfr_ml_pipelines_1w", "1w", Decimal("0.1000"))
        rows = [_row(eid, "AAA", "0.60000000"), _row(eid, "BBB", "-0.45000000")]
        store.upsert_prediction_rows(conn, rows)
        store.upsert_prediction_sessions(conn, rows)
        predicted = conn.execute(text("SELECT ticker, predicted_value, prediction_type FROM ml_predictions ORDER BY ticker")).all()
        sessions = conn.execute(
            text("SELECT symbol, as_of_date, model_version, expected_return FROM vfr_ml.ml_prediction_sessions ORDER BY symbol")
        ).all()
    assert [tuple(r) for r in predicted] == [("AAA", Decimal("0.60000000"), "direction"), ("BBB", Decimal("-0.45000000"), "direction")]
    assert [tuple(r) for r in sessions] == [("AAA", AS_OF, "3", 0.0125), ("BBB", AS_OF, "3", 0.0125)]


def test_an_unchanged_rewrite_keeps_its_outcome_a_changed_one_loses_it(db):
    with db.begin() as conn:
        eid = store.upsert_enhancement_definition(conn, "vfr_ml_pipelines_1w", "1w", Decimal("0.1000"))
        rows = [_row(eid, "AAA", "0.60000000"), _row(eid, "BBB", "0.70000000")]
        store.upsert_prediction_rows(conn, rows)
        conn.execute(text("UPDATE ml_predictions SET actual_value = 0.02, direction_correct = true"))
        for r in rows:
            conn.execute(
                text(
                    "INSERT INTO ml_outcomes (prediction_id, ticker, prediction_timestamp, outcome_timestamp, days_elapsed, "
                    "predicted_direction, predicted_value, predicted_confidence, initial_price, final_price, actual_return, "
                    "actual_direction, direction_correct) VALUES (:id, :t, :ts, :ts, 7, 'UP', :v, 0.2, :p, 10.2, 0.02, 'UP', true)"
                ),
                {"id": r["id"], "t": r["ticker"], "ts": r["ts"], "v": r["value"], "p": r["price"]},
            )
        changed = [rows[0], _row(eid, "BBB", "-0.30000000")]
        store.upsert_prediction_rows(conn, changed)
        dropped = store.drop_stale_outcomes(conn, [r["id"] for r in changed])
        kept = conn.execute(text("SELECT ticker, actual_value FROM ml_predictions ORDER BY ticker")).all()
        outcomes = conn.execute(text("SELECT ticker FROM ml_outcomes")).scalars().all()
    assert dropped == 1
    assert [tuple(r) for r in kept] == [("AAA", Decimal("0.02000000")), ("BBB", None)]
    assert outcomes == ["AAA"]


def test_session_parameters_are_column_arrays_in_row_order(db):
    rows = [_row(None, "AAA", "0.6"), _row(None, "BBB", "0.7")]
    params = store.session_parameters(rows)
    assert params["ticker"] == ["AAA", "BBB"] and params["ids"] == [r["id"] for r in rows]
    assert set(params) == {"ids", "as_of", "horizon", "ticker", "model_name", "model_version", "expected_return"}
