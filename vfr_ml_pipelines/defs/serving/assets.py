import json
import time
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from vfr_ml_pipelines import __version__
from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, RedisResource, WarehouseResource
from vfr_ml_pipelines.defs.serving.served import (
    HORIZONS,
    ServedModel,
    close_ms,
    latest_predictions,
    latest_session,
    require_models,
    served_models,
    serving_verdicts,
    session_vectors,
)
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.models.catalog import vfr_payload_type
from vfr_ml_pipelines.lib.models.registry import CHAMPION, serving_model_name
from vfr_ml_pipelines.lib.serving import feature_export, live_model, live_path, payloads, redis_transport, vfr_keys, vfr_writer
from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines.lib.serving.performance import roll_up_performance
from vfr_ml_pipelines.lib.serving.predict import prediction_rows
from vfr_ml_pipelines.lib.serving.ttl import publish_ttl_seconds
from vfr_ml_pipelines.lib.serving.vfr_tables import write_ml_predictions
from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame



class PredictionConfig(dg.Config):
    buy_threshold: float = 0.55
    sell_threshold: float = 0.45


@dg.asset(
    group_name="serving", kinds={"python", "postgres"},
    deps=[*(f"champion_{h}_model" for h in HORIZONS), "feature_matrix"],
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    market_data: MarketDataResource,
) -> dg.MaterializeResult:
    """Every horizon's forecast for every universe symbol on the latest session, from the
    champion and (as a shadow) the challenger, mapped to VFR's expectedReturn /
    probability / direction / confidence (`vfr_ml.predictions`, one row per symbol, horizon
    and model version). Symbols whose latest feature vector is older than the session are
    left out and reported. A horizon without a champion is a normal outcome, stated in the
    metadata and the log (`{h}_verdict`); only a run with no model at all fails."""
    models = served_models(mlflow)
    require_models(models)
    verdicts = serving_verdicts(models)
    for horizon, verdict in verdicts.items():
        context.log.info(f"{horizon}: {verdict}")
    day, features, missing = session_vectors(warehouse, market_data)
    if missing:
        context.log.warning(f"{len(missing)} symbols without a feature vector of {day}: {missing[:10]}")
    prices = read_frame(warehouse.engine, "SELECT symbol, close FROM vfr_ml.raw_prices WHERE trade_date = :d", {"d": day})
    thresholds = payloads.DirectionThresholds(buy=config.buy_threshold, sell=config.sell_threshold)
    metadata: dict = {
        "as_of": str(day), "symbols_without_fresh_features": len(missing),
        **{f"{h}_verdict": v for h, v in verdicts.items()},
    }
    predicted_at = datetime.now(UTC)
    with warehouse.engine.begin() as conn:
        for served in models:
            loaded = mlflow.registry.load_serving_model(served.version.name, served.version.version)
            out = loaded.model.predict_frame(features)
            rows = prediction_rows(
                features, prices, out["expected_return"].to_numpy(),
                probabilities=out["probability"].to_numpy(),
                feature_names=list(catalog.RAW_NAMES),
                thresholds=thresholds, as_of=day, horizon=served.horizon,
                model_name=served.version.name, model_version=served.version.version, predicted_at=predicted_at,
            )
            key = {"d": day, "h": served.horizon, "m": served.version.name, "v": served.version.version}
            conn.execute(
                text("DELETE FROM vfr_ml.predictions WHERE as_of_date = :d AND horizon = :h AND model_name = :m AND model_version = :v"),
                key,
            )
            upsert_frame(conn, "vfr_ml.predictions", rows, ["as_of_date", "horizon", "model_name", "model_version", "symbol"])
            counts = rows["direction"].value_counts().to_dict()
            label = f"{served.horizon}_{served.role}"
            metadata.update(
                {
                    f"{label}_model": served.version.model_id,
                    f"{label}_symbols": len(rows),
                    f"{label}_buy_hold_sell": f"{counts.get('BUY', 0)}/{counts.get('HOLD', 0)}/{counts.get('SELL', 0)}",
                    f"{label}_mean_expected_return": float(rows["expected_return"].mean()),
                    f"{label}_load_seconds": round(loaded.seconds, 3),
                }
            )
    return dg.MaterializeResult(metadata=metadata)


