import json
import time
from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import text

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.models.registry import CHAMPION, RegisteredVersion, registered_model_name
from vfr_ml_pipelines.lib.serving import feature_export, payloads, vfr_cache
from vfr_ml_pipelines.lib.serving.predict import prediction_rows
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_tables import prediction_timestamp, write_ml_predictions
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame

HORIZON = "1w"
MODEL_NAME = registered_model_name("lightgbm", HORIZON)


class PredictionConfig(dg.Config):
    buy_threshold: float = 0.55
    sell_threshold: float = 0.45


def _latest_session(warehouse: WarehouseResource, market_data: MarketDataResource) -> date:
    frame = read_frame(
        warehouse.engine,
        "SELECT max(trade_date) AS day FROM vfr_ml.raw_prices WHERE trade_date <= :today",
        {"today": market_data.today()},
    )
    day = frame["day"].iloc[0]
    if day is None or pd.isna(day):
        raise dg.Failure(f"no prices stored on or before {market_data.today()}")
    return day


def _session_vectors(warehouse: WarehouseResource, market_data: MarketDataResource) -> tuple[date, pd.DataFrame, list[str]]:
    """The latest session, the feature vectors of that session for its universe members,
    and the members without one (no vector, or only an older one)."""
    day = _latest_session(warehouse, market_data)
    members = read_frame(
        warehouse.engine, "SELECT symbol FROM vfr_ml.universe_membership WHERE trade_date = :d ORDER BY symbol", {"d": day}
    )["symbol"].tolist()
    vectors = read_latest(warehouse.engine, catalog.MATRIX_VERSION, members)
    vectors = vectors[pd.to_datetime(vectors["trade_date"]).dt.date == day].reset_index(drop=True)
    if vectors.empty:
        raise dg.Failure(f"no feature vector of {day} for any of the {len(members)} universe symbols")
    return day, vectors, sorted(set(members) - set(vectors["symbol"]))


def _close_ms(day: date) -> int:
    """The as-of time of features and predictions of `day`: its close, in ms."""
    return int(prediction_timestamp(day).timestamp() * 1000)


def _champion(mlflow: MlflowResource) -> RegisteredVersion:
    champion = mlflow.registry.by_alias(MODEL_NAME, CHAMPION)
    if champion is None:
        raise dg.Failure(f"{MODEL_NAME} has no '{CHAMPION}' alias; materialize champion_1w_model first")
    return champion


def _latest_predictions(warehouse: WarehouseResource, champion: RegisteredVersion) -> pd.DataFrame:
    frame = read_frame(
        warehouse.engine,
        """
        SELECT * FROM vfr_ml.predictions
        WHERE horizon = :h AND model_name = :m AND model_version = :v
          AND as_of_date = (SELECT max(as_of_date) FROM vfr_ml.predictions
                            WHERE horizon = :h AND model_name = :m AND model_version = :v)
        ORDER BY symbol
        """,
        {"h": HORIZON, "m": champion.name, "v": champion.version},
    )
    if frame.empty:
        raise dg.Failure(f"no stored predictions of {champion.model_id}; materialize predictions first")
    return frame


