"""The code location loads, in process and in the Dagster webserver from workspace.yaml."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from vfr_ml_pipelines.definitions import ALL_CHECKS, defs

REPO = Path(__file__).resolve().parents[2]
HORIZONS = ("1d", "1w", "1m")
MODEL_ASSETS = {
    f"{kind}_{h}_model" for h in HORIZONS for kind in ("lightgbm", "xgboost", "linear", "ensemble", "challenger", "champion")
} | {"live_1w_model"}
DAILY_ASSETS = {
    "universe", "raw_prices", "raw_fundamentals", "raw_news", "synthetic_oracle",
    "technical_features", "fundamental_features", "sentiment_features", "feature_matrix", "labels",
    "vfr_feature_export", "predictions", "redis_predictions", "ml_predictions", "prediction_outcomes",
    "ml_performance_metrics", "vfr_live_model",
}
BACKTEST_ASSETS = {*(f"backtest_{h}" for h in HORIZONS), "risk_report", "live_track_record"}


def _job_assets(name: str) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys}


def test_definitions_load_with_every_asset_job_and_schedule():
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert DAILY_ASSETS <= keys and MODEL_ASSETS <= keys
    assert _job_assets("full_pipeline_job") == keys
    # the daily run serves the current champions; training is the weekly job's
    assert not _job_assets("daily_pipeline_job") & MODEL_ASSETS
    assert MODEL_ASSETS <= _job_assets("retraining_job")
    # a retrain backtests what it trained; the backtests are evidence the champions show
    assert BACKTEST_ASSETS <= keys and BACKTEST_ASSETS <= _job_assets("retraining_job")
    assert not _job_assets("daily_pipeline_job") & BACKTEST_ASSETS
    graph = defs.resolve_asset_graph()
    assert {dg.AssetKey(f"backtest_{h}") in graph.get(dg.AssetKey(f"champion_{h}_model")).parent_keys for h in HORIZONS} == {True}
    assert _job_assets("rollback_1w_job") == {
        "champion_1w_model", "predictions", "redis_predictions", "ml_predictions", "vfr_feature_export", "vfr_live_model",
    }
    # the live model's line rolls back too, and republishes (vfr_live_model deploys it)
    assert _job_assets("rollback_live_1w_job") == {
        "live_1w_model", "predictions", "redis_predictions", "ml_predictions", "vfr_feature_export", "vfr_live_model",
    }
    assert {"disable_ml_job", "republish_job"} <= {j.name for j in defs.resolve_all_job_defs()}
    assert defs.resolve_schedule_def("daily_pipeline_schedule").cron_schedule == "30 18 * * 1-5"
    assert defs.resolve_schedule_def("weekly_retraining_schedule").cron_schedule == "0 6 * * 6"
    job = defs.resolve_job_def("full_pipeline_job")
    checks = {(key.asset_key.to_user_string(), key.name) for key in job.asset_layer.asset_graph.asset_check_keys}
    assert {("raw_prices", "raw_prices_are_valid_bars"), ("predictions", "predictions_are_publishable")} <= checks
    assert {(f"challenger_{h}_model", "promotion_gate") for h in HORIZONS} <= checks
    blocking = {
        spec.key.asset_key.to_user_string()
        for checks_def in ALL_CHECKS for spec in checks_def.check_specs
        if spec.blocking and spec.key.name in ("promotion_gate", "predictions_are_publishable")
    }
    assert blocking == {*(f"challenger_{h}_model" for h in HORIZONS), "predictions"}


def test_market_data_is_partitioned_by_nyse_session():
    from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions

    keys = set(trading_day_partitions.get_partition_keys())
    assert "2024-07-05" in keys
    assert "2024-07-04" not in keys  # Independence Day
    assert "2024-03-29" not in keys  # Good Friday
    assert "2024-07-06" not in keys  # a Saturday


def test_schedule_requests_the_session_and_skips_holidays():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    ny = ZoneInfo("America/New_York")
    repo = defs.get_repository_def()
    friday = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 7, 5, 18, 30, tzinfo=ny), repository_def=repo)
    requests = schedule.evaluate_tick(friday).run_requests
    assert [r.partition_key for r in requests] == ["2024-07-05"]
    holiday = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 7, 4, 18, 30, tzinfo=ny), repository_def=repo)
    result = schedule.evaluate_tick(holiday)
    assert not result.run_requests and "not an NYSE session" in result.skip_message
    for spec in defs.resolve_all_asset_specs():
        assert spec.description, f"{spec.key} has no docstring"
        assert spec.group_name != "default", f"{spec.key} has no group"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def test_webserver_loads_the_code_location_from_workspace_yaml(tmp_path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "VFR_ML_HOME": str(tmp_path / "state")}
    log = tmp_path / "webserver.log"
    with open(log, "wb") as output:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        # a liveness bound, not a timing assertion: generous, since a loaded 2-core machine
        # took over 120 s to start the webserver and load the code location
        deadline = time.monotonic() + 420
        entry = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"webserver exited ({proc.returncode}): {log.read_text()[-2000:]}"
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": QUERY}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                body = json.loads(urllib.request.urlopen(request, timeout=5).read())
                entries = body["data"]["workspaceOrError"]["locationEntries"]
                entry = entries[0] if entries else None
                if entry and entry["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            time.sleep(1)
        assert entry is not None, f"webserver never answered: {log.read_text()[-2000:]}"
        assert entry["name"] == "vfr_ml_pipelines"
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_publish_split_comes_from_the_environment_and_bad_values_are_named(monkeypatch):
    from vfr_ml_pipelines.defs.resources import build_resources

    monkeypatch.delenv("VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION", raising=False)
    assert build_resources()["redis"].publish_max_entries_per_transaction is None
    monkeypatch.setenv("VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION", "500")
    assert build_resources()["redis"].publish_max_entries_per_transaction == 500
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv("VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION", bad)
        with pytest.raises(ValueError, match=f"VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION.*{bad!r}"):
            build_resources()
