"""The US equity trading calendar (NYSE sessions: weekends and exchange holidays excluded),
from `exchange_calendars`' XNYS calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from vfr_ml_pipelines.lib import settings

# XNYS's history in exchange_calendars reaches back to 1885; 1990 keeps the calendar's
# build (once per process) near 0.5 s while covering any daily history a vendor sells
CALENDAR_START = date(1990, 1, 2)
HISTORY_START_ENV = "VFR_HISTORY_START"
DEFAULT_HISTORY_START = date(2023, 1, 2)


@lru_cache(maxsize=1)
def _xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=pd.Timestamp(CALENDAR_START))


def calendar_end() -> date:
    """Last day the calendar knows (about a year ahead of today)."""
    return _xnys().last_session.date()


def history_start() -> date:
    """`VFR_HISTORY_START`: the first day of history, within the calendar's range."""
    return settings.env_date(HISTORY_START_ENV, DEFAULT_HISTORY_START, earliest=CALENDAR_START, latest=calendar_end())


def first_history_session() -> date:
    """The first session on or after `history_start()`: the first daily partition."""
    first = history_start()
    return first if is_trading_day(first) else next_trading_day(first)


@lru_cache(maxsize=1)
def early_closes() -> frozenset[date]:
    """Sessions on which the NYSE closes at 13:00."""
    return frozenset(d.date() for d in _xnys().early_closes)


def session_close(day: date) -> datetime:
    """The NYSE close of session `day` in New York time, as the exchange calendar has it
    (13:00 on early-close days)."""
    return _xnys().session_close(pd.Timestamp(day)).tz_convert(MARKET_TZ).to_pydatetime()


def trading_days(start: date, end: date) -> list[date]:
    """Sessions from `start` to `end`, both inclusive."""
    if end < start:
        return []
    cal = _xnys()
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if hi < lo:
        return []
    return [d.date() for d in cal.sessions_in_range(lo, hi)]


def is_trading_day(day: date) -> bool:
    return _xnys().is_session(pd.Timestamp(day))


def previous_trading_day(day: date) -> date:
    """The last session strictly before `day`."""
    return _xnys().date_to_session(pd.Timestamp(day - timedelta(days=1)), direction="previous").date()


def next_trading_day(day: date) -> date:
    """The first session strictly after `day`."""
    return _xnys().date_to_session(pd.Timestamp(day + timedelta(days=1)), direction="next").date()


def latest_trading_day(on_or_before: date) -> date:
    return _xnys().date_to_session(pd.Timestamp(on_or_before), direction="previous").date()


def holidays(start: date, end: date) -> list[date]:
    """Weekdays from `start` to `end` on which the exchange is closed."""
    sessions = set(trading_days(start, end))
    return [d.date() for d in pd.bdate_range(start, end) if d.date() not in sessions]


MARKET_CLOSE_HOUR = 16
MARKET_TZ = ZoneInfo("America/New_York")


def session_of(published_at: pd.Timestamp) -> date:
    """The session a timestamped event belongs to: its New York date if that is a session
    and the event came before the 16:00 close, otherwise the next session."""
    stamp = pd.Timestamp(published_at)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {published_at!r} has no time zone")
    local = stamp.tz_convert("America/New_York")
    day = local.date()
    if is_trading_day(day) and local.hour < MARKET_CLOSE_HOUR:
        return day
    return next_trading_day(day)


def sessions_of(published_at: pd.Series) -> pd.Series:
    """`session_of` for a column of tz-aware timestamps (vectorised over distinct dates)."""
    local = pd.to_datetime(published_at, utc=True).dt.tz_convert("America/New_York")
    day = local.dt.date
    after_close = local.dt.hour >= MARKET_CLOSE_HOUR
    out = []
    cache: dict[tuple[date, bool], date] = {}
    for d, late in zip(day, after_close):
        key = (d, bool(late))
        if key not in cache:
            cache[key] = d if (is_trading_day(d) and not late) else next_trading_day(d)
        out.append(cache[key])
    return pd.Series(out, index=published_at.index, dtype=object)


def market_date(when: datetime | None) -> date:
    """The New York calendar date of `when` (a schedule's tick time), or of now when None."""
    return (when or datetime.now(MARKET_TZ)).astimezone(MARKET_TZ).date()
