"""Alerts of the monitoring domain.

Defines the sensor `run_failure_alert_sensor`: every failed run of this code location posts
its job, run id, failing step(s) and error to the `alert_webhook` resource (logged only when
`VFR_ALERT_WEBHOOK_URL` is not set). On by default: without a webhook it only logs.
"""

import dagster as dg

from vfr_ml_pipelines.defs.resources import AlertWebhookResource
from vfr_ml_pipelines.lib.monitoring.alerts import run_failure_alert


def _step_error(step_event: dg.DagsterEvent) -> str:
    failure = getattr(step_event.event_specific_data, "error", None)
    if failure is None:
        return step_event.message or "unknown error"
    while failure.cause is not None:  # Dagster wraps the user's exception: report the user's
        failure = failure.cause
    return failure.message


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts every failed run (job, run id, failing step, error) to the alert webhook.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhookResource) -> None:
    failed_steps = {event.step_key or "?": _step_error(event) for event in context.get_step_failure_events()}
    alert = run_failure_alert(context.dagster_run.job_name, context.dagster_run.run_id, failed_steps, context.failure_event.message)
    alert_webhook.send(alert, context.log)
