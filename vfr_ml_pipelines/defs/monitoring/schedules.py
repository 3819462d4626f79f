from __future__ import annotations

import dagster as dg

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline_job",
    selection=dg.AssetSelection.all(),
    description="Market data -> features -> model -> champion -> predictions -> VFR's Redis keys and tables.",
)

daily_pipeline_schedule = dg.ScheduleDefinition(
    name="daily_pipeline_schedule",
    job=daily_pipeline_job,
    # after the 16:00 close, on weekdays; the TTL of published keys covers the gap to the next run
    cron_schedule="30 18 * * 1-5",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
