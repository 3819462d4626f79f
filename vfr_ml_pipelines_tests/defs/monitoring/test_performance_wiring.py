"""`live_performance` on stored predictions and labels of a registered champion and shadow,
and `decay_sensor` (alert + one retraining request per decay event, shadow alert)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.monitoring.performance import DECAY_EVENT_TAG, LIVE_PERFORMANCE, decay_sensor, live_performance
from vfr_ml_pipelines.defs.resources import AlertWebhookResource, MlflowResource, SyntheticMarketDataResource, WarehouseResource
from vfr_ml_pipelines.lib.models.registry import CHALLENGER
from vfr_ml_pipelines_tests.defs.monitoring.champion import champion_version, register_champion
from vfr_ml_pipelines_tests.defs.monitoring.outcomes import DAYS, write_outcomes
from vfr_ml_pipelines_tests.helpers import migrated_engine


@pytest.fixture(scope="module")
def served(make_database, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("live")
    registry = register_champion(root, {"validation_rank_ic": "0.6"})  # live skill is far below: decayed
    champion = champion_version(registry)
    challenger = registry.copy_version(champion, champion.name, {"role": "shadow"})  # a second version of vfr-1w
    registry.set_alias(challenger.name, CHALLENGER, challenger.version)
    url = make_database("monitoring_live")
    engine = migrated_engine(url)
    write_outcomes(engine, model_version=champion.version, skill=0.1)
    write_outcomes(engine, model_version=challenger.version, skill=0.6, seed=1)
    engine.dispose()
    return {"warehouse": WarehouseResource(database_url=url), "mlflow": MlflowResource(tracking_uri=registry.tracking_uri),
            "market_data": SyntheticMarketDataResource(as_of=str(DAYS[-1]))}


def test_live_performance_reports_champion_and_shadow_against_validation(served: dict) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([live_performance], instance=instance, resources=served)
    metadata = result.asset_materializations_for_node("live_performance")[0].metadata
    rows = {r.data["model"]: r.data for r in metadata["performance"].value.records}
    assert len(rows) == 2
    champion = next(r for r in rows.values() if r["validated_rank_ic"] is not None)
    shadow = next(r for r in rows.values() if r["validated_rank_ic"] is None)
    assert champion["validated_rank_ic"] == 0.6 and champion["decayed"] and champion["rank_ic_high"] < 0.6
    assert champion["rank_ic_low"] < champion["rank_ic"] < champion["rank_ic_high"]
    assert shadow["rank_ic"] > champion["rank_ic"] and 0.5 < shadow["direction_accuracy"] <= 1
    assert metadata["decayed_1w"].value is True and metadata["shadow_beats_1w"].value is True
    assert metadata["session"].value == str(max(d for d in DAYS if d.toordinal() + 7 <= DAYS[-1].toordinal()))
    assert "data:image/png;base64," in metadata["reliability"].value


def test_live_performance_runs_after_the_outcomes_declaratively() -> None:
    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(assets=[live_performance, dg.AssetSpec("prediction_outcomes")],
                          resources={k: dg.ResourceDefinition.none_resource() for k in ("warehouse", "mlflow", "market_data")})
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing new upstream
    instance.report_runless_asset_event(dg.AssetMaterialization("prediction_outcomes"))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert after.total_requested == 1 and after.get_requested_partitions(LIVE_PERFORMANCE) == {None}
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert again.total_requested == 0  # requested once, not on every tick


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.received = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _report(instance: dg.DagsterInstance, session: str, decayed: bool, shadow_beats: bool = False) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(LIVE_PERFORMANCE, metadata={
        "session": session, "decay_score_1w": 3.0 if decayed else 0.0, "decayed_1w": decayed, "shadow_beats_1w": shadow_beats,
    }))


def test_decay_sensor_alerts_and_requests_once_per_event(webhook: ThreadingHTTPServer) -> None:
    instance = dg.DagsterInstance.ephemeral()
    resources = {"alert_webhook": AlertWebhookResource(url=f"http://127.0.0.1:{webhook.server_address[1]}/hook")}

    def tick(cursor: str | None) -> tuple[object, str | None]:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return decay_sensor(context), context.cursor

    result, cursor = tick(None)
    assert isinstance(result, dg.SkipReason)
    _report(instance, str(DAYS[0]), decayed=True, shadow_beats=True)
    request, cursor = tick(cursor)
    assert isinstance(request, dg.RunRequest) and request.run_key == f"decay-{DAYS[0]}"
    assert request.tags[DECAY_EVENT_TAG] == request.run_key and request.tags["vfr/decayed_horizons"] == "1w"
    titles = [payload["blocks"][0]["text"]["text"] for payload in webhook.received]
    assert titles == ["Shadow beats champion", "Live skill decayed"]
    again, cursor = tick(cursor)
    assert isinstance(again, dg.SkipReason) and len(webhook.received) == 2  # same session: no new alert, no request
    _report(instance, str(DAYS[1]), decayed=True)
    later, _ = tick(cursor)
    assert isinstance(later, dg.SkipReason) and "waiting" in later.skip_message and len(webhook.received) == 2


def test_decay_sensor_is_stopped_by_default() -> None:
    assert decay_sensor.default_status == dg.DefaultSensorStatus.STOPPED and decay_sensor.job_name == "retraining_job"


def test_the_pipeline_reports_live_performance(pipeline: dict) -> None:
    [materialization] = pipeline["result"].asset_materializations_for_node("live_performance")
    metadata = materialization.metadata
    records = metadata["performance"].value.records
    assert {r.data["horizon"] for r in records} <= {"1d", "1w", "1m"}
    for record in records:
        assert record.data["dates"] >= 1 and -1 <= record.data["rank_ic"] <= 1


def test_a_missed_daily_run_shows_on_prices_predictions_and_redis() -> None:
    from vfr_ml_pipelines.definitions import defs

    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for key in ("raw_prices", "predictions", "redis_predictions"):
        policy = specs[key].freshness_policy
        # due each weekday by 20:00 New York (the daily run starts 18:30), never on a weekend
        assert policy.deadline_cron == "0 20 * * 1-5" and policy.timezone == "America/New_York", key
