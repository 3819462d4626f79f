"""`serving_health` on a registered champion, its stored predictions and real Redis keys."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.defs.monitoring.health import COVERAGE_CHECK, DISTRIBUTION_CHECK, HEALTH_CHECK, serving_health
from vfr_ml_pipelines.defs.resources import MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.models.validation_record import VALIDATION_RECORD_TAG, validation_record
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key
from vfr_ml_pipelines_tests.defs.monitoring.champion import champion_version, register_champion
from vfr_ml_pipelines_tests.defs.monitoring.outcomes import SYMBOLS, write_outcomes
from vfr_ml_pipelines_tests.helpers import migrated_engine

WEEK = 7 * 86_400


@pytest.fixture(scope="module")
def stored(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    registry = register_champion(tmp_path_factory.mktemp("health"), {})
    url = make_database("monitoring_health")
    engine = migrated_engine(url)
    write_outcomes(engine, model_version=champion_version(registry).version, skill=0.1)
    engine.dispose()
    return {"warehouse": WarehouseResource(database_url=url), "mlflow": MlflowResource(tracking_uri=registry.tracking_uri)}


def _recorded(make_database, root, probabilities: np.ndarray) -> dict:
    """A champion whose validation record holds `probabilities` (expected-return spread 0.01,
    as the stored predictions of `write_outcomes` have), over the same stored predictions."""
    frame = pd.DataFrame({"trade_date": pd.Timestamp("2024-06-03"), "probability": probabilities,
                          "expected_return": 0.01 * np.random.default_rng(1).normal(size=len(probabilities)), "segment": "val"})
    registry = register_champion(root, {VALIDATION_RECORD_TAG: validation_record(frame).to_tag()})
    url = make_database(f"monitoring_health_{root.name}")
    engine = migrated_engine(url)
    write_outcomes(engine, model_version=champion_version(registry).version, skill=0.1)
    engine.dispose()
    return {"warehouse": WarehouseResource(database_url=url), "mlflow": MlflowResource(tracking_uri=registry.tracking_uri)}


@pytest.fixture(scope="module")
def matching(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    # the stored probabilities are 1 / (1 + exp(-N(0, 1))): the same law in validation
    return _recorded(make_database, tmp_path_factory.mktemp("matching"), 1 / (1 + np.exp(-np.random.default_rng(2).normal(size=20_000))))


@pytest.fixture(scope="module")
def all_hold(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _recorded(make_database, tmp_path_factory.mktemp("all_hold"), np.full(20_000, 0.5))


def _run(stored: dict, redis_url: str, prefix: str, instance: dg.DagsterInstance | None = None,
         min_predictions: int | None = None) -> dg.ExecuteInProcessResult:
    config = {} if min_predictions is None else {"min_predictions": min_predictions}
    return dg.materialize([serving_health], resources={**stored, "redis": RedisResource(redis_url=redis_url, key_prefix=prefix)},
                          instance=instance, run_config={"ops": {"serving_health": {"config": config}}}, raise_on_error=False)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_complete_lasting_keys_pass(stored: dict, redis_url: str, redis_client, key_prefix: str) -> None:
    for symbol in SYMBOLS:
        redis_client.set(key_prefix + prediction_key(symbol, "1w", "default"), b"{}", ex=WEEK)
    result = _run(stored, redis_url, key_prefix)
    checks = _checks(result)
    assert checks[COVERAGE_CHECK].passed and checks[HEALTH_CHECK].passed
    metadata = result.asset_materializations_for_node("serving_health")[0].metadata
    assert metadata["coverage"].value == 1.0 and metadata["redis_keys"].value == len(SYMBOLS)
    assert metadata["redis_bytes_estimated"].value > 0
    assert metadata["directions"].value == {"1w": {"BUY": 0, "HOLD": len(SYMBOLS), "SELL": 0}}


def test_a_missing_or_expiring_key_fails_the_blocking_check(stored: dict, redis_url: str, redis_client, key_prefix: str) -> None:
    for symbol in SYMBOLS[2:]:
        redis_client.set(key_prefix + prediction_key(symbol, "1w", "default"), b"{}", ex=WEEK)
    redis_client.set(key_prefix + prediction_key(SYMBOLS[1], "1w", "default"), b"{}", ex=5)  # gone before the next publish
    checks = _checks(_run(stored, redis_url, key_prefix))
    coverage = checks[COVERAGE_CHECK]
    assert not coverage.passed and coverage.metadata["holes"].value == 2
    assert f"{SYMBOLS[0]}:1w" in coverage.metadata["first_holes"].value


def test_the_pipeline_serves_every_predicted_symbol(pipeline: dict) -> None:
    checks = _checks(pipeline["result"])
    assert checks[COVERAGE_CHECK].passed, checks[COVERAGE_CHECK].metadata
    [materialization] = pipeline["result"].asset_materializations_for_node("serving_health")
    assert materialization.metadata["coverage"].value == 1.0
    # training recorded each champion's validation predictions, and the publish timed its scoring
    distribution = materialization.metadata["distribution"].value
    assert distribution and all(d["status"] != "no validation record" for d in distribution.values())
    assert set(materialization.metadata["inference_seconds"].value) == set(distribution)


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("serving_health")[0].metadata.items()}


def test_a_champion_without_validation_record_is_reported_not_failed(stored: dict, redis_url: str, key_prefix: str) -> None:
    result = _run(stored, redis_url, key_prefix, min_predictions=20)
    check = _checks(result)[DISTRIBUTION_CHECK]
    assert check.passed and check.metadata["without_validation_record"].value == "1w"
    metadata = _metadata(result)
    assert metadata["distribution"]["1w"]["status"] == "no validation record"
    assert metadata["inference_seconds"] == "no timed publish recorded"


def test_served_shares_against_the_validation_record(matching: dict, all_hold: dict, redis_url: str, key_prefix: str) -> None:
    same = _run(matching, redis_url, key_prefix, min_predictions=20)
    assert _checks(same)[DISTRIBUTION_CHECK].passed
    summary = _metadata(same)["distribution"]["1w"]
    assert summary["status"] == "matches validation" and summary["predictions"] == len(SYMBOLS)
    assert 0.5 < summary["spread_ratio"] < 2.0
    moved = _run(all_hold, redis_url, key_prefix, min_predictions=20)
    check = _checks(moved)[DISTRIBUTION_CHECK]
    assert not check.passed and check.metadata["shifted_horizons"].value == "1w"
    assert check.severity == dg.AssetCheckSeverity.WARN and _checks(moved)[COVERAGE_CHECK] is not None
    assert _metadata(moved)["distribution"]["1w"]["validation_shares"]["HOLD"] > 0.99
    # 30 served predictions are below the default minimum of 50: reported, not flagged
    assert _metadata(_run(all_hold, redis_url, key_prefix))["distribution"]["1w"]["status"] == "too few predictions"


def test_inference_latency_of_the_last_publish(stored: dict, redis_url: str, key_prefix: str) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "predictions", metadata={"1w_champion_score_seconds": 0.0375, "1w_champion_symbols": 30, "1w_champion_load_seconds": 1.2}))
        metadata = _metadata(_run(stored, redis_url, key_prefix, instance=instance))
    assert metadata["inference_seconds"] == {"1w": {"seconds": 0.0375, "symbols": 30}}
