from datetime import date, datetime

import dagster as dg

from vfr_ml_pipelines.lib.market_data import calendar

HISTORY_START_ENV = calendar.HISTORY_START_ENV


def history_start() -> date:
    return calendar.history_start()


def _trading_day_partitions() -> dg.TimeWindowPartitionsDefinition:
    start = calendar.next_trading_day(history_start()) if not calendar.is_trading_day(history_start()) else history_start()
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
