"""The TTL policy: readable until the next scheduled publish (18:30 New York, NYSE sessions
only) plus the grace period, counted in real seconds. Expected values are computed by hand
in the comments; the sweep checks against exchange_calendars' XNYS directly."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.market_data.calendar import calendar_end
from vfr_ml_pipelines.lib.serving.ttl import DEFAULT_GRACE, is_publish_day, next_publish_after, publish_expiry, publish_ttl_seconds

NY = ZoneInfo("America/New_York")
HOUR = 3600


@pytest.fixture(scope="module")
def xnys() -> xcals.ExchangeCalendar:
    """The independent reference: exchange_calendars' NYSE calendar, built here."""
    return xcals.get_calendar("XNYS", start="2025-12-01", end="2027-02-01")


def test_default_grace_is_six_hours():
    # the hand-computed values below assume it
    assert DEFAULT_GRACE == timedelta(hours=6)


def test_wednesday_before_thanksgiving_lasts_until_friday_publish(xnys):
    # Thu 2026-11-26 is Thanksgiving (closed); Fri 11-27 closes early at 13:00 but is a session
    assert not xnys.is_session("2026-11-26") and xnys.is_session("2026-11-27")
    assert xnys.session_close("2026-11-27").tz_convert(NY).hour == 13
    wednesday = datetime(2026, 11, 25, 19, 0, tzinfo=NY)
    assert next_publish_after(wednesday) == datetime(2026, 11, 27, 18, 30, tzinfo=NY)
    # Wed 19:00 -> Fri 18:30 is 47.5 h, + 6 h grace = 53.5 h (no DST change)
    assert publish_ttl_seconds(wednesday) == int(53.5 * HOUR) == 192_600


def test_friday_publish_lasts_until_monday_publish_plus_grace():
    friday_evening = datetime(2026, 11, 20, 18, 45, tzinfo=NY)
    assert next_publish_after(friday_evening) == datetime(2026, 11, 23, 18, 30, tzinfo=NY)
    # Fri 18:45 -> Mon 18:30 is 71.75 h, + 6 h = 77.75 h
    assert publish_ttl_seconds(friday_evening, grace=timedelta(hours=6)) == int(77.75 * HOUR) == 279_900


