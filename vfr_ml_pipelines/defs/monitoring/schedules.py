from datetime import datetime

import dagster as dg

from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.lib.market_data import calendar

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline_job",
    selection=dg.AssetSelection.all(),
    partitions_def=trading_day_partitions,
    description=(
        "Market data of the partition's sessions -> features -> model -> champion -> predictions "
        "-> VFR's Redis keys and tables. Run over a partition range it is one catch-up run."
    ),
)


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
