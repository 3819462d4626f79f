"""The trained pipeline read the way VFR's code reads it: every served (horizon, model id)
through VfrCacheReader (MLCacheService / RedisCache) with coherent fields and the real model
id under `default`, the same feature quality in the payload, the Redis vector and VFR's
FeatureStore query; no champion as a normal outcome; the feature gate on every path to VFR.

Every test leaves the shared pipeline as it found it."""

from __future__ import annotations

import dagster as dg
import mlflow
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS, ALL_CHECKS, defs
from vfr_ml_pipelines.defs.models.jobs import retraining_job, rollback_jobs
from vfr_ml_pipelines.defs.serving.jobs import disable_ml_job, republish_job
from vfr_ml_pipelines.lib.models.registry import CHAMPION
from vfr_ml_pipelines.lib.serving.served_models import served_versions
from vfr_ml_pipelines.lib.serving.vfr_keys import feature_vector_key
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader

HORIZONS = ("1d", "1w", "1m")
GATE = dg.AssetCheckKey(dg.AssetKey("feature_matrix"), "feature_matrix_is_valid")

# VFR's FeatureStore.getFeatureMatrix query (app/services/ml/features/FeatureStore.ts), with
# neither feature types, min quality nor max age
FEATURE_STORE_QUERY = """
WITH latest_features AS (
  SELECT DISTINCT ON (fs.ticker, fs.feature_id)
    fs.ticker, fs.feature_id, fs.value, fs.confidence_score, fs.data_quality_score,
    fs.source_provider, fs.timestamp, fd.feature_name, fd.feature_type
  FROM ml_feature_store fs
  INNER JOIN ml_feature_definitions fd ON fs.feature_id = fd.feature_id
  WHERE fs.ticker = ANY(:symbols)
    AND fs.validation_status = 'valid'
  ORDER BY fs.ticker, fs.feature_id, fs.timestamp DESC
)
SELECT ticker,
       COUNT(*)::float / (SELECT COUNT(*) FROM ml_feature_definitions WHERE is_active = true) AS completeness,
       AVG(data_quality_score) AS avg_quality
FROM latest_features
GROUP BY ticker
"""


def _symbols(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT symbol FROM vfr_ml.universe ORDER BY symbol"))]


def _definitions(pipeline) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[retraining_job, *rollback_jobs, republish_job, disable_ml_job],
        resources=pipeline["resources"],
    )


def test_every_served_model_reads_coherently_with_its_real_id(pipeline, redis_client):
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    symbols = _symbols(pipeline["engine"])
    served = served_versions(pipeline["resources"]["mlflow"].registry)
    assert any(m.is_champion for m in served)
    with pipeline["engine"].connect() as conn:
        sql_quality = {r.ticker: float(r.avg_quality) for r in conn.execute(text(FEATURE_STORE_QUERY), {"symbols": symbols})}
    for model in served:
        model_id = model.version.model_id
        for key_id in (["default", model_id] if model.is_champion else [model_id]):
            directions = set()
            for symbol in symbols:
                payload = reader.prediction(symbol, model.horizon, key_id)
                assert payload is not None, (symbol, model.horizon, key_id)
                assert payload["modelId"] == model_id and payload["modelVersion"] == model.version.version
                p, er = payload["prediction"]["probability"], payload["prediction"]["expectedReturn"]
                direction = payload["prediction"]["direction"]
                # one calibrated model: P(up) > 0.5 exactly when the expected return is > 0
                assert (p > 0.5) == (er > 0) and (p < 0.5) == (er < 0), (symbol, model.horizon, p, er)
                assert direction != "BUY" or er > 0
                assert direction != "SELL" or er < 0
                assert payload["prediction"]["confidence"] == pytest.approx(abs(2 * p - 1), abs=1e-12)
                directions.add(direction)
                # one quality: the payload's, the Redis vector's and what VFR's FeatureStore reads
                vector = reader.feature_vector(symbol)
                assert payload["features"]["qualityScore"] == vector["qualityScore"]
                assert payload["features"]["completeness"] == vector["completeness"]
                assert vector["qualityScore"] == pytest.approx(sql_quality[symbol], abs=1e-12)
            assert directions, model_id


