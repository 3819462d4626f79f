"""Is an asset the daily run refreshes fresh, judged on the NYSE calendar?

The daily run refreshes `raw_prices`, `predictions` and `redis_predictions` after each
session's close. At `now`, the session whose refresh is due is the latest NYSE session whose
deadline (20:00 New York on that session's day, as `defs/pipeline/freshness.py`'s cron policy)
has passed; the asset is fresh when it was last refreshed at or after that session's close
(16:00 New York, 13:00 on early-close days). Weekends and exchange holidays have no deadline
of their own, so on Thanksgiving the due session stays Wednesday's and an asset refreshed on
Wednesday evening is fresh, where the weekday cron policy says late until Friday's run. All
times are compared as aware instants; the New York wall clock (and so daylight saving) enters
only through the deadline and the close.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from vfr_ml_pipelines.lib.market_data import calendar

DEADLINE = time(20, 0)  # New York; the cron policy's `deadline_cron="0 20 * * 1-5"`


@dataclass(frozen=True)
class SessionFreshness:
    now: datetime
    due_session: date  # the latest session whose deadline has passed
    expected_after: datetime  # its close: a refresh at or after it counts
    deadline: datetime
    last_refresh: datetime | None

    @property
    def fresh(self) -> bool:
        return self.last_refresh is not None and self.last_refresh >= self.expected_after

    @property
    def late_by(self) -> timedelta | None:
        """How long past the due session's deadline (None when fresh)."""
        return None if self.fresh else self.now - self.deadline

    def describe(self) -> str:
        refreshed = "never refreshed" if self.last_refresh is None else f"last refreshed {_ny(self.last_refresh)}"
        verdict = "fresh" if self.fresh else f"late by {timedelta(seconds=int(self.late_by.total_seconds()))}"
        return f"{verdict}: due for the {self.due_session} session (after its close {_ny(self.expected_after)}); {refreshed}"


def _ny(moment: datetime) -> str:
    return moment.astimezone(calendar.MARKET_TZ).strftime("%Y-%m-%d %H:%M %Z")


def session_deadline(day: date) -> datetime:
    return datetime.combine(day, DEADLINE, tzinfo=calendar.MARKET_TZ)


def due_session(now: datetime) -> date:
    """The latest NYSE session whose refresh deadline is at or before `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError(f"due_session: now={now!r} has no time zone")
    today = now.astimezone(calendar.MARKET_TZ).date()
    session = calendar.latest_trading_day(today)
    return session if session_deadline(session) <= now else calendar.previous_trading_day(session)


def session_freshness(last_refresh: datetime | None, now: datetime) -> SessionFreshness:
    """Fresh when `last_refresh` (timezone-aware, None: never) is at or after the close of the
    session due at `now`."""
    if last_refresh is not None and last_refresh.tzinfo is None:
        raise ValueError(f"session_freshness: last_refresh={last_refresh!r} has no time zone")
    session = due_session(now)
    return SessionFreshness(now, session, calendar.session_close(session), session_deadline(session), last_refresh)
