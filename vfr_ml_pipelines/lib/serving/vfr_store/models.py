"""The SQL of VFR's `ml_models` (the registry mirror, and what VFR's live ensemble runs:
every `deployed` row) and of the kill switch's record `vfr_ml.live_path_switch`. Which row
becomes what is decided by `lib/models/champions.py` and `lib/serving/live_path.py`."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection, text

_UPSERT_MODEL = """
INSERT INTO ml_models (model_name, model_version, model_type, objective, target_variable,
                       prediction_horizon, validation_score, test_score, status)
VALUES (:name, :version, :type, 'price_prediction', :target, :horizon, :vs, :ts, :status)
ON CONFLICT (model_name, model_version) DO UPDATE SET
    status = EXCLUDED.status, validation_score = EXCLUDED.validation_score,
    test_score = EXCLUDED.test_score
"""


def upsert_model_row(
    conn: Connection, *, name: str, version: str, model_type: str, horizon: str, target: str,
    validation_score: Decimal | None, test_score: Decimal | None, status: str,
) -> None:
    """One `ml_models` row by (name, version); an existing row gets the new status and scores."""
    conn.execute(
        text(_UPSERT_MODEL),
        {"name": name, "version": version, "type": model_type, "target": target, "horizon": horizon,
         "vs": validation_score, "ts": test_score, "status": status},
    )


def deprecate_other_deployed(conn: Connection, name: str, version: str) -> int:
    """Every other `deployed` version of model `name` becomes `deprecated`; returns how many."""
    return conn.execute(
        text(
            "UPDATE ml_models SET status = 'deprecated' "
            "WHERE model_name = :name AND model_version <> :version AND status = 'deployed'"
        ),
        {"name": name, "version": version},
    ).rowcount


def demote_deployed(conn: Connection, names: Sequence[str], status: str, keep: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """Every `deployed` row of the models `names` (but `keep`, a (name, version)) gets
    `status`; returns their (name, version), sorted."""
    rows = conn.execute(
        text(
            "UPDATE ml_models SET status = :status, updated_at = now() "
            "WHERE model_name = ANY(:names) AND status = 'deployed' "
            "AND NOT (model_name = :keep_name AND model_version = :keep_version) "
            "RETURNING model_name, model_version"
        ),
        {"status": status, "names": list(names), "keep_name": keep[0] if keep else "", "keep_version": keep[1] if keep else ""},
    ).all()
    return sorted((r.model_name, r.model_version) for r in rows)


def record_switched_off(conn: Connection, models: Sequence[tuple[str, str]]) -> None:
    """Open a kill-switch record per (name, version) the switch took out of `deployed`."""
    if models:
        conn.execute(
            text("INSERT INTO vfr_ml.live_path_switch (model_name, model_version) VALUES (:n, :v)"),
            [{"n": name, "v": version} for name, version in models],
        )


def close_switch_records(conn: Connection) -> list[tuple[str, str]]:
    """Mark every open kill-switch record restored; returns their distinct (name, version), sorted."""
    rows = conn.execute(
        text("UPDATE vfr_ml.live_path_switch SET restored_at = now() WHERE restored_at IS NULL RETURNING model_name, model_version")
    ).all()
    return sorted({(r.model_name, r.model_version) for r in rows})


def deployed_models(conn: Connection) -> list[tuple[str, str]]:
    """Every `deployed` row (ours and VFR's), as VFR's `ModelRegistry.getDeployedModels` lists
    them (`ORDER BY created_at DESC`)."""
    rows = conn.execute(
        text("SELECT model_name, model_version FROM ml_models WHERE status = 'deployed' ORDER BY created_at DESC")
    ).all()
    return [(r.model_name, r.model_version) for r in rows]
