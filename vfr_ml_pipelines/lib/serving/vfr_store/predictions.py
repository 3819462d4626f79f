"""The SQL of VFR's `ml_enhancement_definitions` and `ml_predictions`, and of the session
rows beside them (`vfr_ml.ml_prediction_sessions`, which VFR does not read). Rows are
built and fitted to their columns by `lib/serving/vfr_tables.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection, text

_UPSERT_ENHANCEMENT = """
INSERT INTO ml_enhancement_definitions
    (enhancement_name, enhancement_type, target_factor, prediction_horizon,
     min_confidence_threshold, is_active, tier_requirement)
VALUES (:name, 'direction_classification', 'composite', :horizon, :threshold, true, 'premium')
ON CONFLICT (enhancement_name) DO UPDATE SET
    enhancement_type = EXCLUDED.enhancement_type,
    target_factor = EXCLUDED.target_factor,
    prediction_horizon = EXCLUDED.prediction_horizon,
    is_active = true
RETURNING enhancement_id
"""

# a re-written row keeps its outcome only when its call and price did not change
_KEPT_WHEN_UNCHANGED = ("actual_value", "actual_timestamp", "prediction_error", "direction_correct")
UPSERT_PREDICTION = """
INSERT INTO ml_predictions AS p
    (prediction_id, ticker, prediction_timestamp, enhancement_id, prediction_horizon,
     prediction_type, predicted_value, confidence_score, current_price, cache_hit, tier_used)
VALUES (:id, :ticker, :ts, :enhancement_id, :horizon, :type, :value, :confidence, :price, false, :tier)
ON CONFLICT (prediction_id) DO UPDATE SET
    prediction_timestamp = EXCLUDED.prediction_timestamp,
    prediction_type = EXCLUDED.prediction_type,
    predicted_value = EXCLUDED.predicted_value,
    confidence_score = EXCLUDED.confidence_score,
    current_price = EXCLUDED.current_price,
""" + ",\n".join(
    f"    {c} = CASE WHEN p.predicted_value = EXCLUDED.predicted_value AND p.current_price = EXCLUDED.current_price "
    f"THEN p.{c} END"
    for c in _KEPT_WHEN_UNCHANGED
)

# one statement for all rows (arrays unnested server-side): 5,000 single-row executions cost
# ten times more
UPSERT_SESSION = """
INSERT INTO vfr_ml.ml_prediction_sessions AS s
    (prediction_id, as_of_date, horizon, symbol, model_name, model_version, expected_return)
SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:as_of AS date[]), CAST(:horizon AS varchar[]),
                     CAST(:ticker AS varchar[]), CAST(:model_name AS text[]), CAST(:model_version AS text[]),
                     CAST(:expected_return AS double precision[]))
ON CONFLICT (prediction_id) DO UPDATE SET
    model_name = EXCLUDED.model_name, model_version = EXCLUDED.model_version,
    expected_return = EXCLUDED.expected_return
"""

# a re-written prediction whose call changed loses its outcome (fill_outcomes recomputes it)
DROP_STALE_OUTCOMES = """
DELETE FROM ml_outcomes o USING ml_predictions p
WHERE o.prediction_id = p.prediction_id AND p.prediction_id = ANY(:ids)
  AND (o.predicted_value IS DISTINCT FROM p.predicted_value OR o.initial_price IS DISTINCT FROM p.current_price)
"""


def upsert_enhancement_definition(conn: Connection, name: str, horizon: str, threshold: Decimal) -> uuid.UUID:
    """The id of definition `name`, created when missing (min_confidence_threshold
    `threshold`); an existing row gets its identity (type, factor, horizon) back and is
    marked active, its tunables (weight, threshold, tier) left as they are."""
    return conn.execute(text(_UPSERT_ENHANCEMENT), {"name": name, "horizon": horizon, "threshold": threshold}).scalar_one()


def upsert_prediction_rows(conn: Connection, rows: Sequence[dict]) -> None:
    """`ml_predictions` rows by prediction_id (keys of `vfr_tables.ml_prediction_records`);
    an updated row whose predicted_value or current_price changed loses its outcome."""
    if rows:
        conn.execute(text(UPSERT_PREDICTION), list(rows))


def session_parameters(rows: Sequence[dict]) -> dict[str, list]:
    """The column arrays of UPSERT_SESSION from `vfr_tables.ml_prediction_records`."""
    return {
        "ids": [r["id"] for r in rows],
        **{k: [r[k] for r in rows] for k in ("as_of", "horizon", "ticker", "model_name", "model_version", "expected_return")},
    }


def upsert_prediction_sessions(conn: Connection, rows: Sequence[dict]) -> None:
    """The session, model and expected return of each row, in `vfr_ml.ml_prediction_sessions`."""
    if rows:
        conn.execute(text(UPSERT_SESSION), session_parameters(rows))


def drop_stale_outcomes(conn: Connection, prediction_ids: Sequence[uuid.UUID]) -> int:
    """Delete the `ml_outcomes` rows of these predictions whose predicted_value or
    initial_price no longer matches the prediction; returns how many."""
    return conn.execute(text(DROP_STALE_OUTCOMES), {"ids": list(prediction_ids)}).rowcount