@dg.asset(group_name="serving", kinds={"python", "postgres"}, deps=["champion_1w_model", "feature_matrix"])
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """The 1w champion's forecast for every universe symbol on the latest session, mapped
    to VFR's expectedReturn / probability / direction / confidence (`vfr_ml.predictions`,
    one row per symbol and model version). Symbols whose latest feature vector is older than
    the session are left out and reported."""
    champion = _champion(mlflow)
    model = mlflow.registry.load_pyfunc(MODEL_NAME, CHAMPION)
    names = json.loads(champion.tags["feature_names"])
    day, features, missing = _session_vectors(warehouse, market_data)
    if missing:
        context.log.warning(f"{len(missing)} symbols without a feature vector of {day}: {missing[:10]}")
    prices = read_frame(warehouse.engine, "SELECT symbol, close FROM vfr_ml.raw_prices WHERE trade_date = :d", {"d": day})
    forecasts = model.predict(features.reindex(columns=names).astype("float64"))
    rows = prediction_rows(
        features,
        prices,
        pd.Series(forecasts).to_numpy(dtype="float64"),
        feature_names=[n for n in catalog.RAW_NAMES if n in features.columns],
        residual_std=float(champion.tags["residual_std"]),
        thresholds=payloads.DirectionThresholds(buy=config.buy_threshold, sell=config.sell_threshold),
        as_of=day,
        horizon=HORIZON,
        model_name=champion.name,
        model_version=champion.version,
        predicted_at=datetime.now(UTC),
    )
    with warehouse.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM vfr_ml.predictions WHERE as_of_date = :d AND horizon = :h AND model_name = :m AND model_version = :v"),
            {"d": day, "h": HORIZON, "m": champion.name, "v": champion.version},
        )
        upsert_frame(conn, "vfr_ml.predictions", rows, ["as_of_date", "horizon", "model_name", "model_version", "symbol"])
    counts = rows["direction"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "as_of": str(day),
            "model": champion.model_id,
            "symbols": len(rows),
            "buy": int(counts.get("BUY", 0)),
            "hold": int(counts.get("HOLD", 0)),
            "sell": int(counts.get("SELL", 0)),
            "mean_expected_return": float(rows["expected_return"].mean()),
            "min_feature_completeness": float(rows["feature_completeness"].min()),
            "symbols_without_fresh_features": len(missing),
        }
    )


