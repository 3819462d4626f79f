"""What issue 12 (VFR's two read paths) adds to a daily publish at 5,000 symbols, measured in one
run against the publish it adds to.

    [DATABASE_URL=postgresql://...] [REDIS_URL=redis://...] .venv/bin/python benchmarks/bench_live_export.py [--symbols 5000] [--inputs 117]

The publish before issue 12 (the reference; a lower bound of a real publish, which also loads
and scores the models, so every share printed is an upper bound):
  * the raw-feature export: `ml_feature_store` rows (`feature_export.feature_store_rows` + COPY)
    and the Redis feature vectors (`payloads.feature_vector`, one `vfr_writer.publish`);
  * the predictions in Redis: two keys per symbol (`default` and the model id) of one horizon
    (`bench_publish.prediction_writes`, one `vfr_writer.publish`);
  * the `ml_predictions` rows and their outcome update (`bench_publish.bench_vfr_rows`).
What issue 12 adds to it:
  * the live model's files (`live_model.write_live_model`) of a LightGBM + XGBoost + ridge
    stacked ensemble (the default run's kind of champion);
  * its inputs as `ml_feature_store` rows (`live_path.write_live_inputs`) and inside the Redis
    vectors (the same vectors with `live_path.session_live_inputs`, minus the raw ones);
  * the session rows, `ml_outcomes` upsert and view refresh of VFR's SQL read path
    (`bench_publish.bench_vfr_rows`).
Prints each part and the share of the added work in the whole publish (target < 10 %).
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
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration  # noqa: E402
from vfr_ml_pipelines.lib.models.ensemble import STACKING, EnsembleModel, fit_stacking_ensemble  # noqa: E402
from vfr_ml_pipelines.lib.models.serving_model import ServingModel  # noqa: E402
from vfr_ml_pipelines.lib.serving import feature_export, live_model, live_path, payloads, vfr_keys, vfr_writer  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

DAY = date(2026, 11, 20)
TARGET_SHARE = 0.10
TTL = 93_600


def _model(inputs: list[str], rng: np.random.Generator) -> ServingModel:
    """A stacked LightGBM + XGBoost + ridge ensemble as the pipeline trains them (the ridge
    weighted: the stacker may give it none on random data)."""
    X = rng.normal(size=(40_000, len(inputs)))
    y = X[:, 0] * 0.1 + rng.normal(size=len(X))
    members = {a: algorithms.fit_regressor(a, X[:30_000], y[:30_000], X[30_000:], y[30_000:], feature_names=inputs,
                                           params={"early_stopping_rounds": 1000, "num_boost_round": 300} if a != "linear" else None)
               for a in ("lightgbm", "xgboost", "linear")}
    scales = fit_stacking_ensemble(members, X[30_000:], y[30_000:]).scales
    ensemble = EnsembleModel(STACKING, members, scales, {"lightgbm": 0.3, "xgboost": 0.3, "linear": 0.4}, 0.0)
    return ServingModel("1w", "ensemble-stacking", ensemble,
                        ReturnCalibration(slope=0.02, intercept=0.001, residual_std=0.03, raw_slope=0.02, ic_t=3.0,
                                          shrinkage=8 / 9, drift=0.001, n_days=90))


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def compare_vector_inputs(vectors: pd.DataFrame, used: list[str]) -> None:
    """The live inputs for the Redis vectors built one value at a time per symbol
    (`with_live_inputs`, what the publish did before) vs for the session at once
    (`session_live_inputs`, what it does now); best of 3 each, no Redis involved."""
    records = vectors.to_dict("records")
    empty = {"symbol": "", "features": {}, "featureNames": []}

    def per_value() -> None:
        for rec in records:
            live_path.with_live_inputs(empty, rec, used, where=rec["symbol"])

    def session() -> None:
        for inputs in live_path.session_live_inputs(vectors, used, DAY):
            live_path.attach_live_inputs(empty, inputs)

    before = min(_timed(per_value)[0] for _ in range(3))
    now = min(_timed(session)[0] for _ in range(3))
    print(f"live inputs for the vectors: per value {before:.2f} s, per session {now:.2f} s ({before / now:.1f}x faster)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--inputs", type=int, default=117)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    raw = list(catalog.RAW_NAMES)
    inputs = raw + [f"matrix_extra_{i:02d}" for i in range(args.inputs - len(raw))]
    values = rng.normal(size=(args.symbols, len(inputs)))
    values[rng.random(values.shape) < 0.05] = np.nan
    vectors = pd.DataFrame(values, columns=inputs)
    vectors.insert(0, "symbol", [f"S{i:05d}" for i in range(args.symbols)])
    vectors["quality_score"], vectors["completeness"] = 0.9, 0.95
    parts: dict[str, float] = {}

    model = _model(inputs, rng)
    with tempfile.TemporaryDirectory() as tmp:
        parts["model files"], folder = _timed(
            lambda: live_model.write_live_model(Path(tmp), "vfr-1w", "1", model, [live_path.live_feature_name(n) for n in inputs]))
        size = sum(p.stat().st_size for p in folder.iterdir())
    used = live_model.used_features(model)
    print(f"model files: {parts['model files']:.2f} s, {size / 1e6:.1f} MB, {len(used)} of {len(inputs)} inputs read")

    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        apply_migrations(engine, settings.sql_dir())
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
    print(f"raw feature rows: {raw_written} in {parts['raw feature rows']:.2f} s; live input rows: {live_written} in {parts['live input rows']:.2f} s")

    compare_vector_inputs(vectors, used)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
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
                live = live_path.session_live_inputs(vectors, used, DAY) if with_live else None
                for i, rec in enumerate(records):
                    vector = payloads.feature_vector(rec["symbol"], rec, raw_names, as_of_ms, rec["quality_score"])
                    if live is not None:
                        vector = live_path.attach_live_inputs(vector, live[i])
                    writes.append(vfr_writer.CacheWrite(vfr_keys.feature_vector_key(rec["symbol"]), vector, TTL))
                vfr_writer.publish(client, prefix, writes, version="bench", now_ms=now_ms)

            parts["raw vectors"], _ = _timed(lambda: publish_vectors(False))
            with_live, _ = _timed(lambda: publish_vectors(True))
            parts["live inputs in vectors"] = max(0.0, with_live - parts["raw vectors"])
            predictions = prediction_writes(args.symbols, 50, "1", now_ms)
            # the same payloads under `default` and the model id, as the publish writes them
            predictions += [vfr_writer.CacheWrite(w.key.replace(":default", ":vfr-1w.v1"), w.data, w.ttl) for w in predictions]
            parts["predictions in Redis"], _ = _timed(lambda: vfr_writer.publish(client, prefix, predictions, version="bench", now_ms=now_ms))
        finally:
            remove_prefix(client, prefix)
            client.close()
    print(f"Redis: raw vectors {parts['raw vectors']:.2f} s, with live inputs {with_live:.2f} s, "
          f"{len(predictions)} predictions {parts['predictions in Redis']:.2f} s")

    sql = bench_vfr_rows(args.symbols, 1)
    parts["ml_predictions rows + outcome update"] = sql["records"] + sql["predictions"] + sql["outcome_update"]
    parts["session rows, ml_outcomes, views"] = sql["sessions"] + max(0.0, sql["fill"] - sql["outcome_update"]) + sql["refresh_views"]

    added = ("model files", "live input rows", "live inputs in vectors", "session rows, ml_outcomes, views")
    publish = sum(parts.values())
    print(f"\nthe publish at {args.symbols:,} symbols ({publish:.2f} s measured; scoring not included):")
    for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {'+' if name in added else ' '} {name:<40} {seconds:7.2f} s  {seconds / publish:6.1%}")
    share = sum(parts[n] for n in added) / publish
    print(f"issue 12 adds {sum(parts[n] for n in added):.2f} s = {share:.1%} of the publish "
          f"({'meets' if share < TARGET_SHARE else 'MISSES'} the {TARGET_SHARE:.0%} target)")


if __name__ == "__main__":
    main()
