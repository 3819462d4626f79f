"""The backtests domain's SQL (reads only): the candidates' stored walk-forward predictions
(`vfr_ml.walk_forward_predictions`, written by training: `lib/models/store.py`), the
universe's sectors, and the served predictions (VFR's `ml_predictions` rows of this project,
joined to `vfr_ml.ml_prediction_sessions`), all of them or those with realized outcomes."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.serving.vfr_tables import project_enhancement_names
from vfr_ml_pipelines.lib.warehouse import read_frame


def walk_forward_predictions(engine: Engine, horizon: str, segment: str = "test") -> pd.DataFrame:
    """One horizon's stored out-of-sample predictions of `segment` (every candidate):
    candidate, fold, segment, trade_date, symbol, score, probability, expected_return,
    label, mlflow_run_id, model_name, model_version."""
    return read_frame(
        engine,
        "SELECT candidate, fold, segment, trade_date, symbol, score, probability, expected_return, label, "
        "mlflow_run_id, model_name, model_version FROM vfr_ml.walk_forward_predictions "
        "WHERE horizon = :h AND segment = :s ORDER BY candidate, trade_date, symbol",
        {"h": horizon, "s": segment},
    )


def universe_sectors(engine: Engine) -> pd.Series:
    """symbol -> sector of the stored universe."""
    rows = read_frame(engine, "SELECT symbol, sector FROM vfr_ml.universe ORDER BY symbol")
    return rows.set_index("symbol")["sector"]


_PROJECT_ROWS = (
    "FROM ml_predictions p JOIN vfr_ml.ml_prediction_sessions s ON s.prediction_id = p.prediction_id "
    "WHERE p.enhancement_id IN (SELECT enhancement_id FROM ml_enhancement_definitions WHERE enhancement_name = ANY(:names)) "
)


def served_predictions(engine: Engine) -> pd.DataFrame:
    """Every served prediction of this project, outcome known or not: horizon, as_of_date,
    symbol, expected_return (the served book's scores for `live_record.live_backtest`)."""
    return read_frame(
        engine,
        "SELECT s.horizon, s.as_of_date, s.symbol, s.expected_return " + _PROJECT_ROWS + "ORDER BY s.horizon, s.as_of_date, s.symbol",
        {"names": project_enhancement_names()},
    )


def live_outcomes(engine: Engine) -> pd.DataFrame:
    """The served predictions of this project whose outcome is known: horizon, as_of_date,
    symbol, expected_return (the forecast served), actual_return (the realized forward
    return) and direction_correct (VFR's rule; NULL for a NEUTRAL call)."""
    return read_frame(
        engine,
        "SELECT s.horizon, s.as_of_date, s.symbol, s.expected_return, p.actual_value::float8 AS actual_return, "
        "p.direction_correct " + _PROJECT_ROWS + "AND p.actual_value IS NOT NULL ORDER BY s.horizon, s.as_of_date, s.symbol",
        {"names": project_enhancement_names()},
    )
