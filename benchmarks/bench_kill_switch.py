"""The kill switch at 5,000 symbols: how long `disable_ml_job`'s work takes (our deployed
`ml_models` rows out of `deployed`, then every Redis key this project wrote removed, VFR's
own keys checked and kept), against a bare SCAN + UNLINK of the same namespaces (what the
switch did before it looked at whose key it is).

    [REDIS_URL=redis://...] [DATABASE_URL=postgresql://...] .venv/bin/python benchmarks/bench_kill_switch.py [--symbols 5000] [--repeats 3]

State before each run, as a daily publish leaves it: per symbol the 3 horizons' predictions
under `default` and the champion's id plus 2 shadows and the live model's prediction under its
own id (9 keys, each an `MLPrediction` with the 98 raw features), our feature vector (98 raw
features + the live model's LIVE_TOP_K inputs), 7 model-metadata keys and the status; VFR's own
keys beside them: a vector VFR's integrators rewrote over ours for 1 symbol in 2 and a
prediction VFR cached for 1 symbol in 5; and in `ml_models` our 3 champions (`validated`) and
the live model (`deployed`) plus VFR's 4 deployed models. Target: the whole switch within 60 s. Redis is REDIS_URL or an embedded server of
its own; PostgreSQL a scratch database (benchmarks/_servers.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import scratch_database  # noqa: E402
from bench_publish import bench_prefix, redis_server, remove_prefix  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.models.live_training import LIVE_TOP_K  # noqa: E402
from vfr_ml_pipelines.lib.serving import kill_switch, payloads, vfr_codec, vfr_keys, vfr_writer  # noqa: E402
from vfr_ml_pipelines.lib.serving.live_path import disable_live_path, live_feature_name  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

NOW_MS = int(time.time() * 1000)
TTL = 86_400
RAW = [f"raw_feature_{i:02d}" for i in range(98)]
LIVE = [live_feature_name(f"matrix_column_{i:03d}") for i in range(LIVE_TOP_K)]
LIVE_ID = "vfr-live-1w.v2"


def our_writes(symbols: list[str]) -> list[vfr_writer.CacheWrite]:
    writes = []
    for n, symbol in enumerate(symbols):
        values = {name: (n * 7 + j) / 13.0 for j, name in enumerate(RAW)}
        vector = payloads.feature_vector(symbol, values, RAW, NOW_MS)
        for horizon in ("1d", "1w", "1m"):
            ids = ["default", f"vfr-{horizon}.v3"] + ([f"vfr-{horizon}.v4"] if horizon != "1m" else []) + ([LIVE_ID] if horizon == "1w" else [])
            for model_id in ids:
                payload = payloads.ml_prediction(
                    symbol=symbol, model_id=model_id, model_version="3", horizon=horizon, expected_return=0.004, probability=0.56,
                    direction="BUY", confidence=0.12, features=vector, made_at_ms=NOW_MS, ttl_seconds=TTL,
                )
                writes.append(vfr_writer.CacheWrite(vfr_keys.prediction_key(symbol, horizon, model_id), payload, TTL))
        full = {**vector, "features": {**vector["features"], **{name: 0.5 for name in LIVE}}, "featureNames": [*RAW, *LIVE]}
        writes.append(vfr_writer.CacheWrite(vfr_keys.feature_vector_key(symbol), full, TTL))
    for model_id in ("vfr-1d.v3", "vfr-1w.v3", "vfr-1m.v3", "vfr-1d.v4", "vfr-1w.v4", "vfr-1m.v4", LIVE_ID):
        writes.append(vfr_writer.CacheWrite(vfr_keys.model_metadata_key(model_id), {"modelId": model_id}, TTL, compressible=False))
    status = payloads.enhancement_status(available=True, models_loaded=3, features_ready=True, now_ms=NOW_MS)
    writes.append(vfr_writer.CacheWrite(vfr_keys.ENHANCEMENT_STATUS_KEY, status, TTL, compressible=False))
    return writes


def vfr_written_keys(symbols: list[str]) -> dict[str, str]:
    """Keys VFR writes itself: integrator vectors over ours (plain keys: VFR's own size) and
    cached predictions under a model uuid."""
    keys = {}
    for n, symbol in enumerate(symbols):
        if n % 2 == 0:
            vector = {"symbol": symbol, "features": {f"vfr_{j}": j / 3 for j in range(40)}, "timestamp": NOW_MS}
            keys[vfr_keys.feature_vector_key(symbol)] = vfr_codec.encode_entry(vector, now_ms=NOW_MS, ttl=900, version="1.0", source="ml-feature-vector")
        if n % 5 == 0:
            keys[vfr_keys.prediction_key(symbol, "1w", "9d1c-uuid")] = vfr_codec.encode_entry(
                {"symbol": symbol}, now_ms=NOW_MS, ttl=300, version="1.0", source="ml-prediction"
            )
    return keys


def set_up(client: redis.Redis, prefix: str, engine, writes, vfr: dict[str, str]) -> int:
    remove_prefix(client, prefix)
    vfr_writer.publish(client, prefix, writes, version="bench", now_ms=NOW_MS)
    pipe = client.pipeline(transaction=False)
    for key, value in vfr.items():
        pipe.delete(prefix + key + ":meta", prefix + key + ":compressed")  # VFR's plain write replaces ours
        pipe.set(prefix + key, value, ex=900)
    pipe.execute()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ml_models"))
        conn.execute(
            text(
                "INSERT INTO ml_models (model_name, model_version, model_type, objective, target_variable, prediction_horizon, status) "
                "VALUES (:n, :v, :t, 'price_prediction', 'x', :h, :s)"
            ),
            [
                {"n": "vfr-1w", "v": "3", "t": "ensemble", "h": "1w", "s": "validated"},
                {"n": "vfr-live-1w", "v": "2", "t": "lightgbm", "h": "1w", "s": "deployed"},
                {"n": "vfr-1d", "v": "3", "t": "ensemble", "h": "1d", "s": "validated"},
                {"n": "vfr-1m", "v": "3", "t": "ensemble", "h": "1m", "s": "validated"},
                *({"n": name, "v": "1.0.0", "t": "lightgbm", "h": "1w", "s": "deployed"} for name in
                  ("sentiment-fusion", "price-prediction", "early-signal-detection", "smart-money-flow")),
            ],
        )
    return sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=5000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    symbols = [f"S{i:05d}" for i in range(args.symbols)]
    writes = our_writes(symbols)
    vfr = vfr_written_keys(symbols)
    with redis_server() as (url, where), scratch_database() as db_url:
        client = redis.Redis.from_url(url)
        engine = create_warehouse_engine(db_url)
        apply_migrations(engine, settings.sql_dir())
        prefix = bench_prefix()
        print(f"Redis: {where}; {args.symbols} symbols, {len(writes)} entries of ours, {len(vfr)} keys of VFR's")
        try:
            best = None
            for run in range(args.repeats):
                total_keys = set_up(client, prefix, engine, writes, vfr)
                started = time.perf_counter()
                with engine.begin() as conn:
                    undeployed = disable_live_path(conn)
                sql_done = time.perf_counter()
                report = kill_switch.disable_ml(client, prefix, version="bench")
                done = time.perf_counter()
                survivors = [k for k in vfr if client.get(prefix + k) is None]
                assert not survivors, f"VFR keys removed: {survivors[:5]}"
                with engine.connect() as conn:
                    deployed = conn.execute(text("SELECT count(*) FROM ml_models WHERE status = 'deployed'")).scalar()
                assert deployed == 4 and undeployed == [LIVE_ID]
                seconds = (sql_done - started, done - sql_done)
                print(f"run {run + 1}: {total_keys} keys under the prefix; ml_models {seconds[0] * 1000:.1f} ms ({undeployed}); "
                      f"Redis {seconds[1]:.2f} s: removed {report.prediction_keys_removed} prediction, {report.feature_keys_removed} feature, "
                      f"{report.metadata_keys_removed} metadata keys, kept {report.foreign_keys_kept} of VFR's")
                best = min(best or 1e9, sum(seconds))
            # the reference: SCAN + UNLINK of the same namespaces, whoever wrote the keys
            set_up(client, prefix, engine, writes, vfr)
            started = time.perf_counter()
            removed = 0
            for namespace in (vfr_keys.PREDICTION_NAMESPACE, vfr_keys.FEATURE_VECTOR_NAMESPACE, vfr_keys.MODEL_METADATA_NAMESPACE):
                keys = list(client.scan_iter(match=vfr_keys.glob_escape(prefix + namespace) + "*", count=1000))
                for i in range(0, len(keys), kill_switch.DELETE_BATCH):
                    removed += client.unlink(*keys[i : i + kill_switch.DELETE_BATCH])
            reference = time.perf_counter() - started
            print(f"reference SCAN + UNLINK without the source check: {reference:.2f} s ({removed} keys, VFR's included)")
            print(f"kill switch, best of {args.repeats}: {best:.2f} s = {best / reference:.1f}x the reference (target: under 60 s)")
        finally:
            remove_prefix(client, prefix)
            engine.dispose()


if __name__ == "__main__":
    main()
