"""The alert webhook resource and the run-failure sensor, against a local HTTP server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import dagster as dg
import pytest

from vfr_ml_pipelines.defs import resources as resources_module
from vfr_ml_pipelines.defs.monitoring.alerts import run_failure_alert_sensor
from vfr_ml_pipelines.defs.resources import AlertWebhookResource
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.monitoring.alerts import Alert
from vfr_ml_pipelines_tests.webhook_server import SECRET_PATH, RecordingHandler, webhook_server, webhook_url



@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with webhook_server(RecordingHandler) as httpd:
        yield httpd


def _url(server: ThreadingHTTPServer, behaviour: str = "ok") -> str:
    return webhook_url(server, behaviour)


@dg.op
def load_prices() -> None:
    raise ValueError("bar 2024-07-05 AAPL: close is negative")


@dg.job
def failing_job() -> None:
    load_prices()


def _failure_context(resources: dict) -> dg.RunFailureSensorContext:
    instance = dg.DagsterInstance.ephemeral()
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run, resources=resources,
    ).for_run_failure()


def test_run_failure_posts_job_run_step_and_error(server: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    url = _url(server)
    context = _failure_context({"alert_webhook": AlertWebhookResource(url=url)})
    with caplog.at_level(logging.DEBUG):
        run_failure_alert_sensor(context)
    [payload] = server.received
    fields = {f["text"].split("\n", 1)[0].strip("*"): f["text"].split("\n", 1)[1] for f in payload["blocks"][2]["fields"]}
    assert fields["job"] == "failing_job" and fields["run id"] == context.dagster_run.run_id
    assert fields["failing step"] == "load_prices"
    assert "close is negative" in fields["error"]
    assert SECRET_PATH not in json.dumps(payload) and "T0SECRET" not in caplog.text


def test_a_failing_webhook_is_logged_redacted_not_raised(server: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    url = _url(server, "down")
    resource = AlertWebhookResource(url=url, max_attempts=2, backoff_seconds=0.0)
    with caplog.at_level(logging.WARNING):
        result = resource.send(Alert("t", "x"))
    assert result is not None and not result.delivered and result.attempts == 2 and len(server.received) == 2
    assert "HTTP 503" in caplog.text
    assert "T0SECRET" not in caplog.text and "xoxbSecretToken42" not in caplog.text


def test_no_url_logs_the_alert_and_says_so_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(resources_module, "_said_no_webhook", [])
    resource = AlertWebhookResource()
    with caplog.at_level(logging.WARNING):
        assert resource.send(Alert("first", "x")) is None
        assert resource.send(Alert("second", "y")) is None
    assert caplog.text.count("VFR_ALERT_WEBHOOK_URL is not set") == 1
    assert "first" in caplog.text and "second" in caplog.text


def test_the_url_comes_from_the_environment_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFR_ALERT_WEBHOOK_URL", "https://hooks.example.com" + SECRET_PATH)
    webhook = resources_module.build_resources()["alert_webhook"]
    assert isinstance(webhook.url, dg.EnvVar) and webhook.url.env_var_name == "VFR_ALERT_WEBHOOK_URL"
    monkeypatch.setenv("VFR_ALERT_WEBHOOK_URL", "ftp://hooks.example.com" + SECRET_PATH)
    with pytest.raises(settings.ConfigError) as refused:
        resources_module.build_resources()
    assert "T0SECRET" not in str(refused.value)
    monkeypatch.delenv("VFR_ALERT_WEBHOOK_URL")
    assert resources_module.build_resources()["alert_webhook"].url is None


def test_the_code_location_has_the_monitoring_sensors_and_resource() -> None:
    from vfr_ml_pipelines.definitions import defs

    status = {s.name: s.default_status for s in defs.sensors}
    assert status == {
        "run_failure_alert_sensor": dg.DefaultSensorStatus.RUNNING,  # without a webhook it only logs
        "drift_sensor": dg.DefaultSensorStatus.RUNNING, "decay_sensor": dg.DefaultSensorStatus.STOPPED,
    }
    assert "alert_webhook" in defs.resources
    daily = {k.to_user_string() for k in defs.resolve_job_def("daily_pipeline_job").asset_layer.executable_asset_keys}
    assert {"feature_drift", "live_performance", "serving_health"} <= daily
