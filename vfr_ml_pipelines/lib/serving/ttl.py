"""How long a published entry must stay readable: until the next scheduled publish plus a
grace period, so VFR never meets a gap between two publishes (weekends included)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MARKET_TZ = ZoneInfo("America/New_York")
DEFAULT_PUBLISH_TIME = time(18, 30)  # the daily schedule runs after the 16:00 close
DEFAULT_GRACE = timedelta(hours=6)


def is_trading_weekday(day: datetime) -> bool:
    return day.weekday() < 5


def next_publish_after(now: datetime, publish_time: time = DEFAULT_PUBLISH_TIME) -> datetime:
    """The first scheduled publish strictly after `now` (weekdays; the market-data
    calendar adds holidays)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(MARKET_TZ)
    candidate = datetime.combine(local.date(), publish_time, tzinfo=MARKET_TZ)
    while candidate <= local or not is_trading_weekday(candidate):
        candidate = datetime.combine(candidate.date() + timedelta(days=1), publish_time, tzinfo=MARKET_TZ)
    return candidate


def publish_ttl_seconds(
    now: datetime, publish_time: time = DEFAULT_PUBLISH_TIME, grace: timedelta = DEFAULT_GRACE
) -> int:
    return int((next_publish_after(now, publish_time) + grace - now).total_seconds())
