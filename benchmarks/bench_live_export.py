"""What VFR's live path adds to a daily publish at 5,000 symbols, measured in one run against
the publish it adds to.

    [DATABASE_URL=postgresql://...] [REDIS_URL=redis://...] .venv/bin/python benchmarks/bench_live_export.py [--symbols 5000] [--inputs 117] [--live-inputs 12]

The reference is what the daily publish does for the three served horizons:
  * load (through MLflow's pyfunc loader, from a registry in a temp dir) and score the
    champion and the shadow of each horizon (6 stacked LightGBM + XGBoost + ridge ensembles
    on --inputs inputs, the default run's kind of model), map the scores to VFR's fields
    (`predict.symbol_fields` once for the session, `predict.prediction_rows` per version) and
    store them (`store.replace_predictions`);
  * the raw-feature export: `ml_feature_store` rows (`feature_export.feature_store_rows` +
    COPY) and the Redis feature vectors (`payloads.feature_vector`, one `vfr_writer.publish`);
  * the predictions in Redis: per horizon `default` + the champion's id + the shadow's id
    (15,000 keys per horizon);
  * the `ml_predictions` rows and their outcome update of the three champions
    (`bench_publish.bench_vfr_rows` on 3 x --symbols rows of one session).
What issue 12 adds to it:
  * the live model (a stacked LightGBM + ridge on its --live-inputs inputs, `lib/models/live_training.py`):
    its files (`live_model.write_live_model`), its load + score + stored predictions (scored
    from its files, `session_predictions.scoring_model`, as a daily publish does), and its
    predictions in Redis under its own id (5,000 keys, timed in a publish of their own);
  * its inputs as `ml_feature_store` rows (`live_path.write_live_inputs`) and inside the
    Redis vectors (`live_path.session_live_inputs`);
  * the session rows, `ml_outcomes` upsert and view refresh of VFR's SQL read path for the
    three champions.
`--live-inputs 0` measures the fallback instead (the previous design): the 1w champion itself
on VFR's live path (every input it reads, no model of its own), what runs when the live model
has no champion (`live_path.choose_live_model`).
Prints each part, the share of what the live path adds (+) and of issue 12's SQL read path
rows (*) in the whole publish, and of both together (target < 10 %).
PostgreSQL is a scratch database (benchmarks/_servers.py); Redis keys live under a prefix of
their own, removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import scratch_database  # noqa: E402
from bench_publish import bench_prefix, bench_vfr_rows, prediction_writes, redis_server, remove_prefix  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.features import catalog  # noqa: E402
from vfr_ml_pipelines.lib.models import algorithms  # noqa: E402
from vfr_ml_pipelines.lib.models.live_training import LIVE_TOP_K  # noqa: E402
from vfr_ml_pipelines.lib.models.registry import ModelRegistry, RegisteredVersion  # noqa: E402
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration  # noqa: E402
from vfr_ml_pipelines.lib.models.ensemble import STACKING, EnsembleModel, fit_stacking_ensemble  # noqa: E402
from vfr_ml_pipelines.lib.models.serving_model import ServingModel  # noqa: E402
from vfr_ml_pipelines.lib.serving import feature_export, live_model, live_path, payloads, store, vfr_keys, vfr_writer  # noqa: E402
from vfr_ml_pipelines.lib.serving.predict import prediction_rows, symbol_fields  # noqa: E402
from vfr_ml_pipelines.lib.serving.served_models import LIVE_ROLE, ServedVersion  # noqa: E402
from vfr_ml_pipelines.lib.serving.session_predictions import scoring_model  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

DAY = date(2026, 11, 20)
TARGET_SHARE = 0.10
TTL = 93_600
HORIZONS = ("1d", "1w", "1m")
LIVE_NAME = "vfr-live-1w"
CALIBRATION = ReturnCalibration(slope=0.02, intercept=0.001, residual_std=0.03, raw_slope=0.02, ic_t=3.0,
                                shrinkage=8 / 9, drift=0.001, n_days=90)


def _ensemble(inputs: list[str], rng: np.random.Generator) -> EnsembleModel:
    """A stacked LightGBM + XGBoost + ridge ensemble as the pipeline trains them (the ridge
    weighted: the stacker may give it none on random data)."""
    X = rng.normal(size=(40_000, len(inputs)))
    y = X[:, 0] * 0.1 + rng.normal(size=len(X))
    members = {a: algorithms.fit_regressor(a, X[:30_000], y[:30_000], X[30_000:], y[30_000:], feature_names=inputs,
                                           params={"early_stopping_rounds": 1000, "num_boost_round": 300} if a != "linear" else None)
               for a in ("lightgbm", "xgboost", "linear")}
    scales = fit_stacking_ensemble(members, X[30_000:], y[30_000:]).scales
    return EnsembleModel(STACKING, members, scales, {"lightgbm": 0.3, "xgboost": 0.3, "linear": 0.4}, 0.0)


def _live_model(inputs: list[str], rng: np.random.Generator) -> ServingModel:
    """The live line's kind of model (`live_training.LIVE_ALGORITHMS`): a stacked LightGBM +
    ridge ensemble on the live inputs (what it selected on the default history, seed 7)."""
    X = rng.normal(size=(40_000, len(inputs)))
    y = X[:, 0] * 0.1 + rng.normal(size=len(X))
    members = {a: algorithms.fit_regressor(a, X[:30_000], y[:30_000], X[30_000:], y[30_000:], feature_names=inputs,
                                           params={"early_stopping_rounds": 1000, "num_boost_round": 300} if a != "linear" else None)
               for a in ("lightgbm", "linear")}
    scales = fit_stacking_ensemble(members, X[30_000:], y[30_000:]).scales
    estimator = EnsembleModel(STACKING, members, scales, {"lightgbm": 0.5, "linear": 0.5}, 0.0)
    return ServingModel("1w", "ensemble-stacking", estimator, CALIBRATION)


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _register(registry: ModelRegistry, model: ServingModel, name: str, example: pd.DataFrame) -> RegisteredVersion:
    return registry.log_serving_model(model, experiment="bench", registered_name=name, run_name=name, tags={},
                                      params={}, metrics={}, artifacts={}, input_example=example)


def _load_and_score(conn, registry: ModelRegistry, served: ServedVersion, vectors: pd.DataFrame, prices: pd.DataFrame,
                    now: datetime, fields: pd.DataFrame, models_dir: Path | None = None) -> str:
    """What `session_predictions.predict_session` does for one served version (`fields`: the
    session's model-independent part, built once for all versions); the live model from its
    files in `models_dir` (`session_predictions.scoring_model`). Returns where it scored from."""
    horizon, name, version = served.horizon, served.version.name, served.version.version
    model, _, scored_from = scoring_model(registry, served, models_dir)
    out = model.predict_frame(vectors)
    rows = prediction_rows(vectors, prices, out["expected_return"].to_numpy(), probabilities=out["probability"].to_numpy(),
                           feature_names=list(catalog.RAW_NAMES), thresholds=payloads.DirectionThresholds(), as_of=DAY,
                           horizon=horizon, model_name=name, model_version=version, predicted_at=now, fields=fields)
    store.replace_predictions(conn, rows, as_of=DAY, horizon=horizon, model_name=name, model_version=version)
    return scored_from


def _prediction_keys(symbols: int, now_ms: int, model_ids: dict[str, list[str]]) -> list[vfr_writer.CacheWrite]:
    """Per horizon, the same realistic payloads under each of its model ids."""
    base = prediction_writes(symbols, 50, "1", now_ms)
    return [vfr_writer.CacheWrite(w.key.replace(":1w:default", f":{h}:{model_id}"), w.data, w.ttl)
            for h, ids in model_ids.items() for model_id in ids for w in base]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--inputs", type=int, default=117)
    parser.add_argument("--live-inputs", type=int, default=LIVE_TOP_K,
                        help="inputs of the live model (0: the fallback, the 1w champion on the live path)")
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    raw = list(catalog.RAW_NAMES)
    inputs = raw + [f"matrix_extra_{i:02d}" for i in range(args.inputs - len(raw))]
    values = rng.normal(size=(args.symbols, len(inputs)))
    values[rng.random(values.shape) < 0.05] = np.nan
    vectors = pd.DataFrame(values, columns=inputs)
    vectors.insert(0, "symbol", [f"S{i:05d}" for i in range(args.symbols)])
    vectors["quality_score"], vectors["completeness"] = 0.9, 0.95
    prices = pd.DataFrame({"symbol": vectors["symbol"], "close": rng.uniform(5, 500, args.symbols).round(2)})
    now = datetime.now(UTC)
    own_model = args.live_inputs > 0
    parts: dict[str, float] = {}

    served = _ensemble(inputs, rng)
    live = _live_model(inputs[: args.live_inputs], rng) if own_model else ServingModel("1w", "ensemble-stacking", served, CALIBRATION)
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(f"sqlite:///{Path(tmp) / 'mlflow.db'}", artifact_root=Path(tmp) / "artifacts")
        example = vectors.head(5)
        # champion and shadow of each horizon (the same ensemble: loading and scoring cost the same)
        versions = {(h, role): _register(registry, ServingModel(h, "ensemble-stacking", served, CALIBRATION), f"vfr-{h}", example)
                    for h in HORIZONS for role in ("champion", "shadow")}
        live_version = _register(registry, live, LIVE_NAME, example) if own_model else None
        print(f"registered {len(versions) + own_model} model versions")

        models_dir = Path(tmp) / "vfr_models"
        parts["live model files"], folder = _timed(lambda: live_model.write_live_model(
            models_dir, LIVE_NAME, "1", live, [live_path.live_feature_name(n) for n in live.feature_names],
            run_id=live_version.run_id if own_model else ""))
        size = sum(p.stat().st_size for p in folder.iterdir())
        used = live_model.used_features(live)
        print(f"live model files: {parts['live model files']:.2f} s, {size / 1e6:.2f} MB, {len(used)} of {len(inputs)} inputs read")

        with scratch_database() as url:
            engine = create_warehouse_engine(url)
            apply_migrations(engine, settings.sql_dir())
            with engine.begin() as conn:
                fields: list[pd.DataFrame] = []

                def score_served() -> None:
                    fields.append(symbol_fields(vectors, prices, feature_names=list(catalog.RAW_NAMES), as_of=DAY))
                    for (h, role), version in versions.items():
                        _load_and_score(conn, registry, ServedVersion(h, role, version), vectors, prices, now, fields[0])
                parts["load + score served models"], _ = _timed(score_served)
                if own_model:
                    # the daily publish's case: the files of the live champion are there since its deployment
                    parts["live model load + score"], scored_from = _timed(lambda: _load_and_score(
                        conn, registry, ServedVersion("1w", LIVE_ROLE, live_version), vectors, prices, now, fields[0], models_dir))
                    print(f"the live model scored from: {scored_from}")
            with engine.begin() as conn:
                started = time.perf_counter()
                ids = feature_export.upsert_feature_definitions(conn, catalog.RAW_SPECS, catalog.FEATURE_SET_OF, provider="bench")
                rows, _ = feature_export.feature_store_rows(vectors, ids, DAY, "bench", catalog.RANGES)
                raw_written = feature_export.write_feature_store(conn, rows, DAY, list(vectors["symbol"]), ids)
                parts["raw feature rows"] = time.perf_counter() - started
            with engine.begin() as conn:
                started = time.perf_counter()
                live_ids = live_path.upsert_live_feature_definitions(conn, used, "bench", catalog.MATRIX_VERSION)
                live_written = live_path.write_live_inputs(conn, vectors, live_ids, DAY, "bench")
                parts["live input rows"] = time.perf_counter() - started
            engine.dispose()
    print(f"served models: 6 loaded and scored in {parts['load + score served models']:.2f} s"
          + (f"; the live model in {parts['live model load + score']:.2f} s" if own_model else ""))
    print(f"raw feature rows: {raw_written} in {parts['raw feature rows']:.2f} s; live input rows: {live_written} in {parts['live input rows']:.2f} s")

    now_ms = int(now.timestamp() * 1000)
    as_of_ms = now_ms - 7_200_000
    raw_names = catalog.raw_names_in(vectors.columns)
    records = vectors.to_dict("records")
    with redis_server() as (redis_url, _):
        client = redis.Redis.from_url(redis_url)
        prefix = bench_prefix()
        try:
            def publish_vectors(with_live: bool) -> None:
                writes = []
                # as session_export does: the session's inputs at once, then one dict per vector
                live_inputs = live_path.session_live_inputs(vectors, used, DAY) if with_live else None
                for i, rec in enumerate(records):
                    vector = payloads.feature_vector(rec["symbol"], rec, raw_names, as_of_ms, rec["quality_score"])
                    if live_inputs is not None:
                        vector = live_path.attach_live_inputs(vector, live_inputs[i])
                    writes.append(vfr_writer.CacheWrite(vfr_keys.feature_vector_key(rec["symbol"]), vector, TTL))
                vfr_writer.publish(client, prefix, writes, version="bench", now_ms=now_ms)

            parts["raw vectors"], _ = _timed(lambda: publish_vectors(False))
            with_live, _ = _timed(lambda: publish_vectors(True))
            parts["live inputs in vectors"] = max(0.0, with_live - parts["raw vectors"])
            served_ids = {h: ["default", f"vfr-{h}.v1", f"vfr-{h}.v2"] for h in HORIZONS}
            predictions = _prediction_keys(args.symbols, now_ms, served_ids)
            parts["predictions in Redis"], _ = _timed(lambda: vfr_writer.publish(client, prefix, predictions, version="bench", now_ms=now_ms))
            if own_model:
                # timed alone: a difference of two publishes of 45,000 keys is within their noise
                own = _prediction_keys(args.symbols, now_ms, {"1w": [f"{LIVE_NAME}.v1"]})
                parts["live model predictions in Redis"], _ = _timed(
                    lambda: vfr_writer.publish(client, prefix, own, version="bench", now_ms=now_ms))
        finally:
            remove_prefix(client, prefix)
            client.close()
    print(f"Redis: raw vectors {parts['raw vectors']:.2f} s, with live inputs {with_live:.2f} s, "
          f"{len(predictions)} predictions {parts['predictions in Redis']:.2f} s")

    # the three champions' rows of one session: 3 x symbols rows
    sql = bench_vfr_rows(args.symbols * len(HORIZONS), 2)  # best of 2: one run varied 2-5 s
    parts["ml_predictions rows + outcome update"] = sql["records"] + sql["predictions"] + sql["outcome_update"]
    parts["session rows, ml_outcomes, views"] = sql["sessions"] + max(0.0, sql["fill"] - sql["outcome_update"]) + sql["refresh_views"]

    live_parts = ("live model files", "live model load + score", "live model predictions in Redis", "live input rows",
                  "live inputs in vectors")
    sql_parts = ("session rows, ml_outcomes, views",)
    publish = sum(parts.values())
    what = (f"a live model of its own on {len(used)} inputs" if own_model
            else f"the fallback: the 1w champion on the live path ({len(used)} inputs)")
    print(f"\nthe publish at {args.symbols:,} symbols, 3 horizons, {what} ({publish:.2f} s measured):")
    for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        mark = "+" if name in live_parts else "*" if name in sql_parts else " "
        print(f"  {mark} {name:<40} {seconds:7.2f} s  {seconds / publish:6.1%}")

    def verdict(seconds: float) -> str:
        return f"{seconds:.2f} s = {seconds / publish:.1%} ({'meets' if seconds / publish < TARGET_SHARE else 'MISSES'} the {TARGET_SHARE:.0%} target)"

    live_only = sum(parts.get(n, 0.0) for n in live_parts)
    sql_only = sum(parts[n] for n in sql_parts)
    print(f"+ VFR's live path adds {verdict(live_only)}")
    print(f"* VFR's SQL read path (issue 12's session rows, ml_outcomes, views) adds {sql_only:.2f} s = {sql_only / publish:.1%}")
    print(f"issue 12 as a whole (+ and *) adds {verdict(live_only + sql_only)}")

if __name__ == "__main__":
    main()
