"""`serving_health` on a registered champion, its stored predictions and real Redis keys."""

from __future__ import annotations

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.monitoring.health import COVERAGE_CHECK, HEALTH_CHECK, serving_health
from vfr_ml_pipelines.defs.resources import MlflowResource, RedisResource, WarehouseResource
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


def _run(stored: dict, redis_url: str, prefix: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([serving_health], resources={**stored, "redis": RedisResource(redis_url=redis_url, key_prefix=prefix)},
                          raise_on_error=False)


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