def test_no_champion_is_a_normal_outcome(pipeline, redis_client):
    registry = pipeline["resources"]["mlflow"].registry
    client = mlflow.MlflowClient(pipeline["tracking_uri"], registry_uri=pipeline["tracking_uri"])
    champions = {h: registry.by_alias(f"vfr-{h}", CHAMPION) for h in HORIZONS}
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    symbol = _symbols(pipeline["engine"])[0]
    try:
        for h, version in champions.items():
            if version is not None:
                client.delete_registered_model_alias(f"vfr-{h}", CHAMPION)
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS], resources=pipeline["resources"], raise_on_error=False,
            selection=dg.AssetSelection.assets("predictions", "redis_predictions", "ml_predictions")
            | dg.AssetSelection.checks_for_assets("predictions"),
        )
        assert result.success
        metadata = result.asset_materializations_for_node("predictions")[0].metadata
        for h in HORIZONS:
            verdict = metadata[f"{h}_verdict"].value
            assert verdict.startswith(f"trained, no significant skill, nothing served for {h}") or verdict.startswith(
                f"no model trained for {h}"
            ), verdict
            assert reader.prediction(symbol, h, "default") is None, h  # VFR stays on its classic path
        assert result.asset_materializations_for_node("ml_predictions")[0].metadata["1w_verdict"].value == metadata["1w_verdict"].value
        assert reader.enhancement_status()["available"] is False
    finally:
        for h, version in champions.items():
            if version is not None:
                registry.set_alias(f"vfr-{h}", CHAMPION, version.version)
        assert _definitions(pipeline).resolve_job_def("republish_job").execute_in_process().success
    assert reader.prediction(symbol, "1w", "default") is not None


def test_every_job_that_publishes_to_vfr_runs_the_feature_gate():
    for name in ("retraining_job", "republish_job", *(f"rollback_{h}_job" for h in HORIZONS)):
        checks = defs.resolve_job_def(name).asset_layer.asset_graph.asset_check_keys  # the job's own subset
        assert GATE in checks, (name, checks)


def test_a_rejected_matrix_never_reaches_redis_or_sql(pipeline, redis_client):
    engine = pipeline["engine"]
    victim = _symbols(engine)[0]
    key = pipeline["prefix"] + feature_vector_key(victim)
    # the vector as VFR reads it: with the live model's inputs it often passes 8,192
    # characters and is stored as `:meta` + `:compressed` instead of the plain key
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    with engine.begin() as conn:
        saved = conn.execute(text("SELECT feature_set, symbol, completeness FROM vfr_ml.feature_latest")).all()
        conn.execute(text("DELETE FROM ml_feature_store WHERE ticker = :s"), {"s": victim})
        # every latest vector 0 % complete: feature_matrix_is_valid fails
        conn.execute(text("UPDATE vfr_ml.feature_latest SET completeness = 0"))
    redis_client.delete(key, f"{key}:meta", f"{key}:compressed")
    try:
        result = _definitions(pipeline).resolve_job_def("republish_job").execute_in_process(raise_on_error=False)
        assert not result.success
        evaluations = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert [(e.check_name, e.passed) for e in evaluations if e.check_name == GATE.name] == [(GATE.name, False)]
        ran = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
        assert not ran & {"vfr_feature_export", "predictions", "redis_predictions", "ml_predictions"}, ran
        assert redis_client.exists(key, f"{key}:meta", f"{key}:compressed") == 0
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ml_feature_store WHERE ticker = :s"), {"s": victim}).scalar_one() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE vfr_ml.feature_latest SET completeness = :c WHERE feature_set = :f AND symbol = :s"),
                [{"c": r.completeness, "f": r.feature_set, "s": r.symbol} for r in saved],
            )
        assert _definitions(pipeline).resolve_job_def("republish_job").execute_in_process().success
    assert reader.feature_vector(victim)["symbol"] == victim.upper()
