"""The models domain's SQL: the synthetic market's oracle that training measures models
against, the log of champion changes (`vfr_ml.champion_history`; MLflow aliases keep no
history, so rollback reads it from here), and the out-of-sample walk-forward predictions of
every candidate (`vfr_ml.walk_forward_predictions`, which the backtests read). `ml_models` rows are VFR's table, written by
`lib/serving/vfr_tables.py`."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from sqlalchemy import Connection, Engine, text

from vfr_ml_pipelines.lib.models.registry import RegisteredVersion
from vfr_ml_pipelines.lib.warehouse import read_frame
from vfr_ml_pipelines.lib.warehouse.loading import copy_frame

WALK_FORWARD_TABLE = "vfr_ml.walk_forward_predictions"
WALK_FORWARD_KEY = ["horizon", "candidate", "segment", "trade_date", "symbol"]


def oracle_expected_returns(engine: Engine, horizon: str) -> pd.DataFrame | None:
    """The oracle's expected return per (trade_date, symbol) of `horizon`; None when the
    market data provider has no oracle (only the synthetic market writes one)."""
    oracle = read_frame(
        engine,
        "SELECT trade_date, symbol, expected_return FROM vfr_ml_oracle.expected_returns WHERE horizon = :h",
        {"h": horizon},
    )
    return None if oracle.empty else oracle


def record_champion_change(
    conn: Connection, *, horizon: str, model_name: str, version: str, previous_version: str | None,
    action: str, reason: str, run_id: str | None,
) -> None:
    """Append one change (`action`: promote | rollback) to the horizon's champion history."""
    conn.execute(
        text(
            "INSERT INTO vfr_ml.champion_history (horizon, model_name, model_version, previous_version, action, reason, dagster_run_id) "
            "VALUES (:h, :n, :v, :p, :a, :r, :run)"
        ),
        {"h": horizon, "n": model_name, "v": version, "p": previous_version, "a": action, "r": reason, "run": run_id},
    )


def champion_history_versions(conn: Connection, horizon: str, model_name: str) -> list[str]:
    """The versions of `model_name` each recorded change of `horizon` put in place, newest
    first (a horizon's history also holds its live model's, `live_training.py`)."""
    return list(
        conn.execute(
            text("SELECT model_version FROM vfr_ml.champion_history WHERE horizon = :h AND model_name = :m ORDER BY id DESC"),
            {"h": horizon, "m": model_name},
        ).scalars()
    )


def walk_forward_rows(horizon: str, predictions: Mapping[str, pd.DataFrame], versions: Mapping[str, RegisteredVersion]) -> pd.DataFrame:
    """The rows of `vfr_ml.walk_forward_predictions` for one training: each candidate's
    predictions (fold, segment, trade_date, symbol, score, probability, expected_return and
    the label column `forward_return`) with the version it was registered as. Where folds'
    windows overlap, the latest fold's row is kept (as `out_of_sample_scores` trades it)."""
    parts = []
    for name, frame in predictions.items():
        version = versions[name]
        rows = frame.rename(columns={"forward_return": "label"}).sort_values("fold", kind="stable")
        rows = rows.drop_duplicates(["segment", "trade_date", "symbol"], keep="last")
        parts.append(
            rows.assign(horizon=horizon, candidate=name, mlflow_run_id=version.run_id, model_name=version.name, model_version=str(version.version))
        )
    columns = [*WALK_FORWARD_KEY, "fold", "score", "probability", "expected_return", "label", "mlflow_run_id", "model_name", "model_version"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True).loc[:, columns]
    out["trade_date"] = pd.to_datetime(out["trade_date"]).dt.date
    return out.sort_values(WALK_FORWARD_KEY, kind="stable").reset_index(drop=True)


def replace_walk_forward_predictions(conn: Connection, horizon: str, rows: pd.DataFrame) -> int:
    """Replace every stored walk-forward prediction of `horizon` by `rows` (one training's),
    in the caller's transaction: a training of a horizon supersedes all of its predictions."""
    if not rows.empty and set(rows["horizon"]) != {horizon}:
        raise ValueError(f"replace_walk_forward_predictions({horizon!r}): rows of other horizons {sorted(set(rows['horizon']) - {horizon})}")
    conn.execute(text(f"DELETE FROM {WALK_FORWARD_TABLE} WHERE horizon = :h"), {"h": horizon})
    return copy_frame(conn, WALK_FORWARD_TABLE, rows)