def _prediction_writes(served: ServedModel, rows, now_ms: int, ttl: int) -> list[vfr_writer.CacheWrite]:
    """The champion under `default` and its own id; a challenger under its own id only."""
    model_ids = [payloads.DEFAULT_MODEL_ID, served.version.model_id] if served.is_champion else [served.version.model_id]
    as_of_ms = close_ms(rows["as_of_date"].iloc[0])
    stored = [rec if isinstance(rec, dict) else json.loads(rec) for rec in rows["features"]]
    # completeness over the features that have a source (a price-only market has no
    # fundamental or news features): those some symbol of the session has, as the vector export
    expected = catalog.raw_names_in(set().union(*stored))
    writes = []
    for rec, values in zip(rows.itertuples(index=False), stored):
        vector = payloads.feature_vector(rec.symbol, values, expected, as_of_ms, rec.feature_quality_score)
        for model_id in model_ids:
            # the payload names the real model under every key, `default` included (VFR's
            # reader copies cached.modelId into its result)
            payload = payloads.ml_prediction(
                symbol=rec.symbol, model_id=served.version.model_id, model_version=served.version.version,
                horizon=served.horizon,
                expected_return=rec.expected_return, probability=rec.probability, direction=rec.direction,
                confidence=rec.confidence, features=vector, made_at_ms=now_ms, ttl_seconds=ttl,
            )
            writes.append(vfr_writer.CacheWrite(vfr_keys.prediction_key(rec.symbol, served.horizon, model_id), payload, ttl))
    return writes


def _metadata_write(served: ServedModel, mlflow: MlflowResource, now_ms: int, ttl: int) -> vfr_writer.CacheWrite:
    version = served.version
    config = payloads.model_config(
        model_id=version.model_id, model_type=vfr_payload_type(version.tags.get("algorithm", "")),
        version=version.version, status="ACTIVE" if served.is_champion else "INACTIVE", horizon=served.horizon,
        features=json.loads(version.tags.get("feature_names", "[]")),
        hyperparameters=mlflow.registry.run_params(version.run_id), metrics=mlflow.registry.run_metrics(version.run_id),
        created_at_ms=now_ms, updated_at_ms=now_ms, deployed_at_ms=now_ms if served.is_champion else None,
    )
    return vfr_writer.CacheWrite(vfr_keys.model_metadata_key(version.model_id), config, ttl, compressible=False)


def _ours(model_id: str) -> bool:
    return model_id == payloads.DEFAULT_MODEL_ID or model_id.startswith("vfr-")


def _stale_keys(redis: RedisResource, served_keys: set[str]) -> list[str]:
    """This project's prediction and model-metadata keys (model id `default` or `vfr-*`, our
    horizons) that the new set does not contain, with their `:meta`/`:compressed` variants."""
    prefix = redis.key_prefix
    stale = []
    patterns = [f"{prefix}vfr:ml:prediction:*:{h}:*" for h in HORIZONS] + [f"{prefix}{vfr_keys.model_metadata_key('vfr-*')}"]
    for pattern in patterns:
        for full in redis_transport.scan_keys(redis.client, pattern):
            key = full[len(prefix):]
            base = key.removesuffix(":meta").removesuffix(":compressed")
            model_id = base.rsplit(":", 1)[-1]
            if base not in served_keys and _ours(model_id):
                stale.append(key)
    return stale


