"""`AFTER_THE_CLOSE`: the freshness policy of what the daily run refreshes (`raw_prices`,
`predictions`, `redis_predictions`)."""

from datetime import timedelta

import dagster as dg

from vfr_ml_pipelines.lib.market_data import calendar

# `daily_pipeline_schedule` starts at 18:30 New York on weekdays; the daily run takes minutes.
# A weekday whose assets were not refreshed between 16:00 and 20:00 shows as late; weekends never
# do (a 30-hour wall-clock window did, every Monday morning). Exchange holidays still do: a cron
# cannot skip them, and the schedule does (it is not an NYSE session).
AFTER_THE_CLOSE = dg.FreshnessPolicy.cron(
    deadline_cron="0 20 * * 1-5", lower_bound_delta=timedelta(hours=4), timezone=calendar.MARKET_TZ.key
)
