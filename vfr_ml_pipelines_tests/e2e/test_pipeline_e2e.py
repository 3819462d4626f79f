"""The whole graph against real PostgreSQL, Redis and MLflow, read back as VFR reads it."""

from __future__ import annotations

import json
import time

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.models.live_training import live_model_name
from vfr_ml_pipelines.lib.serving.redis_transport import scan_keys
from vfr_ml_pipelines.lib.serving.vfr_codec import validate_entry
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader, validate_prediction
from vfr_ml_pipelines_tests.helpers import AS_OF, N_SYMBOLS, materialize_range

MODEL = "vfr-1w"
HORIZONS = ("1d", "1w", "1m")


def _served(tracking_uri: str) -> dict[str, dict[str, str | None]]:
    """Per horizon, the champion's and the challenger's version (None when absent)."""
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    out = {}
    for h in HORIZONS:
        out[h] = {}
        for alias in ("champion", "challenger"):
            try:
                out[h][alias] = str(client.get_model_version_by_alias(f"vfr-{h}", alias).version)
            except mlflow.exceptions.MlflowException:
                out[h][alias] = None
    return out


def _live_champion(tracking_uri: str) -> str | None:
    """The version of the live model (`vfr-live-1w`) VFR's live path runs, None without one."""
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(live_model_name("1w"), "champion").version)
    except mlflow.exceptions.MlflowException:
        return None


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
        # the payload names the real model under `default` too (VFR copies cached.modelId)
        assert payload["symbol"] == symbol and payload["horizon"] == "1w"
        assert payload["modelId"] == f"{MODEL}.v{payload['modelVersion']}"
        own = reader.prediction(symbol, "1w", f"{MODEL}.v{payload['modelVersion']}")
        assert own["modelId"] == f"{MODEL}.v{payload['modelVersion']}"
        assert own is not None and own["prediction"] == payload["prediction"]
        versions.add(payload["modelVersion"])
    assert len(versions) == 1, "all symbols must come from one model version"


def test_champions_under_default_and_their_id_challengers_as_shadows(pipeline, redis_client):
    served = _served(pipeline["tracking_uri"])
    assert served["1w"]["champion"] is not None, "the default horizon must have passed the promotion gate"
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    symbol = _symbols(pipeline["engine"])[0]
    for h, aliases in served.items():
        champion, challenger = aliases["champion"], aliases["challenger"]
        default = reader.prediction(symbol, h, "default")
        if champion is None:
            assert default is None, f"{h} has no champion, so nothing may be served under default"
        else:
            assert default["modelVersion"] == champion
            assert reader.model_metadata(f"vfr-{h}.v{champion}")["status"] == "ACTIVE"
        if challenger is not None and challenger != champion:
            shadow = reader.prediction(symbol, h, f"vfr-{h}.v{challenger}")
            assert shadow is not None and shadow["modelVersion"] == challenger
            assert reader.model_metadata(f"vfr-{h}.v{challenger}")["status"] == "INACTIVE"


def test_every_stored_value_is_a_strict_envelope_with_matching_expiry(pipeline, redis_client):
    keys = scan_keys(redis_client, f"{pipeline['prefix']}*")
    served = _served(pipeline["tracking_uri"])
    champions = sum(a["champion"] is not None for a in served.values())
    shadows = sum(a["challenger"] not in (None, a["champion"]) for a in served.values())
    live = _live_champion(pipeline["tracking_uri"]) is not None
    # per symbol: each champion under default and its id, each shadow and the live model under
    # its id, and a feature vector; plus one metadata key per served model and the enhancement status. A
    # vector carrying the live model's inputs may pass 8,192 characters: then it is stored as
    # `:compressed` + `:meta` (VFR's reader looks at `:meta` first), never also plain
    vectors = [k for k in keys if ":vfr:ml:feature:vector:" in k]
    by_symbol: dict[str, set[str]] = {}
    for key in vectors:
        symbol, _, suffix = key.split(":vfr:ml:feature:vector:")[1].partition(":")
        by_symbol.setdefault(symbol, set()).add(suffix)
    assert len(by_symbol) == N_SYMBOLS and all(s in ({""}, {"meta", "compressed"}) for s in by_symbol.values())
    assert len(keys) - len(vectors) == (2 * champions + shadows + live) * N_SYMBOLS + champions + shadows + live + 1
    for key in keys:
        entry = validate_entry(redis_client.get(key))
        redis_ttl = redis_client.ttl(key)
        assert redis_ttl > 0, f"{key} has no expiry"
        # Redis expires the key when VFR would: at timestamp + ttl (whenever it was written)
        envelope_left = entry["ttl"] - (time.time() * 1000 - entry["timestamp"]) / 1000
        assert abs(redis_ttl - envelope_left) <= 5, (key, redis_ttl, envelope_left)
    status = VfrCacheReader(redis_client, pipeline["prefix"]).enhancement_status()
    assert status["available"] is True and status["modelsLoaded"] == champions


