"""`feature_drift` on a small registered champion and feature matrix, and `drift_sensor`'s one
request per drift event, evaluated with Dagster's own sensor context."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.defs.monitoring.drift import DRIFT_EVENT_TAG, DRIFT_TRIGGERS_TAG, FEATURE_DRIFT, drift_sensor, feature_drift
from vfr_ml_pipelines.defs.resources import AlertWebhookResource, FeatureStoreResource, MlflowResource
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.monitoring.decision import DecisionConfig
from vfr_ml_pipelines_tests.defs.monitoring.champion import NAMES, register_champion

DAYS = calendar.trading_days(pd.Timestamp("2025-01-02").date(), pd.Timestamp("2025-12-31").date())
TRAIN_END = DAYS[-41]
SYMBOLS = [f"S{i:02d}" for i in range(40)]


def _matrix(shift: float) -> pd.DataFrame:
    """Stationary features; f0 (the one the model uses) moves by `shift` std over the last 20 sessions."""
    rng = np.random.default_rng(7)
    index = pd.MultiIndex.from_product([DAYS, SYMBOLS], names=["trade_date", "symbol"])
    frame = pd.DataFrame(rng.normal(size=(len(index), len(NAMES))), columns=NAMES, index=index).reset_index()
    frame.loc[frame["trade_date"] >= DAYS[-20], "f0"] += shift
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    return frame[["symbol", "trade_date", *NAMES]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("drift")
    registry = register_champion(root, {"data_start": str(DAYS[0]), "data_end": str(TRAIN_END)})
    return {"mlflow": MlflowResource(tracking_uri=registry.tracking_uri), "root": root}


def _materialize(served: dict, shift: float, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    store_root = served["root"] / f"store-{shift}"
    OfflineFeatureStore(store_root).write(catalog.MATRIX_VERSION, _matrix(shift), lineage={})
    return dg.materialize([feature_drift], instance=instance, resources={
        "mlflow": served["mlflow"], "feature_store": FeatureStoreResource(root=str(store_root)),
    })


def test_feature_drift_reports_the_table_and_scores_per_horizon(served: dict) -> None:
    instance = dg.DagsterInstance.ephemeral()
    metadata = _materialize(served, 1.0, instance).asset_materializations_for_node("feature_drift")[0].metadata
    assert metadata["session"].value == str(DAYS[-1]) and metadata["drifted_1w"].value is True
    rows = {r.data["feature"]: r.data for r in metadata["drift_table"].value.records}
    assert rows["f0"]["drifted"] and rows["f0"]["wasserstein"] > 0.8 and not rows["f1"]["drifted"]
    assert rows["f0"]["horizon"] == "1w" and metadata["drift_score_1w"].value >= rows["f0"]["importance"] - 1e-4 > 0.5
    assert "data:image/png;base64," in metadata["drift_plot"].value
    assert "importance" in metadata["drift_trigger_1w"].value.split(",") and rows["f0"]["exceedance"] > 1
    assert metadata["calibration"].value["1w"] in ("computed", "reused") and metadata["breadth_thresholds"].value["1w"] >= 1
    short = metadata["breadth_short_windows"].value["1w"]  # the breadth of the last 10 and 5 sessions
    assert set(short) == {"last_10", "last_5"} and all(w["threshold"] >= 1 for w in short.values())

    calm = _materialize(served, 0.0, dg.DagsterInstance.ephemeral()).asset_materializations_for_node("feature_drift")[0]
    assert calm.metadata["drifted_1w"].value is False and calm.metadata["drift_score_1w"].value < 0.25


def _report(instance: dg.DagsterInstance, session: str, drifted: bool) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(
        FEATURE_DRIFT, metadata={"session": session, "drift_score_1w": 0.6 if drifted else 0.0, "drifted_1w": drifted,
                                 "drift_trigger_1w": "breadth" if drifted else ""},
    ))


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alert_webhook": AlertWebhookResource()})
    result = drift_sensor(context)
    return ([result] if isinstance(result, dg.RunRequest) else []), context.cursor


def _finish(instance: dg.DagsterInstance, request: dg.RunRequest) -> None:
    """The requested retraining run, as the daemon would have launched it, finished."""
    instance.add_run(dg.DagsterRun(job_name="retraining_job", run_id=request.run_key.replace("-", "")[:8] + "0" * 24,
                                   tags=request.tags, status=dg.DagsterRunStatus.SUCCESS))


def test_drift_sensor_requests_once_per_drift_event() -> None:
    instance = dg.DagsterInstance.ephemeral()
    requests, cursor = _tick(instance, None)
    assert not requests  # no report yet
    sessions = [str(d) for d in DAYS[-30:]]

    _report(instance, sessions[0], drifted=True)
    [request], cursor = _tick(instance, cursor)
    assert request.run_key == f"drift-{sessions[0]}" and request.tags[DRIFT_EVENT_TAG] == request.run_key
    assert request.tags["vfr/drifted_horizons"] == "1w" and request.tags[DRIFT_TRIGGERS_TAG] == "1w:breadth"
    assert _tick(instance, cursor)[0] == []  # the same report again
    _report(instance, sessions[1], drifted=True)
    requests, cursor = _tick(instance, cursor)
    assert not requests  # in progress: the run answers the drift

    _finish(instance, request)
    session = 2
    for _ in range(DecisionConfig().cooldown_sessions + 1):  # finished, then cooling down: silent
        _report(instance, sessions[session], drifted=False)
        requests, cursor = _tick(instance, cursor)
        assert not requests
        session += 1
    _report(instance, sessions[session], drifted=False)
    requests, cursor = _tick(instance, cursor)
    assert not requests  # watching, and clear

    _report(instance, sessions[session + 1], drifted=True)  # drift returns: a new event
    [again], _ = _tick(instance, cursor)
    assert again.run_key == f"drift-{sessions[session + 1]}" != request.run_key


def test_drift_sensor_runs_by_default_and_targets_retraining() -> None:
    assert drift_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert drift_sensor.job_name == "retraining_job"
    assert drift_sensor.minimum_interval_seconds == 15 * 60


def test_the_pipeline_reports_the_drift_of_its_champions(pipeline: dict) -> None:
    [materialization] = pipeline["result"].asset_materializations_for_node("feature_drift")
    metadata = materialization.metadata
    champions = {h for h in ("1d", "1w", "1m") if f"drifted_{h}" in metadata}
    assert champions, "the pipeline serves at least one champion"
    table = metadata["drift_table"].value.records
    assert {r.data["horizon"] for r in table} == champions and all(r.data["feature"] for r in table)
    assert 0.0 <= min(metadata[f"drift_score_{h}"].value for h in champions)
