"""Freshness on the NYSE calendar (`monitoring.session_freshness`) with fixed "now" values:
across Thanksgiving and its early close, Christmas, a weekend, and both 2026 clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from vfr_ml_pipelines.lib.market_data.calendar import session_close
from vfr_ml_pipelines.lib.monitoring.session_freshness import due_session, session_freshness

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


# the daily run's refresh of a session: 18:35 New York
def refreshed(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=18, minute=35), tzinfo=NY)


@pytest.mark.parametrize(("now", "due"), [
    (ny(2026, 11, 25, 19, 59), date(2026, 11, 24)),  # Wednesday before its deadline: Tuesday's
    (ny(2026, 11, 25, 20, 0), date(2026, 11, 25)),  # at the deadline: Wednesday's
    (ny(2026, 11, 26, 22, 0), date(2026, 11, 25)),  # Thanksgiving evening: still Wednesday's
    (ny(2026, 11, 27, 20, 30), date(2026, 11, 27)),  # Black Friday (early close) after its deadline
    (ny(2026, 11, 29, 12, 0), date(2026, 11, 27)),  # Sunday
    (ny(2026, 12, 25, 21, 0), date(2026, 12, 24)),  # Christmas: Christmas Eve's
    (ny(2026, 12, 28, 10, 0), date(2026, 12, 24)),  # Monday morning after Christmas weekend
])
def test_the_due_session_skips_holidays_and_weekends(now: datetime, due: date) -> None:
    assert due_session(now) == due


def test_a_holiday_is_never_late() -> None:
    wednesday = refreshed(date(2026, 11, 25))
    for now in (ny(2026, 11, 26, 9, 0), ny(2026, 11, 26, 20, 15), ny(2026, 11, 26, 23, 59), ny(2026, 11, 27, 19, 0)):
        state = session_freshness(wednesday, now)
        assert state.fresh and state.late_by is None, state.describe()
    # the Christmas Eve early close: a refresh after 13:00 counts, before does not
    eve_close = session_close(date(2026, 12, 24))
    assert eve_close == ny(2026, 12, 24, 13, 0)
    assert session_freshness(ny(2026, 12, 24, 13, 5), ny(2026, 12, 25, 20, 15)).fresh
    assert not session_freshness(ny(2026, 12, 24, 12, 55), ny(2026, 12, 25, 20, 15)).fresh


def test_a_missed_session_is_late_after_its_deadline() -> None:
    wednesday = refreshed(date(2026, 11, 25))
    friday = session_freshness(wednesday, ny(2026, 11, 27, 20, 15))  # Black Friday's run did not happen
    assert not friday.fresh and friday.due_session == date(2026, 11, 27)
    assert friday.late_by.total_seconds() == 15 * 60
    assert "late by 0:15:00: due for the 2026-11-27 session (after its close 2026-11-27 13:00 EST)" in friday.describe()
    never = session_freshness(None, ny(2026, 11, 27, 20, 15))
    assert not never.fresh and "never refreshed" in never.describe()


@pytest.mark.parametrize(("now_utc", "fresh"), [
    # spring forward on Sunday 8 March 2026: Monday's 20:00 deadline is 00:00 UTC (EDT), not 01:00
    (datetime(2026, 3, 9, 23, 55, tzinfo=UTC), True),  # 19:55 EDT Monday: Friday's refresh still counts
    (datetime(2026, 3, 10, 0, 30, tzinfo=UTC), False),  # 20:30 EDT Monday (19:30 if EST were used)
    # fall back on Sunday 1 November 2026: Monday's deadline is 01:00 UTC (EST), not 00:00
    (datetime(2026, 11, 3, 0, 30, tzinfo=UTC), True),  # 19:30 EST Monday (20:30 if EDT were used)
    (datetime(2026, 11, 3, 1, 0, tzinfo=UTC), False),  # 20:00 EST: Monday is due
])
def test_deadlines_follow_new_york_across_the_clock_changes(now_utc: datetime, fresh: bool) -> None:
    friday = {3: refreshed(date(2026, 3, 6)), 11: refreshed(date(2026, 10, 30))}[now_utc.month]
    assert session_freshness(friday, now_utc).fresh is fresh


def test_the_refresh_is_judged_as_an_instant_across_the_clock_change() -> None:
    # Friday 30 October 18:35 EDT = 22:35 UTC; a refresh stamped in UTC is the same instant
    friday_utc = datetime(2026, 10, 30, 22, 35, tzinfo=UTC)
    assert session_freshness(friday_utc, ny(2026, 11, 2, 19, 0)).fresh
    assert session_close(date(2026, 10, 30)).astimezone(UTC).hour == 20  # 16:00 EDT
    assert session_close(date(2026, 11, 2)).astimezone(UTC).hour == 21  # 16:00 EST


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="now=.* has no time zone"):
        due_session(datetime(2026, 11, 26, 20, 0))
    with pytest.raises(ValueError, match="last_refresh=.* has no time zone"):
        session_freshness(datetime(2026, 11, 25, 18, 0), ny(2026, 11, 26, 20, 0))
