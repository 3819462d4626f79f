"""The models domain's SQL: the synthetic market's oracle that training measures models
against, and the log of champion changes (`vfr_ml.champion_history`; MLflow aliases keep no
history, so rollback reads it from here). `ml_models` rows are VFR's table, written by
`lib/serving/vfr_tables.py`."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Engine, text

from vfr_ml_pipelines.lib.warehouse import read_frame


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


def champion_history_versions(conn: Connection, horizon: str) -> list[str]:
    """The versions each recorded change of `horizon` put in place, newest first."""
    return list(
        conn.execute(
            text("SELECT model_version FROM vfr_ml.champion_history WHERE horizon = :h ORDER BY id DESC"), {"h": horizon}
        ).scalars()
    )
