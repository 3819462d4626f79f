"""Benchmark: one tick of `drift_sensor` and of `decay_sensor` on an instance with a realistic
history, against Dagster's default sensor evaluation timeout (60 s).

    .venv/bin/python benchmarks/bench_sensors.py [--sessions 504] [--other-assets 2] [--ticks 20] [--storage sqlite,postgres]

History, written through the instance's public API before timing (`--sessions` sessions, two
years by default): per session one `feature_drift` and one `live_performance` materialization
with the metadata the assets write (scores per horizon, a 351-row drift table = 117 features x
3 horizons, a performance table, PNG plots as base64 markdown of 40 kB and 3 x 25 kB), the
materializations of `--other-assets` other assets of the daily run, and one finished
`daily_pipeline_job` run; every fifth session a finished `retraining_job` run, a tenth of them
tagged as a drift or decay event. Storage: Dagster's default SQLite instance (what `vfr-ml ui`
uses) and the production PostgreSQL storage of `dagster.yaml` (on DATABASE_URL's server, else
an embedded one; a database of its own, dropped at the end).

Each sensor is then evaluated `--ticks` times with `dg.build_sensor_context` (cursor carried
from tick to tick, the alert resource without a webhook), on the full instance and on an empty
one with only the latest report: the difference is what the history costs. What is not
measured: the daemon's call into the code location's gRPC server around each tick.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._servers import scratch_database  # noqa: E402
from vfr_ml_pipelines.defs.monitoring.drift import DRIFT_EVENT_TAG, FEATURE_DRIFT, drift_sensor  # noqa: E402
from vfr_ml_pipelines.defs.monitoring.performance import DECAY_EVENT_TAG, LIVE_PERFORMANCE, decay_sensor  # noqa: E402
from vfr_ml_pipelines.defs.resources import AlertWebhookResource  # noqa: E402
from vfr_ml_pipelines.lib.horizons import HORIZONS  # noqa: E402
from vfr_ml_pipelines.lib.market_data import calendar  # noqa: E402

# Dagster's default sensor evaluation timeout ("The default sensor timeout is 60 seconds",
# docs.dagster.io/deployment/troubleshooting/sensor-timeouts)
SENSOR_TIMEOUT_SECONDS = 60.0
FEATURES = 117
RNG = np.random.default_rng(0)


def _png_markdown(kilobytes: int) -> str:
    return f"![plot](data:image/png;base64,{base64.b64encode(RNG.bytes(kilobytes * 768)).decode()})"


def _drift_metadata(session: str, drifted: bool) -> dict:
    rows = [dg.TableRecord({"horizon": h, "feature": f"feature_{i:03d}", "psi": float(RNG.random()), "ks_statistic": float(RNG.random()),
                            "wasserstein": float(RNG.random()), "importance": float(RNG.random()), "drifted": bool(RNG.random() < 0.1)})
            for h in HORIZONS for i in range(FEATURES)]
    scores = {f"drift_score_{h}": (0.6 if drifted else 0.05) for h in HORIZONS} | {f"drifted_{h}": drifted for h in HORIZONS}
    return {"session": session, **scores, "drift_table": dg.MetadataValue.table(rows), "drift_plot": dg.MetadataValue.md(_png_markdown(40)),
            "windows": dg.MetadataValue.json({h: f"vfr-{h}.v3: 2024-01-02..2025-12-31 vs the last 20 sessions" for h in HORIZONS})}


def _performance_metadata(session: str, decayed: bool) -> dict:
    rows = [dg.TableRecord({"model": f"vfr-{h}.v{v}", "rank_ic": float(RNG.normal(0.03, 0.01)), "decay_t": float(RNG.normal())})
            for h in HORIZONS for v in (3, 4)]
    record = {f"decay_score_{h}": (2.5 if decayed else 0.1) for h in HORIZONS} | {f"decayed_{h}": decayed for h in HORIZONS}
    return {"session": session, **record, **{f"shadow_beats_{h}": False for h in HORIZONS},
            "performance": dg.MetadataValue.table(rows), "reliability": dg.MetadataValue.md("\n".join(_png_markdown(25) for _ in HORIZONS))}


def _run(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> None:
    instance.add_run(dg.DagsterRun(job_name=job, run_id=os.urandom(16).hex(), tags=tags, status=dg.DagsterRunStatus.SUCCESS))


def fill_history(instance: dg.DagsterInstance, sessions: list[str], other_assets: int) -> float:
    started = time.perf_counter()
    for i, session in enumerate(sessions):
        for a in range(other_assets):
            instance.report_runless_asset_event(dg.AssetMaterialization(f"daily_asset_{a:02d}", metadata={"session": session, "rows": 500}))
        instance.report_runless_asset_event(dg.AssetMaterialization(FEATURE_DRIFT, metadata=_drift_metadata(session, i % 50 == 49)))
        instance.report_runless_asset_event(dg.AssetMaterialization(LIVE_PERFORMANCE, metadata=_performance_metadata(session, i % 70 == 69)))
        _run(instance, "daily_pipeline_job", {"dagster/partition": session})
        if i % 5 == 4:
            event = {0: {DRIFT_EVENT_TAG: f"drift-{session}"}, 1: {DECAY_EVENT_TAG: f"decay-{session}"}}.get(i // 5 % 10, {})
            _run(instance, "retraining_job", event)
    return time.perf_counter() - started


def time_ticks(instance: dg.DagsterInstance, sensor: dg.SensorDefinition, ticks: int) -> list[float]:
    cursor, seconds = None, []
    resources = {"alert_webhook": AlertWebhookResource()}
    for _ in range(ticks):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        started = time.perf_counter()
        sensor(context)
        seconds.append(time.perf_counter() - started)
        cursor = context.cursor
    return seconds


@contextmanager
def instance_on(storage: str):
    with tempfile.TemporaryDirectory(prefix="vfr-bench-sensors-") as home:
        if storage == "postgres":
            with scratch_database() as url:
                Path(home, "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {url}\ntelemetry:\n  enabled: false\n")
                os.environ["DAGSTER_HOME"] = home
                with dg.DagsterInstance.get() as instance:
                    yield instance
        else:
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            os.environ["DAGSTER_HOME"] = home
            with dg.DagsterInstance.get() as instance:
                yield instance


def _line(label: str, seconds: list[float]) -> str:
    median, worst = statistics.median(seconds), max(seconds)
    return (f"{label:<38} median {median * 1000:8.1f} ms, max {worst * 1000:8.1f} ms; "
            f"max / 60 s timeout = {worst / SENSOR_TIMEOUT_SECONDS:.2e} (headroom {SENSOR_TIMEOUT_SECONDS / worst:,.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=504)
    parser.add_argument("--other-assets", type=int, default=2)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--storage", default="sqlite,postgres")
    args = parser.parse_args()
    sessions = [d.isoformat() for d in calendar.trading_days(calendar.DEFAULT_HISTORY_START, calendar.calendar_end())][: args.sessions]
    print(f"history: {len(sessions)} sessions ({sessions[0]}..{sessions[-1]}), {args.other_assets + 2} materializations and "
          f"1-2 runs per session; {args.ticks} ticks per sensor; Dagster's default sensor timeout {SENSOR_TIMEOUT_SECONDS:.0f} s")
    for storage in args.storage.split(","):
        with instance_on(storage) as empty:
            fill_history(empty, sessions[-1:], 0)
            base = {s.name: time_ticks(empty, s, args.ticks) for s in (drift_sensor, decay_sensor)}
        with instance_on(storage) as full:
            filled = fill_history(full, sessions, args.other_assets)
            print(f"[{storage}] history written in {filled:.0f} s")
            for sensor in (drift_sensor, decay_sensor):
                seconds = time_ticks(full, sensor, args.ticks)
                print(f"[{storage}] " + _line(f"{sensor.name}, empty instance", base[sensor.name]))
                print(f"[{storage}] " + _line(f"{sensor.name}, {len(sessions)}-session history", seconds))
                print(f"[{storage}] {sensor.name}: history / empty (median) = "
                      f"{statistics.median(seconds) / statistics.median(base[sensor.name]):.2f}x")


if __name__ == "__main__":
    main()
