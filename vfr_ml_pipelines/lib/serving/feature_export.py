"""The latest feature vectors in VFR's shapes: `ml_feature_definitions` and
`ml_feature_store` rows (VFR's FeatureStore reads the latest row per ticker and feature with
validation_status = 'valid') and `MLFeatureVector` payloads for Redis. The SQL is in `vfr_store/features.py`."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import pandas as pd
from sqlalchemy import Connection

from vfr_ml_pipelines.lib.features.spec import FeatureSpec
from vfr_ml_pipelines.lib.serving.payloads import row_quality
from vfr_ml_pipelines.lib.serving.vfr_store import features as features_store
from vfr_ml_pipelines.lib.serving.vfr_tables import fit_decimal, prediction_timestamp

# decimal(20,8): anything at or above 10^12 in magnitude cannot be stored
MAX_STORABLE = 1e12
_FEATURE_NAMESPACE = uuid.UUID("0c8f6a1e-4f4e-4a43-9a53-2f1d3f0b7c21")


def feature_version(feature_set: str) -> int:
    """`technical-v2` -> 2 (VFR's feature_version is an integer)."""
    match = re.search(r"v(\d+)$", feature_set)
    return int(match.group(1)) if match else 1


def our_feature_id(feature_name: str) -> uuid.UUID:
    """The id this project gives the definition of `feature_name` (a name-based UUID in our
    namespace): a definition whose id is not this one is VFR's own, never touched."""
    return uuid.uuid5(_FEATURE_NAMESPACE, feature_name)


def upsert_feature_definitions(
    conn: Connection, specs: Sequence[FeatureSpec], versions: Mapping[str, str], provider: str,
    normalization: Mapping[str, dict] | None = None,
) -> dict[str, uuid.UUID]:
    """One `ml_feature_definitions` row per feature (by its unique name); returns name -> id.
    `versions` maps feature name -> its feature set (for feature_version)."""
    ids: dict[str, uuid.UUID] = {}
    for spec in specs:
        ids[spec.name] = features_store.upsert_feature_definition(
            conn,
            feature_id=our_feature_id(spec.name),
            name=spec.name,
            feature_type=spec.feature_type,
            description=spec.description,
            sources=[provider, spec.source],
            version=feature_version(versions.get(spec.name, "v1")),
            normalization_json=pd.Series((normalization or {}).get(spec.name, {}), dtype=object).to_json(),
        )
    return ids


def retire_feature_definitions(conn: Connection, produced: Iterable[uuid.UUID]) -> list[str]:
    """Mark inactive every active definition of ours that this export did not produce
    (`produced`: the ids just upserted), e.g. the fundamental and news features of a
    price-only run after a run that had them, or the inputs of a live model no longer
    deployed; returns their names, sorted. VFR divides its completeness by all active
    definitions, so a stale active one lowers every symbol's completeness. Their
    `ml_feature_store` rows become `stale`: VFR's FeatureStore counts the latest `valid` row
    of every feature joined to its definition, active or not, so old valid rows would
    still count. VFR's own definitions (ids not ours) are left alone. A feature produced
    again later is reactivated by `upsert_feature_definitions`."""
    keep = set(produced)
    retired = [(i, name) for i, name in features_store.active_definitions(conn) if i == our_feature_id(name) and i not in keep]
    features_store.retire_definitions(conn, [i for i, _ in retired])
    return sorted(name for _, name in retired)


def feature_store_rows(
    latest: pd.DataFrame, feature_ids: Mapping[str, uuid.UUID], day: date, provider: str,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[pd.DataFrame, int]:
    """`ml_feature_store` rows for one day: missing and non-finite values are left out (and
    counted); values outside their feature's plausible range or too large for decimal(20,8)
    are written as `invalid`, the rest as `valid`. confidence_score and data_quality_score
    (which VFR's FeatureStore averages into the vector's qualityScore) are the row's
    `payloads.row_quality` qualityScore over the exported features, the number the Redis
    vector and the prediction payload carry. Returns (rows, skipped)."""
    stamp = prediction_timestamp(day)
    records = []
    skipped = 0
    for rec in latest.to_dict("records"):
        row = row_quality(rec["symbol"], rec, list(feature_ids), rec.get("quality_score"))
        quality = fit_decimal(row.quality_score, 5, 4, f"{rec['symbol']} quality")
        for name, feature_id in feature_ids.items():
            value = rec.get(name)
            if value is None or not math.isfinite(float(value)):
                skipped += 1
                continue
            value = float(value)
            low, high = (ranges or {}).get(name, (-math.inf, math.inf))
            valid = abs(value) < MAX_STORABLE and low <= value <= high
            records.append(
                {
                    "ticker": rec["symbol"].upper(),
                    "timestamp": stamp,
                    "feature_id": str(feature_id),
                    "value": round(value, 8) if abs(value) < MAX_STORABLE else None,
                    "confidence_score": float(quality),
                    "data_quality_score": float(quality),
                    "source_provider": provider,
                    "validation_status": "valid" if valid else "invalid",
                }
            )
    return pd.DataFrame.from_records(records), skipped


def write_feature_store(
    conn: Connection, rows: pd.DataFrame, day: date, tickers: Sequence[str], feature_ids: Mapping[str, uuid.UUID]
) -> int:
    """Replace this project's rows of `day` for `tickers` (a value that became missing must
    not leave its earlier row behind), then insert `rows`; one transaction (the caller's)."""
    features_store.delete_feature_rows(conn, prediction_timestamp(day), [t.upper() for t in tickers], list(feature_ids.values()))
    return features_store.copy_feature_rows(conn, rows)
