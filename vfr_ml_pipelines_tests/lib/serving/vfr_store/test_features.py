"""vfr_store/features.py on a migrated PostgreSQL database of this module's own: definitions,
their retirement, and the day's ml_feature_store rows (plain COPY and the input matrix),
read back the way VFR's FeatureStore reads them (latest `valid` row per ticker and feature)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.vfr_store import features as store

DAY1, DAY2 = datetime(2031, 3, 3, 21, tzinfo=UTC), datetime(2031, 3, 4, 21, tzinfo=UTC)


TABLES = "ml_feature_store, ml_feature_definitions"  # emptied before each test (conftest.py)


def _define(conn, name: str, description: str = "d") -> uuid.UUID:
    return store.upsert_feature_definition(
        conn, feature_id=uuid.uuid5(uuid.NAMESPACE_DNS, name), name=name, feature_type="technical",
        description=description, sources=["test", "technical-v2"], version=2, normalization_json='{"mean":1.5}',
    )


def _latest_valid(conn) -> dict[tuple[str, str], Decimal]:
    rows = conn.execute(text(
        "SELECT DISTINCT ON (fs.ticker, fs.feature_id) fs.ticker, fd.feature_name, fs.value FROM ml_feature_store fs "
        "JOIN ml_feature_definitions fd USING (feature_id) WHERE fs.validation_status = 'valid' "
        "ORDER BY fs.ticker, fs.feature_id, fs.timestamp DESC"
    )).all()
    return {(r.ticker, r.feature_name): r.value for r in rows}


def test_definition_upsert_keeps_the_id_and_reactivates(db):
    with db.begin() as conn:
        first = _define(conn, "rsi_14")
        conn.execute(text("UPDATE ml_feature_definitions SET is_active = false"))
        again = _define(conn, "rsi_14", description="changed")
        row = conn.execute(text("SELECT is_active, description, normalization_params, source_apis FROM ml_feature_definitions")).one()
        assert store.active_definitions(conn) == [(first, "rsi_14")]
    assert first == again == uuid.uuid5(uuid.NAMESPACE_DNS, "rsi_14")
    assert (row.is_active, row.description, row.normalization_params, row.source_apis) == (True, "changed", {"mean": 1.5}, ["test", "technical-v2"])


def test_retired_definitions_go_inactive_and_their_rows_stale(db):
    with db.begin() as conn:
        kept, gone = _define(conn, "rsi_14"), _define(conn, "news_sentiment")
        rows = pd.DataFrame({"ticker": ["AAA", "AAA"], "timestamp": [DAY1, DAY1], "feature_id": [str(kept), str(gone)],
                             "value": [50.0, 0.2], "confidence_score": 0.9, "data_quality_score": 0.9,
                             "source_provider": "test", "validation_status": "valid"})
        assert store.copy_feature_rows(conn, rows) == 2
        store.retire_definitions(conn, [gone])
        store.retire_definitions(conn, [])
        assert store.active_definitions(conn) == [(kept, "rsi_14")]
        assert _latest_valid(conn) == {("AAA", "rsi_14"): Decimal("50.00000000")}


def test_delete_removes_only_that_stamp_tickers_and_features(db):
    with db.begin() as conn:
        a, b = _define(conn, "f_a"), _define(conn, "f_b")
        rows = pd.DataFrame([
            {"ticker": t, "timestamp": ts, "feature_id": str(f), "value": 1.0, "confidence_score": 0.9,
             "data_quality_score": 0.9, "source_provider": "test", "validation_status": "valid"}
            for t in ("AAA", "BBB") for ts in (DAY1, DAY2) for f in (a, b)
        ])
        store.copy_feature_rows(conn, rows)
        assert store.copy_feature_rows(conn, rows.iloc[0:0]) == 0
        assert store.delete_feature_rows(conn, DAY2, ["AAA"], [a]) == 1
        left = conn.execute(text("SELECT count(*) FROM ml_feature_store")).scalar_one()
    assert left == 7


def test_input_matrix_rows_join_ids_by_position(db):
    with db.begin() as conn:
        ids = [_define(conn, "vfr_live_x1"), _define(conn, "vfr_live_x2")]
        stage = pd.DataFrame({"ticker": ["AAA", "AAA", "BBB", "BBB"], "input": [1, 2, 1, 2],
                              "value": [0.5, -1e9, 2.0, 3.25], "quality": [0.88, 0.88, 0.9, 0.9]})
        assert store.insert_input_matrix(conn, stage, DAY1, "test", ids) == 4
        # a second call in the same transaction starts from an empty stage
        assert store.insert_input_matrix(conn, stage.iloc[:1].assign(value=0.75), DAY2, "test", ids) == 1
        latest = _latest_valid(conn)
        quality = conn.execute(text("SELECT DISTINCT ticker, data_quality_score, confidence_score, source_provider FROM ml_feature_store ORDER BY ticker")).all()
    assert latest == {("AAA", "vfr_live_x1"): Decimal("0.75000000"), ("AAA", "vfr_live_x2"): Decimal("-1000000000.00000000"),
                      ("BBB", "vfr_live_x1"): Decimal("2.00000000"), ("BBB", "vfr_live_x2"): Decimal("3.25000000")}
    assert [tuple(r) for r in quality] == [("AAA", Decimal("0.8800"), Decimal("0.8800"), "test"), ("BBB", Decimal("0.9000"), Decimal("0.9000"), "test")]
