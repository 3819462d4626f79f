"""Building and running the pipeline for tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import redis
from sqlalchemy import Engine

from vfr_ml_pipelines.definitions import ALL_ASSETS, ALL_CHECKS
from vfr_ml_pipelines.defs.resources import (
    FeatureStoreResource,
    MlflowResource,
    PromotionPolicyResource,
    RedisResource,
    SyntheticMarketDataResource,
    VfrModelsResource,
    WarehouseResource,
)
from vfr_ml_pipelines.defs.pipeline.runs import range_tags
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine

AS_OF = "2026-11-20"  # a Friday
N_SYMBOLS = 25
HISTORY_START = "2025-03-03"


def migrated_engine(url: str) -> Engine:
    """An engine on `url` with every migration applied (the caller disposes of it)."""
    engine = create_warehouse_engine(url)
    apply_migrations(engine, settings.sql_dir())
    return engine


def pipeline_resources(database_url: str, redis_url: str, key_prefix: str, mlflow_state: Path, **market: object) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=database_url),
        "redis": RedisResource(redis_url=redis_url, key_prefix=key_prefix),
        "mlflow": MlflowResource(state_dir=str(mlflow_state)),
        "feature_store": FeatureStoreResource(root=str(mlflow_state / "feature_store")),
        "promotion_policy": PromotionPolicyResource(),
        "vfr_models": VfrModelsResource(models_dir=str(mlflow_state / "vfr_models")),
        "market_data": SyntheticMarketDataResource(
            n_symbols=market.get("n_symbols", N_SYMBOLS),
            history_start=market.get("history_start", HISTORY_START),
            as_of=market.get("as_of", AS_OF),
            shift_start=market.get("shift_start"),
        ),
    }


# Training settings for tests: the full walk-forward, canaries and registry path, with a
# short Optuna search (the default run tunes with 10 trials).
FAST_TRAINING = {"tuning_trials": 2, "tuning_timeout_seconds": 60.0}


def training_run_config(**overrides: object) -> dict:
    settings = {**FAST_TRAINING, **overrides}
    return {"ops": {**{f"train_{h}_models": {"config": settings} for h in HORIZONS}, "live_1w_model": {"config": settings}}}


def materialize_range(resources: dict, start: str = HISTORY_START, end: str = AS_OF, selection=None) -> dg.ExecuteInProcessResult:
    """Every asset and check over sessions start..end in one run (as the catch-up run does)."""
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], resources=resources, tags=range_tags(start, end), selection=selection,
        run_config=training_run_config() if selection is None else None,
    )


@contextmanager
def materialized_pipeline(database_url: str, redis_url: str, redis_client: redis.Redis, state: Path, label: str) -> Iterator[dict]:
    """Every asset materialized once into `database_url` (an empty database of the caller's),
    a Redis key prefix of its own (deleted afterwards) and MLflow and the feature store under
    `state`: a pipeline nothing else writes to."""
    prefix = f"vfrtest-{label}-{secrets.token_hex(3)}:veritak:mcp:"
    resources = pipeline_resources(database_url, redis_url, prefix, state)
    result = materialize_range(resources)
    assert result.success
    engine = create_warehouse_engine(database_url)
    try:
        yield {
            "resources": resources, "engine": engine, "prefix": prefix, "state": state,
            "tracking_uri": resources["mlflow"].registry.tracking_uri, "result": result,
        }
    finally:
        engine.dispose()
        keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            redis_client.delete(*keys)


def prediction_frame(rows: list[tuple[str, float, float, float]], as_of, model_version: str = "1"):
    """Rows as `predict.prediction_rows` makes them, from (symbol, current_price,
    expected_return, confidence): probability 0.5 + sign(expected) x confidence / 2 (so the
    fields agree), direction by the default 0.55 / 0.45 thresholds, made 2 hours after the
    session's close."""
    from datetime import timedelta

    import numpy as np
    import pandas as pd

    from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds, direction_for
    from vfr_ml_pipelines.lib.serving.vfr_tables import prediction_timestamp

    frame = pd.DataFrame(rows, columns=["symbol", "current_price", "expected_return", "confidence"])
    frame["probability"] = 0.5 + np.sign(frame["expected_return"]) * frame["confidence"] / 2
    frame["direction"] = [direction_for(p, DirectionThresholds()) for p in frame["probability"]]
    frame["predicted_at"] = prediction_timestamp(as_of) + timedelta(hours=2)
    frame["model_name"] = "vfr-lightgbm-test"
    frame["model_version"] = model_version
    return frame