def test_ml_predictions_has_one_valid_row_per_symbol_and_served_horizon(pipeline):
    served = _served(pipeline["tracking_uri"])
    with pipeline["engine"].connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ticker, prediction_horizon AS h, count(*) AS n, max(predicted_value) AS value, "
                "max(prediction_type) AS type, max(confidence_score) AS conf FROM ml_predictions GROUP BY ticker, prediction_horizon"
            )
        ).all()
        stored = pd.read_sql_query(
            text("SELECT symbol, horizon, model_name, model_version, direction, probability FROM vfr_ml.predictions"), conn
        )
    champion_horizons = {h for h, a in served.items() if a["champion"] is not None}
    assert {r.h for r in rows} == champion_horizons
    assert len(rows) == N_SYMBOLS * len(champion_horizons) and all(r.n == 1 for r in rows)
    expected = {
        (s.symbol, s.horizon): {"BUY": s.probability, "SELL": -(1 - s.probability), "HOLD": 0.0}[s.direction]
        for s in stored.itertuples() if s.model_name == f"vfr-{s.horizon}" and s.model_version == served[s.horizon]["champion"]
    }
    for r in rows:
        # VFR's PredictionLogger meaning: +P(up) for BUY, -P(down) for SELL, 0 for HOLD
        assert 0 <= r.conf <= 1 and r.type == "direction"
        assert float(r.value) == pytest.approx(expected[(r.ticker, r.h)], abs=1e-8)


def test_champion_loads_from_the_registry_and_predicts(pipeline):
    # both URIs: MLflow's registry URI is process-wide and another test's registry may have set it
    mlflow.set_tracking_uri(pipeline["tracking_uri"])
    mlflow.set_registry_uri(pipeline["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    client = mlflow.MlflowClient(pipeline["tracking_uri"], registry_uri=pipeline["tracking_uri"])
    version = client.get_model_version_by_alias(MODEL, "champion")
    names = json.loads(version.tags["feature_names"])
    frame = read_latest(pipeline["engine"], catalog.MATRIX_VERSION, _symbols(pipeline["engine"]))
    out = model.predict(frame.reindex(columns=names).astype("float64"))
    assert list(out.columns) == ["score", "expected_return", "probability"] and len(out) == N_SYMBOLS
    assert np.isfinite(out.to_numpy()).all() and out["probability"].between(0, 1).all()
    # the serving model is a copy of the winning candidate, which is registered on its own
    assert version.tags["source_model"].startswith(f"vfr-{version.tags['candidate']}-1w.v")
    run = client.get_run(version.run_id)
    for tag in ("dagster_run_id", "feature_set_version", "data_start", "data_end", "code_version", "horizon"):
        assert run.data.tags.get(tag), tag
    assert {"test_rank_ic", "test_ic", "test_icir", "test_rank_icir", "test_auc", "test_oracle_rank_ic",
            "test_model_oracle_ratio", "validation_rank_ic"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert artifacts == {"plots/feature_importance.png", "plots/shap_summary.png", "plots/ic_over_time.png"}
    for candidate in ("lightgbm", "xgboost", "linear", "ensemble-rankic", "ensemble-stacking"):
        assert client.get_registered_model(f"vfr-{candidate}-1w").name


def _snapshot(pipeline, redis_client) -> dict:
    with pipeline["engine"].connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("vfr_ml.universe", "vfr_ml.universe_membership", "vfr_ml.raw_prices", "vfr_ml.raw_fundamentals",
                          "vfr_ml.raw_news", "vfr_ml.quarantine", "vfr_ml_oracle.expected_returns", "vfr_ml.feature_latest",
                          "vfr_ml.labels", "vfr_ml.predictions", "ml_predictions", "ml_models", "ml_enhancement_definitions",
                          "vfr_ml.champion_history", "vfr_ml.walk_forward_predictions",
                          "ml_feature_definitions", "ml_feature_store")
        }
    return {"counts": counts, "keys": scan_keys(redis_client, f"{pipeline['prefix']}*")}


def test_materializing_again_changes_no_row_count_and_no_key(pipeline, redis_client):
    before = _snapshot(pipeline, redis_client)
    result = materialize_range(pipeline["resources"])
    assert result.success
    after = _snapshot(pipeline, redis_client)
    assert after == before
    for h in HORIZONS:
        for mat in result.asset_materializations_for_node(f"train_{h}_models"):
            assert mat.metadata["reused"].value is True


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
    wanted = {"predictions", "redis_predictions", "ml_predictions", "vfr_feature_export"}
    serving = [a for a in ALL_ASSETS if {k.to_user_string() for k in a.keys} <= wanted]
    assert dg.materialize(serving, resources=pipeline["resources"]).success
    for key in scan_keys(redis_client, f"{pipeline['prefix']}*"):
        raw = redis_client.get(key).decode()
        validate_entry(raw)
        assert "NaN" not in raw and "Infinity" not in raw
    after = reader.prediction(victim)["features"]
    assert "rsi_14" not in after["features"] and "roc_5" not in after["features"]
    n = len(catalog.RAW_NAMES)
    # (both published at 4 decimals, ml_feature_store's precision: payloads.row_quality; two roundings)
    assert after["completeness"] == pytest.approx(before["completeness"] - 2 / n, abs=1e-4 + 1e-12)
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
    assert types == {"technical", "fundamental", "sentiment", "custom"}
    # `custom`: the inputs of the model on VFR's live path, under their own names only
    assert {r.feature_name for r in rows if r.feature_type == "custom"} == {r.feature_name for r in rows if r.feature_name.startswith("vfr_live_")}
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
