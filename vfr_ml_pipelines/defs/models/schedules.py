"""`weekly_retraining_schedule`: Saturday morning retraining of every horizon (stopped by default)."""

from datetime import datetime

import dagster as dg

from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.lib.market_data import calendar


@dg.schedule(
    job=retraining_job,
    cron_schedule="0 6 * * 6",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def weekly_retraining_schedule(context: dg.ScheduleEvaluationContext):
    """Saturday 06:00 New York: retrain every horizon on the week's data; challengers that
    pass the promotion gate become champions and are published before Monday's open."""
    when = context.scheduled_execution_time or datetime.now(calendar.MARKET_TZ)
    return dg.RunRequest(run_key=f"retrain-{when.astimezone(calendar.MARKET_TZ).date()}")
