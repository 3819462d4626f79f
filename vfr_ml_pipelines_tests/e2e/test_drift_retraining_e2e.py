"""Issue 15's end-to-end drift loop on the real pipeline: a synthetic market whose shocks and
signals shift at session S (`SyntheticMarketDataResource.shift_start`, the resource behind
`VFR_SYNTHETIC_SHIFT_START`), champions trained on the sessions before S, then the daily job
run session by session after S with `drift_sensor` evaluated after each (Dagster's own
sensor context, the cursor carried over, the instance that holds the runs). The sensor's
request is executed as `retraining_job` on the same instance, as the daemon would launch it.

The same trained state (database copied, MLflow and feature store copied) runs the same
sessions without the shift: no request and no alert. Real PostgreSQL, Redis and MLflow; the
alerts go to a local webhook server.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import redis

from vfr_ml_pipelines.definitions import ALL_ASSETS, ALL_CHECKS
from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.defs.monitoring.drift import DRIFT_EVENT_TAG, DRIFT_TRIGGERS_TAG, drift_sensor
from vfr_ml_pipelines.defs.pipeline.jobs import daily_pipeline_job
from vfr_ml_pipelines.defs.resources import AlertWebhookResource
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, serving_model_name
from vfr_ml_pipelines.lib.monitoring.decision import COOLDOWN, DecisionConfig, DriftCursor
from vfr_ml_pipelines.lib.monitoring.detection_study import PanelSpec
from vfr_ml_pipelines_tests.helpers import HISTORY_START, pipeline_resources, training_run_config
from vfr_ml_pipelines_tests.webhook_server import SECRET_PATH, RecordingHandler, webhook_server, webhook_url

TRAINED_UNTIL = "2026-11-20"  # a Friday: champions are trained on the sessions up to here
SHIFT_START = "2026-11-23"  # S, the Monday after
# S and the sessions after it, up to the last partition (Thanksgiving, 26 November, is not one)
STRETCH = [k for k in trading_day_partitions.get_partition_keys() if SHIFT_START <= k <= "2026-12-07"]
AS_OF = STRETCH[-1]  # one market for every run: the simulation does not move between sessions
MAX_DELAY = PanelSpec.max_delay  # the detection delay docs/monitoring.md documents (10 sessions)
# the full training path (walk-forward, three canary seeds, registry, gate) without a search
# (one canary seed alone crosses the canary's noise bound by chance and blocks the run)
TRAINING = training_run_config(tuning_trials=0, n_folds=2)


def _resources(database_url: str, redis_url: str, prefix: str, state: Path, shift_start: str | None) -> dict:
    return pipeline_resources(database_url, redis_url, prefix, state, as_of=AS_OF, shift_start=shift_start)


def _versions(resources: dict) -> dict[str, set[str]]:
    registry = resources["mlflow"].registry
    return {h: {v.version for v in registry.versions(serving_model_name(h))} for h in HORIZONS}


@dataclass
class Stretch:
    """What the sessions after S produced."""

    scores: dict[str, float] = field(default_factory=dict)  # session -> drift score (largest horizon)
    requests: list[tuple[str, dg.RunRequest]] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)  # the sensor cursor's phase after each session
    alerts: list[dict] = field(default_factory=list)
    versions_before: dict[str, set[str]] = field(default_factory=dict)
    versions_after: dict[str, set[str]] = field(default_factory=dict)
    retrainings: list[dg.ExecuteInProcessResult] = field(default_factory=list)  # one per request, in order
    resources: dict = field(default_factory=dict)


def _run_stretch(resources: dict) -> Stretch:
    """The daily job over STRETCH on a fresh instance, the drift sensor after each session,
    and the retraining run it requests."""
    out = Stretch(versions_before=_versions(resources), resources=resources)
    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[daily_pipeline_job, retraining_job], resources=resources)
    daily, retraining = defs.resolve_job_def("daily_pipeline_job"), defs.resolve_job_def("retraining_job")
    cursor = None
    with webhook_server(RecordingHandler) as server:
        webhook = AlertWebhookResource(url=webhook_url(server, "ok"))
        for session in STRETCH:
            run = daily.execute_in_process(partition_key=session, instance=instance)
            assert run.success, session
            metadata = run.asset_materializations_for_node("feature_drift")[0].metadata
            assert metadata["session"].value == session
            out.scores[session] = max(v.value for k, v in metadata.items() if k.startswith("drift_score_"))
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alert_webhook": webhook})
            result = drift_sensor(context)
            cursor = context.cursor
            out.phases.append(DriftCursor.from_string(cursor).phase)
            if isinstance(result, dg.RunRequest):
                out.requests.append((session, result))
                # a challenger the promotion gate blocks fails the run: a normal outcome here
                out.retrainings.append(retraining.execute_in_process(
                    instance=instance, tags=result.tags, run_config=TRAINING, raise_on_error=False))
        out.alerts = list(server.received)
    out.versions_after = _versions(resources)
    return out


@pytest.fixture(scope="module")
def stretches(make_database, redis_url: str, redis_client: redis.Redis, tmp_path_factory: pytest.TempPathFactory):
    """Champions trained up to TRAINED_UNTIL once; the state copied; then the stretch with the
    shift on the original and without it on the copy."""
    state = tmp_path_factory.mktemp("drift-e2e")
    trained_url = make_database("drift_shifted")
    prefixes = [f"vfrtest-drift-{secrets.token_hex(3)}-{k}:veritak:mcp:" for k in ("shifted", "calm")]
    shifted = _resources(trained_url, redis_url, prefixes[0], state / "shifted", SHIFT_START)
    trained = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], resources=shifted, instance=dg.DagsterInstance.ephemeral(), run_config=TRAINING,
        tags={"dagster/asset_partition_range_start": HISTORY_START, "dagster/asset_partition_range_end": TRAINED_UNTIL},
    )
    assert trained.success
    before = trained.asset_materializations_for_node("feature_drift")[0].metadata
    # the sessions before S are the same with and without the shift: one training serves both
    calm_url = make_database("drift_calm", template=trained_url)
    shutil.copytree(state / "shifted", state / "calm")
    calm = _resources(calm_url, redis_url, prefixes[1], state / "calm", None)
    try:
        yield {"before": {k: v.value for k, v in before.items() if k.startswith(("drift_score_", "drifted_", "session"))},
               "shifted": _run_stretch(shifted), "calm": _run_stretch(calm)}
    finally:
        for prefix in prefixes:
            keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                redis_client.delete(*keys)


def test_before_the_shift_the_champions_show_no_drift(stretches: dict) -> None:
    """The report of the training run itself: its window (the 20 sessions up to
    TRAINED_UNTIL) lies inside the champions' training windows."""
    before = stretches["before"]
    assert before["session"] == TRAINED_UNTIL
    assert not any(v for k, v in before.items() if k.startswith("drifted_")), before


