"""`daily_pipeline_schedule`: after each NYSE session's close, run `daily_pipeline_job` for that session
(stopped by default; turn it on in the UI or with `dagster schedule start`)."""

from datetime import datetime

import dagster as dg

from vfr_ml_pipelines.defs.pipeline.jobs import daily_pipeline_job
from vfr_ml_pipelines.lib.market_data import calendar


@dg.schedule(
    job=daily_pipeline_job,
    cron_schedule="30 18 * * 1-5",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext):
    """After the 16:00 close on each session: load that session and republish. Exchange
    holidays are skipped (they are not partitions)."""
    day = context.scheduled_execution_time.astimezone(calendar.MARKET_TZ).date() if context.scheduled_execution_time else datetime.now(calendar.MARKET_TZ).date()
    if not calendar.is_trading_day(day):
        return dg.SkipReason(f"{day} is not an NYSE session")
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day.isoformat())