def test_before_the_days_publish_the_next_one_is_the_same_day():
    tuesday_morning = datetime(2026, 11, 24, 9, 0, tzinfo=NY)
    assert next_publish_after(tuesday_morning) == datetime(2026, 11, 24, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(tuesday_morning) == int(15.5 * HOUR)
    # strictly after: a publish at exactly 18:30 lasts until the next session's 18:30
    at_publish = datetime(2026, 11, 24, 18, 30, tzinfo=NY)
    assert next_publish_after(at_publish) == datetime(2026, 11, 25, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(at_publish) == 30 * HOUR
    # the morning of a holiday waits for the next session, not the holiday's 18:30
    thanksgiving_morning = datetime(2026, 11, 26, 9, 0, tzinfo=NY)
    assert next_publish_after(thanksgiving_morning) == datetime(2026, 11, 27, 18, 30, tzinfo=NY)


def test_christmas_and_new_year():
    # Thu 12-24 is a session (early close); Fri 12-25 closed -> Mon 12-28
    assert next_publish_after(datetime(2026, 12, 23, 18, 45, tzinfo=NY)) == datetime(2026, 12, 24, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(datetime(2026, 12, 23, 18, 45, tzinfo=NY)) == int(29.75 * HOUR)  # 23.75 + 6
    christmas_eve = datetime(2026, 12, 24, 18, 45, tzinfo=NY)
    assert next_publish_after(christmas_eve) == datetime(2026, 12, 28, 18, 30, tzinfo=NY)
    # Thu 18:45 -> Mon 18:30 is 4 days - 15 min = 95.75 h, + 6 h = 101.75 h
    assert publish_ttl_seconds(christmas_eve) == int(101.75 * HOUR) == 366_300
    # Thu 12-31 is a session; Fri 2027-01-01 closed -> Mon 01-04
    new_years_eve = datetime(2026, 12, 31, 18, 45, tzinfo=NY)
    assert next_publish_after(new_years_eve) == datetime(2027, 1, 4, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(new_years_eve) == 366_300


def test_dst_start_in_march_counts_real_seconds():
    # clocks go forward Sun 2026-03-08 02:00: Fri 18:45 EST = 23:45 UTC, Mon 18:30 EDT = 22:30 UTC,
    # + 6 h = Tue 04:30 UTC; 23:45 Fri -> 04:30 Tue UTC = 76.75 h (wall clock would say 77.75)
    friday = datetime(2026, 3, 6, 18, 45, tzinfo=NY)
    assert next_publish_after(friday) == datetime(2026, 3, 9, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(friday) == int(76.75 * HOUR) == 276_300
    assert publish_expiry(friday) == datetime(2026, 3, 10, 4, 30, tzinfo=UTC)


def test_dst_end_in_november_counts_real_seconds():
    # clocks go back Sun 2026-11-01 02:00: Fri 18:45 EDT = 22:45 UTC, Mon 18:30 EST = 23:30 UTC,
    # + 6 h = Tue 05:30 UTC; 22:45 Fri -> 05:30 Tue UTC = 78.75 h (wall clock would say 77.75)
    friday = datetime(2026, 10, 30, 18, 45, tzinfo=NY)
    assert next_publish_after(friday) == datetime(2026, 11, 2, 18, 30, tzinfo=NY)
    assert publish_ttl_seconds(friday) == int(78.75 * HOUR) == 283_500
    assert publish_expiry(friday) == datetime(2026, 11, 3, 5, 30, tzinfo=UTC)


def test_any_timezone_gives_the_same_answer():
    friday_ny = datetime(2026, 11, 20, 18, 45, tzinfo=NY)
    for zone in (UTC, ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/Paris")):
        other = friday_ny.astimezone(zone)
        assert next_publish_after(other) == next_publish_after(friday_ny)
        assert publish_ttl_seconds(other) == publish_ttl_seconds(friday_ny)
    # a UTC moment after midnight UTC but before the New York publish of that New York day:
    # 2026-11-24 22:00 UTC is 17:00 in New York, so the publish is the same New York day's 18:30
    assert next_publish_after(datetime(2026, 11, 24, 22, 0, tzinfo=UTC)) == datetime(2026, 11, 24, 18, 30, tzinfo=NY)


def test_other_publish_time_and_grace():
    monday_noon = datetime(2026, 11, 23, 12, 0, tzinfo=NY)
    assert next_publish_after(monday_noon, time(11, 0)) == datetime(2026, 11, 24, 11, 0, tzinfo=NY)
    assert publish_ttl_seconds(monday_noon, time(11, 0), timedelta(0)) == 23 * HOUR
    with pytest.raises(ValueError, match="grace"):
        publish_ttl_seconds(monday_noon, grace=timedelta(hours=-1))


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        next_publish_after(datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        publish_ttl_seconds(datetime(2026, 11, 24, 9, 0))


def test_sweep_over_2026_against_the_xnys_calendar(xnys):
    """Every 3 hours of 2026 (and across the DST changes): the next publish is 18:30 of an
    XNYS session, no session's 18:30 lies between now and it, and the TTL is exactly the
    real seconds to it plus grace. So entries never outlive the next publish plus grace."""
    sessions = [d.date() for d in xnys.sessions_in_range("2025-12-01", "2027-02-01")]
    publishes = [pd.Timestamp(datetime.combine(d, time(18, 30)), tz=NY) for d in sessions]
    now = pd.Timestamp("2026-01-01", tz=UTC)
    end = pd.Timestamp("2027-01-01", tz=UTC)
    longest = 0
    while now < end:
        expected = next(p for p in publishes if p > now)
        got = next_publish_after(now.to_pydatetime())
        assert got == expected.to_pydatetime(), now
        ttl = publish_ttl_seconds(now.to_pydatetime())
        assert ttl == int((expected - now).total_seconds()) + 6 * HOUR, now
        longest = max(longest, ttl)
        now += pd.Timedelta(hours=3)
    # the longest gap of 2026: a Friday evening before a Monday holiday (or a Thursday
    # evening before a Friday holiday) to the next session's 18:30, 4 days at most
    assert longest <= 4 * 24 * HOUR + 6 * HOUR
    assert longest > 3 * 24 * HOUR + 6 * HOUR, "2026 has 4-day closures; the sweep must have met one"


def test_calendar_dates_used_here_are_what_the_tests_assume(xnys):
    for day, is_session in (
        (date(2026, 11, 26), False), (date(2026, 11, 27), True), (date(2026, 12, 24), True),
        (date(2026, 12, 25), False), (date(2026, 12, 31), True), (date(2027, 1, 1), False), (date(2027, 1, 4), True),
    ):
        assert bool(xnys.is_session(pd.Timestamp(day))) == is_session, day


def test_beyond_the_calendar_the_weekday_rule_applies():
    # the calendar knows sessions up to about a year ahead; a publish must not fail beyond it
    assert calendar_end() < date(2040, 1, 1)
    assert is_publish_day(date(2040, 12, 25))  # a Tuesday: Christmas is unknown out there
    assert not is_publish_day(date(2040, 12, 23))  # a Sunday
    assert next_publish_after(datetime(2040, 12, 21, 19, 0, tzinfo=NY)) == datetime(2040, 12, 24, 18, 30, tzinfo=NY)