def test_the_shift_requests_exactly_one_retraining_within_the_detection_delay(stretches: dict) -> None:
    shifted = stretches["shifted"]
    [(session, request)] = shifted.requests  # one request over the whole stretch: no storm
    delay = STRETCH.index(session) + 1  # shifted sessions in the window when the request came
    assert delay <= MAX_DELAY, (delay, shifted.scores)
    assert request.run_key == f"drift-{session}" and request.tags[DRIFT_EVENT_TAG] == request.run_key
    # silent while the retraining ran and through the cooldown that follows it
    after = shifted.phases[STRETCH.index(session) + 1:]
    assert all(phase == COOLDOWN for phase in after[: DecisionConfig().cooldown_sessions]), shifted.phases


def test_the_retraining_run_registers_a_challenger(stretches: dict) -> None:
    shifted = stretches["shifted"]
    assert len(shifted.retrainings) == len(shifted.requests) >= 1
    assert shifted.retrainings[0].dagster_run.tags[DRIFT_EVENT_TAG] == shifted.requests[0][1].run_key
    registry = shifted.resources["mlflow"].registry
    served = [h for h in HORIZONS if registry.by_alias(serving_model_name(h), CHAMPION) is not None]
    assert served, "the training before S serves at least one champion"
    for h in served:
        new = shifted.versions_after[h] - shifted.versions_before[h]
        assert new, f"retraining registered no {h} version"
        # the new version is the challenger, or already passed the gate and serves
        aliased = {registry.by_alias(serving_model_name(h), a).version for a in (CHALLENGER, CHAMPION)}
        assert aliased & new, (h, new, aliased)


def test_the_alert_reaches_the_webhook_with_the_drift_event(stretches: dict) -> None:
    shifted = stretches["shifted"]
    session, request = shifted.requests[0]
    assert len(shifted.alerts) == len(shifted.requests)  # one alert per request, none otherwise
    payload = shifted.alerts[0]
    assert payload["text"].startswith(":warning: [WARNING] Feature drift: drift score")
    assert payload["blocks"][0]["text"]["text"] == "Feature drift"
    fields = dict(f["text"].split("\n", 1) for f in payload["blocks"][2]["fields"])
    # the trigger(s) that fired per drifted horizon, the same text as the run's tag
    triggers = request.tags[DRIFT_TRIGGERS_TAG]
    assert fields == {"*session*": session, "*run key*": request.run_key, "*triggers*": triggers}
    for item in triggers.split("; "):
        horizon, fired = item.split(":")
        assert horizon in HORIZONS and set(fired.split(",")) <= {"importance", "breadth", "evidence"}, triggers
    assert SECRET_PATH not in str(payload)


def test_without_the_shift_nothing_is_requested_or_alerted(stretches: dict) -> None:
    calm = stretches["calm"]
    assert len(calm.scores) == len(STRETCH)
    assert calm.requests == [] and calm.alerts == [], calm.scores
    assert calm.versions_after == calm.versions_before
    # the same session, the same champions: only the shift tells the two markets apart
    shifted = stretches["shifted"]
    session = shifted.requests[0][0]
    assert shifted.scores[session] > calm.scores[session]
