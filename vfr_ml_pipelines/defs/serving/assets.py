import json
import time
from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import text

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.lib.features import technical
from vfr_ml_pipelines.lib.features.store import features_on, latest_trading_day
from vfr_ml_pipelines.lib.models.registry import CHAMPION, RegisteredVersion
from vfr_ml_pipelines.lib.serving import payloads, vfr_cache
from vfr_ml_pipelines.lib.serving.predict import prediction_rows
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame

HORIZON = "1w"
MODEL_NAME = "vfr-lightgbm-1w"


class PredictionConfig(dg.Config):
    buy_threshold: float = 0.55
    sell_threshold: float = 0.45


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


@dg.asset(group_name="serving", kinds={"python", "postgres"}, deps=["champion_1w_model", "technical_features"])
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """The 1w champion's forecast for every universe symbol on the latest trading day,
    mapped to VFR's expectedReturn / probability / direction / confidence
    (`vfr_ml.predictions`, one row per symbol and model version)."""
    champion = _champion(mlflow)
    model = mlflow.registry.load_pyfunc(MODEL_NAME, CHAMPION)
    names = json.loads(champion.tags["feature_names"])
    as_of_cap = date.fromisoformat(market_data.as_of) if market_data.as_of else None
    day = latest_trading_day(warehouse.engine, technical.FEATURE_SET_VERSION, as_of_cap)
    features = features_on(warehouse.engine, technical.FEATURE_SET_VERSION, names, day)
    prices = read_frame(warehouse.engine, "SELECT symbol, close FROM vfr_ml.raw_prices WHERE trade_date = :d", {"d": day})
    forecasts = model.predict(features[names].astype("float64"))
    rows = prediction_rows(
        features,
        prices,
        pd.Series(forecasts).to_numpy(dtype="float64"),
        feature_names=names,
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
    names = json.loads(champion.tags["feature_names"])
    as_of_ms = int(pd.Timestamp(rows["as_of_date"].iloc[0]).tz_localize("America/New_York").replace(hour=16).timestamp() * 1000)

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
        horizon=HORIZON, features=names, hyperparameters=mlflow.registry.run_params(champion.run_id),
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
