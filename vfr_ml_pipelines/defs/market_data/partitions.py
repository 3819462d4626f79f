"""The partitions every market-data, feature and model asset shares; defines no asset.

`trading_day_partitions`: one partition per NYSE session from the history start
(`VFR_HISTORY_START`, `calendar.history_start()`); `single_run_backfill`: a backfill over a
range is one run.
"""

from datetime import datetime

import dagster as dg

from vfr_ml_pipelines.lib.market_data import calendar


def _trading_day_partitions() -> dg.TimeWindowPartitionsDefinition:
    start = calendar.first_history_session()
    return dg.TimeWindowPartitionsDefinition(
        start=datetime.combine(start, datetime.min.time()),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone="America/New_York",
        # today's session is a partition from midnight on, so the evening run can load it
        end_offset=1,
        exclusions=[datetime.combine(d, datetime.min.time()) for d in calendar.holidays(start, calendar.calendar_end())],
    )


# One partition per NYSE session: all symbols of a day in one partition (weekends and
# exchange holidays are not partitions).
trading_day_partitions = _trading_day_partitions()

# A backfill over years is one run over the whole range, not thousands of runs.
single_run_backfill = dg.BackfillPolicy.single_run()
