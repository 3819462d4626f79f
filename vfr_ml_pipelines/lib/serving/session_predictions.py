"""The latest session's predictions: made by every served version and stored
(`vfr_ml.predictions`, one row per symbol, horizon and model version), then the champions'
written to VFR's `ml_predictions` (vfr_tables.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.market_data import store as market_store
from vfr_ml_pipelines.lib.serving import store
from vfr_ml_pipelines.lib.serving.live_model import model_dir
from vfr_ml_pipelines.lib.serving.live_scoring import load_scorer
from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds
from vfr_ml_pipelines.lib.serving.predict import prediction_rows, symbol_fields
from vfr_ml_pipelines.lib.serving.served_models import LIVE_ROLE, NothingToServe, ServedVersion, latest_predictions, session_vectors
from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions

log = logging.getLogger(__name__)


@dataclass
class SessionPredictions:
    as_of: date
    symbols_without_fresh_features: list[str]
    # per "{h}_{role}": model id, symbols, BUY/HOLD/SELL counts, mean expected return, load time,
    # and the inference latency: seconds to score the session's universe and map it to VFR's fields
    by_version: dict[str, dict] = field(default_factory=dict)


def predict_session(
    engine: Engine,
    registry: ModelRegistry,
    versions: list[ServedVersion],
    *,
    today: date,
    thresholds: DirectionThresholds,
    predicted_at: datetime,
    models_dir: Path | None = None,
) -> SessionPredictions:
    """Each served version's forecast for every universe symbol with a feature vector of the
    latest session, mapped to VFR's fields (`predict.prediction_rows`) and stored in one
    transaction; a re-run replaces a version's rows of that session. The live model is scored
    from its files for VFR in `models_dir` when they are there (`scoring_model`)."""
    day, features, missing = session_vectors(engine, today)
    prices = market_store.closes_on(engine, day)
    result = SessionPredictions(day, missing)
    # the model-independent part of the rows, once for every served version
    fields = symbol_fields(features, prices, feature_names=list(catalog.RAW_NAMES), as_of=day)
    with engine.begin() as conn:
        for served in versions:
            model, load_seconds, scored_from = scoring_model(registry, served, models_dir)
            scoring = time.perf_counter()
            out = model.predict_frame(features)
            rows = prediction_rows(
                features, prices, out["expected_return"].to_numpy(),
                probabilities=out["probability"].to_numpy(),
                feature_names=list(catalog.RAW_NAMES),
                thresholds=thresholds, as_of=day, horizon=served.horizon,
                model_name=served.version.name, model_version=served.version.version, predicted_at=predicted_at,
                fields=fields,
            )
            score_seconds = time.perf_counter() - scoring
            store.replace_predictions(
                conn, rows, as_of=day, horizon=served.horizon, model_name=served.version.name,
                model_version=served.version.version,
            )
            counts = rows["direction"].value_counts().to_dict()
            result.by_version[f"{served.horizon}_{served.role}"] = {
                "model": served.version.model_id,
                "symbols": len(rows),
                "buy_hold_sell": f"{counts.get('BUY', 0)}/{counts.get('HOLD', 0)}/{counts.get('SELL', 0)}",
                "mean_expected_return": float(rows["expected_return"].mean()),
                "load_seconds": round(load_seconds, 3),
                "scored_from": scored_from,
                "score_seconds": round(score_seconds, 4),
            }
    return result


# where a version's scores came from (the `{label}_scored_from` metadata)
SCORED_FROM_MLFLOW = "mlflow pyfunc"
SCORED_FROM_FILES = "model.txt for VFR's live path"


def scoring_model(registry: ModelRegistry, served: ServedVersion, models_dir: Path | None) -> tuple[Any, float, str]:
    """(model, load seconds, SCORED_FROM_*): the live model from the files `vfr_live_model`
    wrote for VFR when they are there and were written from this version's run
    (`live_scoring.load_scorer`: the same scores, its ridge clip and calibration included),
    which spares a second load of it through MLflow; every other version, and the live model
    before its files exist (the run that trains it), through MLflow."""
    if served.role == LIVE_ROLE and models_dir is not None:
        started = time.perf_counter()
        folder = model_dir(models_dir, served.version.name, served.version.version)
        scorer = load_scorer(folder, served.version.run_id)
        if scorer is not None:
            return scorer, time.perf_counter() - started, SCORED_FROM_FILES
    loaded = registry.load_serving_model(served.version.name, served.version.version)
    return loaded.model, loaded.seconds, SCORED_FROM_MLFLOW


def write_champion_predictions(engine: Engine, versions: list[ServedVersion]) -> dict[str, dict]:
    """Each champion's stored predictions of its latest day as VFR's `ml_predictions` rows, in
    one transaction; per horizon, the rows written, their day and the model. Challengers
    (shadows) stay in `vfr_ml.predictions`."""
    written: dict[str, dict] = {}
    with engine.begin() as conn:
        for served in versions:
            if not served.is_champion:
                continue
            rows = latest_predictions(engine, served)
            if rows.empty:
                raise NothingToServe(f"no stored predictions of {served.version.model_id}; materialize predictions first")
            as_of = rows["as_of_date"].iloc[0]
            written[served.horizon] = {
                "rows": write_ml_predictions(conn, rows, served.horizon, as_of),
                "as_of": str(as_of),
                "model": served.version.model_id,
            }
            log.info(f"ml_predictions, {served.horizon}: {written[served.horizon]['rows']:,} rows of "
                     f"{served.version.model_id} for {as_of}")
    return written
