"""Freshness of what the daily run refreshes (`raw_prices`, `predictions`, `redis_predictions`),
two ways:

* `AFTER_THE_CLOSE`: Dagster's cron freshness policy (the UI's freshness status): refreshed
  each weekday between 16:00 and 20:00 New York. Weekends are never late; exchange holidays
  are, until the next session's run (a cron cannot skip them).
* `refreshed_for_last_session` checks (one per asset, warning, not blocking;
  `lib/monitoring/session_freshness.py`): refreshed after the close of the latest NYSE session
  whose 20:00 deadline has passed, so holidays are never late and early closes count from
  13:00. Evaluated declaratively each evening at 20:15 New York, every day (on a holiday it
  says fresh), or from the UI. They observe the daily run, so the pipeline jobs leave them out
  (`FRESHNESS_CHECKS`): run inside the job they would only see the refresh that just happened.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.monitoring.session_freshness import session_freshness

# `daily_pipeline_schedule` starts at 18:30 New York on weekdays; the daily run takes minutes.
# A weekday whose assets were not refreshed between 16:00 and 20:00 shows as late; weekends never
# do (a 30-hour wall-clock window did, every Monday morning). Exchange holidays still do: a cron
# cannot skip them, and the schedule does (it is not an NYSE session).
AFTER_THE_CLOSE = dg.FreshnessPolicy.cron(
    deadline_cron="0 20 * * 1-5", lower_bound_delta=timedelta(hours=4), timezone=calendar.MARKET_TZ.key
)

FRESHNESS_CHECK_NAME = "refreshed_for_last_session"
REFRESHED_ASSETS = ("raw_prices", "predictions", "redis_predictions")
# a quarter of an hour after the 20:00 deadline, every day: the check is what says a holiday is fine
EVERY_EVENING = dg.AutomationCondition.cron_tick_passed("15 20 * * *", calendar.MARKET_TZ.key)


class SessionFreshnessConfig(dg.Config):
    as_of: str | None = None  # judge as of this ISO 8601 time with a zone (what-if and tests); default now


def _session_freshness_check(asset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=FRESHNESS_CHECK_NAME, blocking=False, automation_condition=EVERY_EVENING,
                    description=f"{asset} was refreshed after the close of the last NYSE session due (holidays never late)")
    def check(context: dg.AssetCheckExecutionContext, config: SessionFreshnessConfig) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        last = None if event is None else datetime.fromtimestamp(event.timestamp, UTC)
        now = datetime.now(UTC) if config.as_of is None else datetime.fromisoformat(config.as_of)
        if now.tzinfo is None:
            raise ValueError(f"{FRESHNESS_CHECK_NAME} config as_of={config.as_of!r} needs a time zone (e.g. -05:00)")
        state = session_freshness(last, now)
        return dg.AssetCheckResult(passed=state.fresh, severity=dg.AssetCheckSeverity.WARN, description=state.describe(),
                                   metadata={"due_session": str(state.due_session), "expected_after": state.expected_after.isoformat(),
                                             "last_refresh": "never" if last is None else last.isoformat()})

    return check


FRESHNESS_CHECKS = [_session_freshness_check(asset) for asset in REFRESHED_ASSETS]
