"""The SQL of VFR's `ml_feature_definitions` and `ml_feature_store` (VFR's FeatureStore reads
the latest `valid` row per ticker and feature). The rows and definitions are built by
`lib/serving/feature_export.py` (raw features) and `lib/serving/live_path.py` (the live
model's inputs)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, text

from vfr_ml_pipelines.lib.warehouse.loading import copy_frame

_UPSERT_DEFINITION = """
INSERT INTO ml_feature_definitions (feature_id, feature_name, feature_type, data_type, description,
    source_apis, calculation_frequency, is_active, feature_version, normalization_params)
VALUES (:id, :name, :type, 'float', :description, :sources, '1d', true, :version, CAST(:norm AS jsonb))
ON CONFLICT (feature_name) DO UPDATE SET feature_type = EXCLUDED.feature_type,
    description = EXCLUDED.description, source_apis = EXCLUDED.source_apis,
    feature_version = EXCLUDED.feature_version, normalization_params = EXCLUDED.normalization_params,
    is_active = true
RETURNING feature_id
"""


def upsert_feature_definition(
    conn: Connection, *, feature_id: uuid.UUID, name: str, feature_type: str, description: str,
    sources: Sequence[str], version: int, normalization_json: str,
) -> uuid.UUID:
    """One definition by its unique name, (re)activated; returns its id (an existing row
    keeps the id it has)."""
    return conn.execute(
        text(_UPSERT_DEFINITION),
        {"id": feature_id, "name": name, "type": feature_type, "description": description,
         "sources": list(sources), "version": version, "norm": normalization_json},
    ).scalar_one()


def active_definitions(conn: Connection) -> list[tuple[uuid.UUID, str]]:
    """(feature_id, feature_name) of every active definition, VFR's included."""
    return [tuple(r) for r in conn.execute(text("SELECT feature_id, feature_name FROM ml_feature_definitions WHERE is_active")).all()]


def retire_definitions(conn: Connection, feature_ids: Sequence[uuid.UUID]) -> None:
    """These definitions become inactive and their `valid` rows `stale` (VFR's FeatureStore
    reads the latest valid row of a feature whether its definition is active or not)."""
    if not feature_ids:
        return
    ids = list(feature_ids)
    conn.execute(text("UPDATE ml_feature_definitions SET is_active = false WHERE feature_id = ANY(:ids)"), {"ids": ids})
    conn.execute(
        text("UPDATE ml_feature_store SET validation_status = 'stale' WHERE feature_id = ANY(:ids) AND validation_status = 'valid'"),
        {"ids": ids},
    )


def delete_feature_rows(conn: Connection, stamp: datetime, tickers: Sequence[str], feature_ids: Sequence[uuid.UUID | str]) -> int:
    """Delete the rows stamped `stamp` of these tickers and features; returns how many."""
    return conn.execute(
        text("DELETE FROM ml_feature_store WHERE timestamp = :ts AND ticker = ANY(:tickers) AND feature_id = ANY(:ids)"),
        {"ts": stamp, "tickers": list(tickers), "ids": [str(i) for i in feature_ids]},
    ).rowcount


def copy_feature_rows(conn: Connection, rows: pd.DataFrame) -> int:
    """Append complete `ml_feature_store` rows (its column names) by COPY; returns how many."""
    return 0 if rows.empty else copy_frame(conn, "ml_feature_store", rows)


_STAGE = "vfr_live_input_stage"


def insert_input_matrix(
    conn: Connection, stage: pd.DataFrame, stamp: datetime, provider: str, feature_ids: Sequence[uuid.UUID | str]
) -> int:
    """`valid` rows stamped `stamp` from `stage` (ticker, input, value, quality: input is the
    1-based position of the row's feature in `feature_ids`), confidence and data quality both
    the row's quality. The values go as one compact COPY and the server joins the constant
    columns in: building a full CSV line per row cost more than PostgreSQL's insert itself.
    Returns the rows inserted."""
    conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (ticker text, input int, value numeric, quality numeric) ON COMMIT DROP"))
    conn.execute(text(f"TRUNCATE {_STAGE}"))
    copy_frame(conn, _STAGE, stage)
    return conn.execute(
        text(
            "INSERT INTO ml_feature_store (ticker, timestamp, feature_id, value, confidence_score, data_quality_score, "
            "source_provider, validation_status) "
            f"SELECT s.ticker, :ts, ids.id, s.value, s.quality, s.quality, :provider, 'valid' "
            f"FROM {_STAGE} s JOIN unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS ids(id, input) USING (input)"
        ),
        {"ts": stamp, "provider": provider, "ids": [str(i) for i in feature_ids]},
    ).rowcount