@dg.asset(group_name="serving", kinds={"redis"}, deps=[predictions])
def redis_predictions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource, redis: RedisResource
) -> dg.MaterializeResult:
    """The predictions in the live VFR's Redis keys, per VFR_CONTRACT.md: for each symbol
    `vfr:ml:prediction:{SYMBOL}:1w:default` and `...:1w:{model id}`, plus the model metadata
    and enhancement status keys; all in one MULTI/EXEC, so VFR reads either the previous
    set or the new one. Keys of symbols no longer served are removed in the same step."""
    champion = _champion(mlflow)
    rows = _latest_predictions(warehouse, champion)
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    names = list(catalog.RAW_NAMES)
    model_inputs = json.loads(champion.tags["feature_names"])
    as_of_ms = _close_ms(rows["as_of_date"].iloc[0])

    writes: list[vfr_cache.CacheWrite] = []
    for rec in rows.itertuples(index=False):
        vector = payloads.feature_vector(rec.symbol, rec.features if isinstance(rec.features, dict) else json.loads(rec.features), names, as_of_ms)
        for model_id in (payloads.DEFAULT_MODEL_ID, champion.model_id):
            payload = payloads.ml_prediction(
                symbol=rec.symbol, model_id=model_id, model_version=champion.version, horizon=HORIZON,
                expected_return=rec.expected_return, probability=rec.probability, direction=rec.direction,
                confidence=rec.confidence, features=vector, made_at_ms=now_ms, ttl_seconds=ttl,
            )
            writes.append(vfr_cache.CacheWrite(vfr_cache.prediction_key(rec.symbol, HORIZON, model_id), payload, ttl))

    run_metrics = mlflow.registry.run_metrics(champion.run_id)
    config = payloads.model_config(
        model_id=champion.model_id, model_type="LIGHTGBM", version=champion.version, status="ACTIVE",
        horizon=HORIZON, features=model_inputs, hyperparameters=mlflow.registry.run_params(champion.run_id),
        metrics=run_metrics, created_at_ms=now_ms, updated_at_ms=now_ms, deployed_at_ms=now_ms,
    )
    writes.append(vfr_cache.CacheWrite(vfr_cache.model_metadata_key(champion.model_id), config, ttl, compressible=False))
    status = payloads.enhancement_status(available=True, models_loaded=1, features_ready=True, now_ms=now_ms)
    writes.append(vfr_cache.CacheWrite(vfr_cache.ENHANCEMENT_STATUS_KEY, status, ttl, compressible=False))

    served = {w.key for w in writes}
    prefix = redis.key_prefix
    stale: list[str] = []
    for model_id in (payloads.DEFAULT_MODEL_ID, champion.model_id):
        pattern = f"{prefix}{vfr_cache.PREDICTION_KEY.format(symbol='*', horizon=HORIZON, model_id=model_id)}"
        for full in vfr_cache.scan_keys(redis.client, pattern):
            key = full[len(prefix):]
            if key not in served:
                stale.append(key)
    started = time.perf_counter()
    report = vfr_cache.publish(redis.client, prefix, writes, version=__version__, deletes=stale, now_ms=now_ms)
    elapsed = time.perf_counter() - started
    context.log.info(f"published {report.written} entries ({report.bytes} bytes) in {elapsed:.3f}s; removed {report.deleted} stale keys")
    return dg.MaterializeResult(
        metadata={
            "model": champion.model_id,
            "symbols": len(rows),
            "entries_written": report.written,
            "entries_compressed": report.compressed,
            "stale_keys_removed": report.deleted,
            "bytes": report.bytes,
            "ttl_seconds": ttl,
            "key_prefix": prefix,
            "publish_seconds": round(elapsed, 4),
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[predictions])
def ml_predictions(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The predictions as rows of VFR's `ml_predictions` table (one per symbol and day for
    the 1w enhancement definition `vfr_ml_pipelines_1w`); re-runs update the same rows."""
    champion = _champion(mlflow)
    rows = _latest_predictions(warehouse, champion)
    as_of = rows["as_of_date"].iloc[0]
    with warehouse.engine.begin() as conn:
        written = write_ml_predictions(conn, rows, HORIZON, as_of)
    return dg.MaterializeResult(metadata={"rows": written, "as_of": str(as_of), "model": champion.model_id})


@dg.asset(group_name="serving", kinds={"postgres", "redis"}, deps=["feature_matrix"])
def vfr_feature_export(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    redis: RedisResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """The latest session's raw features where VFR reads them: `ml_feature_definitions`
    (one row per feature), `ml_feature_store` (one row per symbol and feature; `valid` when
    finite and in range, else `invalid`) and Redis `vfr:ml:feature:vector:{SYMBOL}`
    (`MLFeatureVector`, one MULTI/EXEC with the same TTL policy as predictions)."""
    day, vectors, _ = _session_vectors(warehouse, market_data)
    with warehouse.engine.begin() as conn:
        ids = feature_export.upsert_feature_definitions(
            conn, catalog.RAW_SPECS, catalog.FEATURE_SET_OF, provider=market_data.provider_name
        )
        rows, skipped = feature_export.feature_store_rows(vectors, ids, day, market_data.provider_name, catalog.RANGES)
        written = feature_export.write_feature_store(conn, rows, day, list(vectors["symbol"]), ids)

    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    as_of_ms = _close_ms(day)
    writes = [
        vfr_cache.CacheWrite(
            vfr_cache.feature_vector_key(rec["symbol"]),
            payloads.feature_vector(rec["symbol"], rec, list(catalog.RAW_NAMES), as_of_ms, float(rec.get("quality_score", 1.0))),
            ttl,
        )
        for rec in vectors.to_dict("records")
    ]
    report = vfr_cache.publish(redis.client, redis.key_prefix, writes, version=__version__, now_ms=now_ms)
    invalid = int((rows["validation_status"] == "invalid").sum()) if not rows.empty else 0
    context.log.info(f"exported {written} feature values of {day} ({invalid} invalid, {skipped} missing) and {report.written} vectors")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(day),
            "symbols": len(vectors),
            "feature_definitions": len(ids),
            "feature_store_rows": written,
            "invalid_values": invalid,
            "missing_values": skipped,
            "redis_vectors": report.written,
            "ttl_seconds": ttl,
        }
    )