@dg.asset(group_name="serving", kinds={"redis"}, deps=[predictions])
def redis_predictions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource, redis: RedisResource
) -> dg.MaterializeResult:
    """The predictions in the live VFR's Redis keys (VFR_CONTRACT.md): each horizon's
    champion under `vfr:ml:prediction:{SYMBOL}:{h}:default` and its own id, the challenger
    under its own id only, each served model's metadata key and the enhancement status; all
    in one MULTI/EXEC (with retries), so VFR reads either the previous set or the new one.
    Keys of symbols or models no longer served are removed in the same transaction.
    (`VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION` splits it, for shorter waits of readers; the
    status and the removals then go in the last transaction.)"""
    models = served_models(mlflow)
    require_models(models)
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    writes: list[vfr_writer.CacheWrite] = []
    metadata: dict = {}
    for served in models:
        rows = latest_predictions(warehouse, served)
        if rows.empty:
            raise dg.Failure(f"no stored predictions of {served.version.model_id}; materialize predictions first")
        writes.extend(_prediction_writes(served, rows, now_ms, ttl))
        writes.append(_metadata_write(served, mlflow, now_ms, ttl))
        metadata[f"{served.horizon}_{served.role}"] = f"{served.version.model_id} ({len(rows)} symbols, as of {rows['as_of_date'].iloc[0]})"
    champions = sum(m.is_champion for m in models)
    # with no champion at all VFR is told ML is unavailable (its classic path serves)
    status = payloads.enhancement_status(available=champions > 0, models_loaded=champions, features_ready=True, now_ms=now_ms)
    metadata.update({f"{h}_verdict": v for h, v in serving_verdicts(models).items()})
    writes.append(vfr_writer.CacheWrite(vfr_keys.ENHANCEMENT_STATUS_KEY, status, ttl, compressible=False))
    stale = _stale_keys(redis, {w.key for w in writes})
    started = time.perf_counter()
    try:
        report = vfr_writer.publish(
            redis.client, redis.key_prefix, writes, version=__version__, deletes=stale, now_ms=now_ms,
            max_entries_per_transaction=redis.publish_max_entries_per_transaction,
        )
    except redis_transport.PublishError as exc:
        raise dg.Failure(str(exc)) from None
    elapsed = time.perf_counter() - started
    context.log.info(f"published {report.written} entries ({report.bytes} bytes) in {elapsed:.3f}s; removed {report.deleted} stale keys")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "entries_written": report.written,
            "entries_compressed": report.compressed,
            "stale_keys_removed": report.deleted,
            "transactions": report.transactions,
            "bytes": report.bytes,
            "ttl_seconds": ttl,
            "key_prefix": redis.key_prefix,
            "publish_seconds": round(elapsed, 4),
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[predictions])
def ml_predictions(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    """The champions' predictions as rows of VFR's `ml_predictions` table (one per symbol,
    session and horizon, under the horizon's enhancement definition `vfr_ml_pipelines_{h}`,
    in VFR's `direction` meaning); re-runs update the same rows. Shadow predictions stay in
    `vfr_ml.predictions`; a horizon without a champion writes nothing (stated in metadata)."""
    models = served_models(mlflow)
    metadata: dict = {f"{h}_verdict": v for h, v in serving_verdicts(models).items()}
    with warehouse.engine.begin() as conn:
        for served in models:
            if not served.is_champion:
                continue
            rows = latest_predictions(warehouse, served)
            if rows.empty:
                raise dg.Failure(f"no stored predictions of {served.version.model_id}; materialize predictions first")
            as_of = rows["as_of_date"].iloc[0]
            metadata[f"{served.horizon}_rows"] = write_ml_predictions(conn, rows, served.horizon, as_of)
            metadata[f"{served.horizon}_as_of"] = str(as_of)
            metadata[f"{served.horizon}_model"] = served.version.model_id
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="serving", kinds={"postgres", "redis"}, deps=["feature_matrix", f"champion_{live_path.LIVE_HORIZON}_model"])
def vfr_feature_export(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    redis: RedisResource,
    market_data: MarketDataResource,
    mlflow: MlflowResource,
) -> dg.MaterializeResult:
    """The latest session's raw features where VFR reads them: `ml_feature_definitions`
    (one row per feature), `ml_feature_store` (one row per symbol and feature; `valid` when
    finite and in range, else `invalid`) and Redis `vfr:ml:feature:vector:{SYMBOL}`
    (`MLFeatureVector`, one MULTI/EXEC with the same TTL policy as predictions). With a
    champion of the live horizon, also that model's inputs for VFR's live ensemble
    (`vfr_live_{name}` for each input a split reads, every symbol, in SQL and in the vectors;
    `live_path.py`)."""
    day, vectors, _ = session_vectors(warehouse, market_data)
    live = mlflow.registry.by_alias(serving_model_name(live_path.LIVE_HORIZON), CHAMPION)
    live_names: list[str] = []
    clip_binds = 0
    if live is not None:
        served = mlflow.registry.load_serving_model(live.name, live.version).model
        try:  # only the inputs a split of the model reads
            live_names = live_model.used_features(served)
        except live_model.LiveExportError as exc:
            context.log.warning(f"{live.model_id} cannot run on VFR's live path, its inputs are not exported: {exc}")
        else:
            # the one part of a model the export cannot express (live_model.not_expressed): how
            # many of this session's symbols VFR's live path scores differently from Redis
            X = vectors.reindex(columns=served.feature_names).to_numpy(dtype="float64", na_value=float("nan"))
            clip_binds = live_model.ridge_clip_binds(served.estimator, X)
            if clip_binds:
                context.log.warning(
                    f"{live.model_id}: the ridge's output clip binds for {clip_binds} of {len(vectors)} symbols of {day}; "
                    "VFR's live path runs the unclipped ridge for them"
                )
    live_written = 0
    live_ids: dict = {}
    with warehouse.engine.begin() as conn:
        ids = feature_export.upsert_feature_definitions(
            conn, catalog.specs_in(vectors.columns), catalog.FEATURE_SET_OF, provider=market_data.provider_name
        )
        rows, skipped = feature_export.feature_store_rows(vectors, ids, day, market_data.provider_name, catalog.RANGES)
        written = feature_export.write_feature_store(conn, rows, day, list(vectors["symbol"]), ids)
        if live_names:
            live_ids = live_path.upsert_live_feature_definitions(conn, live_names, market_data.provider_name, catalog.MATRIX_VERSION)
            live_written = live_path.write_live_inputs(conn, vectors, live_ids, day, market_data.provider_name)
        # what this export no longer produces (a block that lost its source, a former live
        # model's inputs) stops counting in VFR's completeness
        retired = feature_export.retire_feature_definitions(conn, [*ids.values(), *live_ids.values()])

    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    ttl = publish_ttl_seconds(now)
    as_of_ms = close_ms(day)
    writes = []
    for rec in vectors.to_dict("records"):
        vector = payloads.feature_vector(
            rec["symbol"], rec, catalog.raw_names_in(vectors.columns), as_of_ms, rec.get("quality_score")
        )
        if live_names:
            vector = live_path.with_live_inputs(vector, rec, live_names, where=f"{rec['symbol']} on {day}")
        writes.append(vfr_writer.CacheWrite(vfr_keys.feature_vector_key(rec["symbol"]), vector, ttl))
    report = vfr_writer.publish(
        redis.client, redis.key_prefix, writes, version=__version__, now_ms=now_ms,
        max_entries_per_transaction=redis.publish_max_entries_per_transaction,
    )
    invalid = int((rows["validation_status"] == "invalid").sum()) if not rows.empty else 0
    context.log.info(f"exported {written} feature values of {day} ({invalid} invalid, {skipped} missing) and {report.written} vectors")
    if retired:
        context.log.info(f"{len(retired)} feature definitions no longer produced are now inactive: {', '.join(retired[:10])}"
                         + (" ..." if len(retired) > 10 else ""))
    return dg.MaterializeResult(
        metadata={
            "as_of": str(day),
            "symbols": len(vectors),
            "feature_definitions": len(ids),
            "feature_definitions_retired": len(retired),
            "feature_store_rows": written,
            "live_model_inputs": len(live_names),
            "live_input_rows": live_written,
            "live_ridge_clip_binds": clip_binds,
            "invalid_values": invalid,
            "missing_values": skipped,
            "redis_vectors": report.written,
            "ttl_seconds": ttl,
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[ml_predictions, "labels"])
def prediction_outcomes(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource
) -> dg.MaterializeResult:
    """Realized outcomes with VFR's definitions: once a prediction's horizon has passed (its
    label is known), one `ml_outcomes` row (what VFR's /api/ml/metrics reads, through its
    views, refreshed here) and the outcome columns of its `ml_predictions` row
    (lib/serving/outcomes.py); re-runs change nothing."""
    with warehouse.engine.begin() as conn:
        report = fill_outcomes(conn, today=market_data.today())
    context.log.info(
        f"filled {report.rows_updated} outcomes ({report.outcomes_written} ml_outcomes rows written, "
        f"{report.outcomes_skipped} outside VFR's range); {report.pending} predictions still pending"
    )
    return dg.MaterializeResult(
        metadata={
            "rows_updated": report.rows_updated,
            **{f"{h}_rows_updated": n for h, n in report.horizons.items()},
            "ml_outcomes_written": report.outcomes_written,
            "ml_outcomes_skipped": report.outcomes_skipped,
            "pending": report.pending,
            "oldest_pending": str(report.oldest_pending) if report.oldest_pending else "none",
        }
    )


@dg.asset(group_name="serving", kinds={"postgres"}, deps=[prediction_outcomes])
def ml_performance_metrics(warehouse: WarehouseResource, market_data: MarketDataResource) -> dg.MaterializeResult:
    """The daily roll-up in VFR's `ml_performance_metrics` for the latest session:
    predictions made, and the realized accuracy of the outcomes that became known that day
    (lib/serving/performance.py)."""
    day = latest_session(warehouse, market_data)
    with warehouse.engine.begin() as conn:
        row = roll_up_performance(conn, metric_date=day)
    return dg.MaterializeResult(
        metadata={"metric_date": str(day), **{k: v for k, v in row.items() if v is not None}}
    )
