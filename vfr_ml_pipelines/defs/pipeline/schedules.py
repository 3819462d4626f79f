"""`daily_pipeline_schedule`: after each NYSE session's close, run `daily_pipeline_job` for that session
(stopped by default; turn it on in the UI or with `dagster schedule start`)."""

import dagster as dg

from vfr_ml_pipelines.defs.pipeline.jobs import daily_pipeline_job
from vfr_ml_pipelines.lib.market_data import calendar


def market_schedule(job, cron: str):
    """A schedule on New York time, stopped until an operator turns it on (a fresh checkout
    should not start trading-day runs by itself)."""
    return dg.schedule(
        job=job, cron_schedule=cron, execution_timezone=calendar.MARKET_TZ.key,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


@market_schedule(daily_pipeline_job, "30 18 * * 1-5")
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext):
    """After the 16:00 close on each session: load that session and republish. Exchange
    holidays are skipped (they are not partitions)."""
    day = calendar.market_date(context.scheduled_execution_time)
    if not calendar.is_trading_day(day):
        return dg.SkipReason(f"{day} is not an NYSE session")
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day.isoformat())
