"""`ml_feature_definitions` follows what the export produces: a feature no longer produced
(a price-only run after one with fundamentals and news, a former live model's inputs) is
marked inactive, its `ml_feature_store` rows stop being `valid`, VFR's own definitions are
never touched, and a feature produced again comes back. Real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.serving import feature_export

DAY = date(2026, 11, 20)
SYMBOLS = ["AAA", "BBB"]
# VFR's FeatureStore.getFeatureMatrix completeness (test_vfr_reads.FEATURE_STORE_QUERY, per ticker)
VFR_COMPLETENESS = """
WITH latest_features AS (
  SELECT DISTINCT ON (fs.ticker, fs.feature_id) fs.ticker, fs.feature_id
  FROM ml_feature_store fs INNER JOIN ml_feature_definitions fd ON fs.feature_id = fd.feature_id
  WHERE fs.ticker = ANY(:symbols) AND fs.validation_status = 'valid'
  ORDER BY fs.ticker, fs.feature_id, fs.timestamp DESC
)
SELECT ticker, COUNT(*)::float / (SELECT COUNT(*) FROM ml_feature_definitions WHERE is_active = true) AS completeness
FROM latest_features GROUP BY ticker
"""


def _export(conn, specs, day: date) -> tuple[dict, list[str]]:
    """What vfr_feature_export does with the definitions: upsert, write one value per symbol
    and feature, retire the rest."""
    ids = feature_export.upsert_feature_definitions(conn, specs, catalog.FEATURE_SET_OF, provider="csv")
    latest = pd.DataFrame([{"symbol": s, "quality_score": 1.0, **{spec.name: 0.5 for spec in specs}} for s in SYMBOLS])
    rows, _ = feature_export.feature_store_rows(latest, ids, day, "csv")
    feature_export.write_feature_store(conn, rows, day, SYMBOLS, ids)
    return ids, feature_export.retire_feature_definitions(conn, ids.values())


@pytest.fixture
def conn(make_engine):
    engine = make_engine("feature_definitions")
    with engine.begin() as connection:
        yield connection


def _active(conn) -> set[str]:
    return {r[0] for r in conn.execute(text("SELECT feature_name FROM ml_feature_definitions WHERE is_active"))}


def test_features_no_longer_produced_become_inactive_and_stop_counting(conn):
    # VFR's own definition and value, under a name and id that are not ours
    vfr_id = uuid.uuid4()
    conn.execute(text("INSERT INTO ml_feature_definitions (feature_id, feature_name, feature_type, data_type, "
                      "calculation_frequency) VALUES (:id, 'vfr_own_macro', 'macro', 'float', '1d')"), {"id": vfr_id})
    conn.execute(text("INSERT INTO ml_feature_store (ticker, timestamp, feature_id, value, validation_status) "
                      "VALUES ('AAA', '2026-11-19', :id, 1, 'valid')"), {"id": vfr_id})

    every = catalog.RAW_SPECS
    priced = tuple(spec for spec in every if spec.source == "prices")  # the price-only export
    _, retired = _export(conn, every, date(2026, 11, 19))  # a run with fundamentals and news
    assert retired == []
    assert _active(conn) == {s.name for s in every} | {"vfr_own_macro"}

    ids, retired = _export(conn, priced, DAY)  # then prices only
    sourceless = {s.name for s in every} - {s.name for s in priced}
    assert set(retired) == sourceless and len(sourceless) > 40
    assert _active(conn) == {s.name for s in priced} | {"vfr_own_macro"}
    statuses = conn.execute(text(
        "SELECT d.feature_name, s.validation_status FROM ml_feature_store s JOIN ml_feature_definitions d USING (feature_id)"
    )).all()
    assert {name for name, status in statuses if status == "stale"} == sourceless
    assert ("vfr_own_macro", "valid") in statuses
    # VFR's completeness: every produced feature plus its own over the active definitions,
    # never above 1 (the old rows of the retired features no longer count)
    completeness = dict(conn.execute(text(VFR_COMPLETENESS), {"symbols": SYMBOLS}).all())
    active = len(priced) + 1
    assert completeness == pytest.approx({"AAA": active / active, "BBB": len(priced) / active})

    # the sources come back: so do the definitions, and a re-run retires nothing more
    _, retired = _export(conn, every, DAY)
    assert retired == [] and _active(conn) == {s.name for s in every} | {"vfr_own_macro"}
    assert feature_export.retire_feature_definitions(conn, ids.values()) == sorted(sourceless)


def test_our_ids_are_name_based_so_a_vfr_definition_under_our_name_is_not_ours(conn):
    # a definition under one of our feature names but with an id that is not ours (VFR
    # created it) is VFR's: retiring what we no longer produce leaves it alone
    vfr_id = uuid.uuid4()
    conn.execute(text("INSERT INTO ml_feature_definitions (feature_id, feature_name, feature_type, data_type, "
                      "calculation_frequency) VALUES (:id, 'rsi_14', 'technical', 'float', '1d')"), {"id": vfr_id})
    assert feature_export.our_feature_id("rsi_14") != vfr_id
    assert feature_export.retire_feature_definitions(conn, []) == []
    assert "rsi_14" in _active(conn)
