"""How long a published entry stays readable: until the next scheduled publish plus a grace
period, so VFR never meets a gap between two publishes (weekends and NYSE holidays included),
and no longer, so an entry that stopped being republished disappears soon after.

The daily schedule publishes at 18:30 America/New_York on NYSE sessions only (early-close
days such as the day after Thanksgiving are sessions). An entry written at `now` therefore
has to survive until the first 18:30 of a session strictly after `now`, plus `grace` for a
late or retried run. All arithmetic is done on absolute (UTC) time: on the Friday before a
DST change, Friday 18:45 to Monday 18:30 is 71.75 or 73.75 real hours, not 71.75 wall-clock
ones, and VFR's expiry check (`Date.now() - timestamp > ttl * 1000`) counts real seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from exchange_calendars.errors import DateOutOfBounds

from vfr_ml_pipelines.lib.market_data import calendar

MARKET_TZ = ZoneInfo("America/New_York")
DEFAULT_PUBLISH_TIME = time(18, 30)  # the daily schedule runs after the 16:00 close
DEFAULT_GRACE = timedelta(hours=6)
# scheduled closures last at most 4 days (a weekend next to a holiday; 5 with Hurricane Sandy's
# two unscheduled days in 2012): 14 days is far beyond any real gap and still stops a broken calendar
_MAX_SEARCH_DAYS = 14


def is_trading_weekday(day: datetime | date) -> bool:
    """Monday to Friday (kept for callers that only need the weekday rule)."""
    return day.weekday() < 5


def is_publish_day(day: date) -> bool:
    """Whether the daily schedule publishes on `day`: an NYSE session per
    `market_data.calendar`. Outside the calendar's range (it covers 2005 to about a year
    ahead of today) the weekday rule applies, so a far-future date degrades to a shorter
    TTL on holidays rather than failing the publish."""
    try:
        return calendar.is_trading_day(day)
    except DateOutOfBounds:
        return is_trading_weekday(day)


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got the naive datetime {value.isoformat()})")


def next_publish_after(
    now: datetime,
    publish_time: time = DEFAULT_PUBLISH_TIME,
    *,
    is_session: Callable[[date], bool] = is_publish_day,
) -> datetime:
    """The first scheduled publish strictly after `now`: `publish_time` (New York wall
    clock) on the first NYSE session whose publish is still ahead. Returned in New York time."""
    _require_aware(now, "now")
    if publish_time.tzinfo is not None:
        raise ValueError(f"publish_time is a New York wall-clock time and must be naive, got {publish_time}")
    now_utc = now.astimezone(UTC)
    day = now.astimezone(MARKET_TZ).date()
    for _ in range(_MAX_SEARCH_DAYS + 1):
        candidate = datetime.combine(day, publish_time, tzinfo=MARKET_TZ)
        # compare in UTC: comparing two datetimes of the same tzinfo compares wall clocks
        if candidate.astimezone(UTC) > now_utc and is_session(day):
            return candidate
        day += timedelta(days=1)
    raise RuntimeError(f"no publish day within {_MAX_SEARCH_DAYS} days after {now.isoformat()}: is the calendar broken?")


def publish_expiry(
    now: datetime, publish_time: time = DEFAULT_PUBLISH_TIME, grace: timedelta = DEFAULT_GRACE
) -> datetime:
    """The moment (UTC) an entry written at `now` stops being needed: the next scheduled
    publish plus `grace`."""
    if grace < timedelta(0):
        raise ValueError(f"grace must not be negative, got {grace}")
    return next_publish_after(now, publish_time).astimezone(UTC) + grace


def publish_ttl_seconds(
    now: datetime, publish_time: time = DEFAULT_PUBLISH_TIME, grace: timedelta = DEFAULT_GRACE
) -> int:
    """Seconds from `now` to the next scheduled publish plus `grace` (whole seconds, at
    least 1): the `ttl` of the envelope and the Redis `EX` of entries written at `now`."""
    seconds = (publish_expiry(now, publish_time, grace) - now.astimezone(UTC)).total_seconds()
    return max(1, int(seconds))
