"""The whole graph against real PostgreSQL, Redis and MLflow, read back as VFR reads it."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.serving.vfr_cache import VfrCacheReader, scan_keys, validate_entry, validate_prediction
from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine
from vfr_ml_pipelines_tests.helpers import AS_OF, N_SYMBOLS, materialize_range, pipeline_resources

MODEL = "vfr-lightgbm-1w"


@pytest.fixture(scope="module")
def pipeline(make_database, redis_url, redis_client, tmp_path_factory):
    """Materialize every asset once into an isolated database, key prefix and MLflow."""
    database_url = make_database("e2e")
    prefix = f"vfrtest-e2e-{secrets.token_hex(3)}:veritak:mcp:"
    state: Path = tmp_path_factory.mktemp("mlflow")
    resources = pipeline_resources(database_url, redis_url, prefix, state)
    result = materialize_range(resources)
    assert result.success
    engine = create_warehouse_engine(database_url)
    yield {
        "resources": resources, "engine": engine, "prefix": prefix, "state": state,
        "tracking_uri": resources["mlflow"].registry.tracking_uri, "result": result,
    }
    engine.dispose()
    keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis_client.delete(*keys)


def _symbols(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT symbol FROM vfr_ml.universe ORDER BY symbol"))]


def test_every_symbol_has_a_valid_default_prediction(pipeline, redis_client):
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    symbols = _symbols(pipeline["engine"])
    assert len(symbols) == N_SYMBOLS
    versions = set()
    for symbol in symbols:
        payload = reader.prediction(symbol, "1w", "default")
        assert payload is not None, symbol
        assert validate_prediction(payload) == [], (symbol, validate_prediction(payload))
        assert payload["symbol"] == symbol and payload["modelId"] == "default" and payload["horizon"] == "1w"
        own = reader.prediction(symbol, "1w", f"{MODEL}.v{payload['modelVersion']}")
        assert own is not None and own["prediction"] == payload["prediction"]
        versions.add(payload["modelVersion"])
    assert len(versions) == 1, "all symbols must come from one model version"


def test_every_stored_value_is_a_strict_envelope_with_matching_expiry(pipeline, redis_client):
    keys = scan_keys(redis_client, f"{pipeline['prefix']}*")
    # per symbol: prediction under default and under the model id, and a feature vector;
    # plus model metadata and enhancement status
    assert len(keys) == 3 * N_SYMBOLS + 2
    for key in keys:
        entry = validate_entry(redis_client.get(key))
        redis_ttl = redis_client.ttl(key)
        assert redis_ttl > 0, f"{key} has no expiry"
        assert abs(redis_ttl - entry["ttl"]) <= 5, key
    status = VfrCacheReader(redis_client, pipeline["prefix"]).enhancement_status()
    assert status["available"] is True and status["modelsLoaded"] == 1


def test_ml_predictions_has_one_valid_row_per_symbol(pipeline):
    with pipeline["engine"].connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ticker, count(*) AS n, max(predicted_value) AS target, max(current_price) AS price, "
                "max(confidence_score) AS conf FROM ml_predictions GROUP BY ticker"
            )
        ).all()
        stored = pd.read_sql_query(text("SELECT symbol, expected_return FROM vfr_ml.predictions"), conn)
    assert len(rows) == N_SYMBOLS and all(r.n == 1 for r in rows)
    expected = dict(zip(stored["symbol"], stored["expected_return"]))
    for r in rows:
        assert 0 <= r.conf <= 1
        assert float(r.target) == pytest.approx(float(r.price) * (1 + expected[r.ticker]), abs=1e-3)


def test_champion_loads_from_the_registry_and_predicts(pipeline):
    mlflow.set_tracking_uri(pipeline["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    client = mlflow.MlflowClient(pipeline["tracking_uri"])
    names = json.loads(client.get_model_version_by_alias(MODEL, "champion").tags["feature_names"])
    frame = read_latest(pipeline["engine"], catalog.MATRIX_VERSION, _symbols(pipeline["engine"]))
    out = np.asarray(model.predict(frame.reindex(columns=names).astype("float64")))
    assert out.shape == (N_SYMBOLS,) and np.isfinite(out).all()
    version = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(version.run_id)
    for tag in ("dagster_run_id", "feature_set_version", "data_start", "data_end", "code_version"):
        assert run.data.tags.get(tag), tag
    assert {"test_rank_ic", "test_ic", "test_icir", "test_rank_icir"} <= set(run.data.metrics)


def _snapshot(pipeline, redis_client) -> dict:
    with pipeline["engine"].connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("vfr_ml.universe", "vfr_ml.universe_membership", "vfr_ml.raw_prices", "vfr_ml.raw_fundamentals",
                          "vfr_ml.raw_news", "vfr_ml.quarantine", "vfr_ml_oracle.expected_returns", "vfr_ml.feature_latest",
                          "vfr_ml.labels", "vfr_ml.predictions", "ml_predictions", "ml_models", "ml_enhancement_definitions",
                          "ml_feature_definitions", "ml_feature_store")
        }
    return {"counts": counts, "keys": scan_keys(redis_client, f"{pipeline['prefix']}*")}


def test_materializing_again_changes_no_row_count_and_no_key(pipeline, redis_client):
    before = _snapshot(pipeline, redis_client)
    result = materialize_range(pipeline["resources"])
    assert result.success
    after = _snapshot(pipeline, redis_client)
    assert after == before
    model_meta = result.asset_materializations_for_node("lightgbm_1w_model")[0].metadata
    assert model_meta["reused"].value is True


def test_nan_and_infinite_features_never_reach_redis(pipeline, redis_client):
    """Poison one symbol's latest feature vector with NaN and Infinity (PostgreSQL stores
    both), re-run serving, and check every stored value still parses as JavaScript JSON."""
    engine = pipeline["engine"]
    victim = _symbols(engine)[0]
    reader = VfrCacheReader(redis_client, pipeline["prefix"])
    before = reader.prediction(victim)["features"]
    assert {"rsi_14", "roc_5"} <= set(before["features"])
    with engine.begin() as conn:
        conn.execute(
            text(
                'UPDATE vfr_ml.feature_latest SET "values"[array_position(names, \'rsi_14\')] = \'NaN\'::float8, '
                '"values"[array_position(names, \'roc_5\')] = \'Infinity\'::float8 '
                "WHERE symbol = :s AND feature_set = :fs"
            ),
            {"s": victim, "fs": catalog.MATRIX_VERSION},
        )
    serving = [a for a in ALL_ASSETS if a.key.to_user_string() in {"predictions", "redis_predictions", "ml_predictions", "vfr_feature_export"}]
    assert dg.materialize(serving, resources=pipeline["resources"]).success
    for key in scan_keys(redis_client, f"{pipeline['prefix']}*"):
        raw = redis_client.get(key).decode()
        validate_entry(raw)
        assert "NaN" not in raw and "Infinity" not in raw
    after = reader.prediction(victim)["features"]
    assert "rsi_14" not in after["features"] and "roc_5" not in after["features"]
    n = len(catalog.RAW_NAMES)
    assert after["completeness"] == pytest.approx(before["completeness"] - 2 / n, abs=1e-6)
    vector = reader.feature_vector(victim)
    assert "rsi_14" not in vector["features"] and vector["featureNames"] == list(vector["features"])
    with engine.connect() as conn:
        statuses = conn.execute(
            text(
                "SELECT d.feature_name FROM ml_feature_store s JOIN ml_feature_definitions d USING (feature_id) "
                "WHERE s.ticker = :s AND d.feature_name IN ('rsi_14', 'roc_5')"
            ),
            {"s": victim},
        ).all()
    assert statuses == [], "a missing value must not be exported as a feature row"
    # the recently listed symbol lacks the 60-day windows: they are missing, not zero
    payloads_ = [
        json.loads(redis_client.get(k))["data"]
        for k in scan_keys(redis_client, f"{pipeline['prefix']}vfr:ml:prediction:*:1w:default")
    ]
    assert any("volatility_60" not in p["features"]["features"] for p in payloads_)


def test_vfr_reads_valid_feature_rows_from_ml_feature_store(pipeline):
    """What VFR's FeatureStore query sees: the latest valid row per ticker and feature."""
    with pipeline["engine"].connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT ON (s.ticker, d.feature_name) s.ticker, d.feature_name, s.value, d.feature_type "
                "FROM ml_feature_store s JOIN ml_feature_definitions d USING (feature_id) "
                "WHERE s.validation_status = 'valid' ORDER BY s.ticker, d.feature_name, s.timestamp DESC"
            )
        ).all()
    tickers = {r.ticker for r in rows}
    assert tickers == set(_symbols(pipeline["engine"]))
    types = {r.feature_type for r in rows}
    assert types == {"technical", "fundamental", "sentiment"}
    rsi = [float(r.value) for r in rows if r.feature_name == "rsi_14"]
    assert rsi and all(0 <= v <= 100 for v in rsi)


def test_feature_sets_are_registered_with_lineage(pipeline):
    with pipeline["engine"].connect() as conn:
        rows = {r.feature_set: r for r in conn.execute(text("SELECT * FROM vfr_ml.feature_sets")).all()}
    assert set(rows) == {"technical-v2", "fundamental-v1", "sentiment-v1", catalog.MATRIX_VERSION}
    matrix = rows[catalog.MATRIX_VERSION]
    assert matrix.row_count > 0 and str(matrix.last_day) == AS_OF
    assert matrix.lineage["code_version"]
    assert rows["technical-v2"].lineage["input_last_day"] == AS_OF
