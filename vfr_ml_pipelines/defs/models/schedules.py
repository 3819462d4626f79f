"""`weekly_retraining_schedule`: Saturday morning retraining of every horizon (stopped by default)."""

import dagster as dg

from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.defs.pipeline.schedules import market_schedule
from vfr_ml_pipelines.lib.market_data import calendar


@market_schedule(retraining_job, "0 6 * * 6")
def weekly_retraining_schedule(context: dg.ScheduleEvaluationContext):
    """Saturday 06:00 New York: retrain every horizon on the week's data; challengers that
    pass the promotion gate become champions and are published before Monday's open."""
    return dg.RunRequest(run_key=f"retrain-{calendar.market_date(context.scheduled_execution_time)}")
