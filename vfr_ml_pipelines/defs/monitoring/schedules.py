from datetime import datetime

import dagster as dg

from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.lib.market_data import calendar

from vfr_ml_pipelines.defs.models.jobs import retraining_job

full_pipeline_job = dg.define_asset_job(
    name="full_pipeline_job",
    selection=dg.AssetSelection.all(),
    partitions_def=trading_day_partitions,
    description=(
        "Everything: market data of the partition's sessions -> features -> training, promotion gate, champions "
        "-> predictions -> VFR's Redis keys and tables. Run over a partition range it is one catch-up run "
        "(`vfr-ml run`)."
    ),
)

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline_job",
    selection=dg.AssetSelection.groups("market_data", "features", "serving"),
    partitions_def=trading_day_partitions,
    description=(
        "After the close: market data of the session -> features -> predictions of the current champions "
        "-> VFR's Redis keys and tables, realized outcomes and the daily performance roll-up."
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

