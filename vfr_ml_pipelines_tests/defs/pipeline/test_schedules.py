"""The schedules across daylight-saving changes, weekends and exchange holidays: where their
ticks land (Dagster's own cron evaluation of each schedule's cron and execution_timezone) and
what each tick requests (`build_schedule_context` with fixed scheduled_execution_time values)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.models.schedules import weekly_retraining_schedule
from vfr_ml_pipelines.defs.pipeline.schedules import daily_pipeline_schedule

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _ticks_between(schedule: dg.ScheduleDefinition, times: list[datetime]) -> list[int]:
    """For each consecutive pair of `times`, how many of the schedule's ticks Dagster's cron
    evaluation finds in between (0 or 1 here): a probe asset on `cron_tick_passed` with the
    schedule's own cron string and execution time zone."""

    @dg.asset(automation_condition=dg.AutomationCondition.cron_tick_passed(schedule.cron_schedule, schedule.execution_timezone))
    def probe() -> None: ...

    defs = dg.Definitions(assets=[probe])
    found = []
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=times[0])
        for moment in times[1:]:
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor, evaluation_time=moment)
            found.append(result.total_requested)
    return found


def test_daily_ticks_stay_at_18_30_new_york_across_the_autumn_clock_change() -> None:
    times = [
        utc(2026, 10, 30, 22, 29), utc(2026, 10, 30, 22, 31),  # Friday 18:30 EDT = 22:30 UTC: a tick
        utc(2026, 11, 2, 22, 29), utc(2026, 11, 2, 22, 31),  # weekend (no tick), then Monday 17:31 EST: none yet
        utc(2026, 11, 2, 23, 29), utc(2026, 11, 2, 23, 31),  # Monday 18:30 EST = 23:30 UTC: the tick
    ]
    assert _ticks_between(daily_pipeline_schedule, times) == [1, 0, 0, 0, 1]


def test_daily_ticks_stay_at_18_30_new_york_across_the_spring_clock_change() -> None:
    times = [
        utc(2026, 3, 6, 23, 29), utc(2026, 3, 6, 23, 31),  # Friday 18:30 EST = 23:30 UTC
        utc(2026, 3, 9, 22, 29), utc(2026, 3, 9, 22, 31),  # Monday 18:30 EDT = 22:30 UTC
        utc(2026, 3, 9, 23, 31),  # where an EST clock would have put it: nothing more
    ]
    assert _ticks_between(daily_pipeline_schedule, times) == [1, 0, 1, 0]


def test_the_cron_never_ticks_on_a_weekend_but_does_on_a_holiday() -> None:
    times = [utc(2026, 11, 27, 23, 31), utc(2026, 11, 28, 23, 31), utc(2026, 11, 29, 23, 31),  # Saturday, Sunday
             utc(2026, 11, 25, 23, 31)]
    assert _ticks_between(daily_pipeline_schedule, times[:3]) == [0, 0]
    # Thanksgiving is a weekday: the cron ticks, and the schedule's function skips it (below)
    assert _ticks_between(daily_pipeline_schedule, [utc(2026, 11, 26, 23, 29), utc(2026, 11, 26, 23, 31)]) == [1]


def _evaluate(schedule: dg.ScheduleDefinition, when: datetime):
    from vfr_ml_pipelines.definitions import defs

    return schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def()))


@pytest.mark.parametrize(("when", "session"), [
    (utc(2026, 10, 30, 22, 30), "2026-10-30"),  # Friday before the autumn change (EDT)
    (utc(2026, 11, 2, 23, 30), "2026-11-02"),  # Monday after it (EST): still Monday's session, not Tuesday's
    (utc(2026, 3, 6, 23, 30), "2026-03-06"),  # Friday before the spring change (EST)
    (utc(2026, 3, 9, 22, 30), "2026-03-09"),  # Monday after it (EDT)
    (utc(2026, 11, 25, 23, 30), "2026-11-25"),  # the day before Thanksgiving
    (utc(2026, 11, 27, 23, 30), "2026-11-27"),  # Black Friday, an early close: still a session
    (utc(2026, 12, 24, 23, 30), "2026-12-24"),  # Christmas Eve, an early close
    (datetime(2026, 12, 28, 18, 30, tzinfo=NY), "2026-12-28"),  # a tick time given in New York time
])
def test_each_session_tick_requests_its_own_partition(when: datetime, session: str) -> None:
    [request] = _evaluate(daily_pipeline_schedule, when).run_requests
    assert request.partition_key == session and request.run_key == f"daily-{session}"


@pytest.mark.parametrize(("when", "day"), [
    (utc(2026, 11, 26, 23, 30), "2026-11-26"),  # Thanksgiving
    (utc(2026, 12, 25, 23, 30), "2026-12-25"),  # Christmas
    (utc(2026, 11, 28, 23, 30), "2026-11-28"),  # a Saturday, if a tick were forced (the cron has none)
])
def test_holidays_and_weekends_are_skipped_with_the_reason(when: datetime, day: str) -> None:
    result = _evaluate(daily_pipeline_schedule, when)
    assert not result.run_requests and result.skip_message == f"{day} is not an NYSE session"


def test_weekly_retraining_ticks_on_saturday_06_00_new_york_across_the_clock_change() -> None:
    times = [utc(2026, 3, 7, 10, 59), utc(2026, 3, 7, 11, 1),  # Saturday 06:00 EST = 11:00 UTC
             utc(2026, 3, 14, 9, 59), utc(2026, 3, 14, 10, 1)]  # Saturday 06:00 EDT = 10:00 UTC
    assert _ticks_between(weekly_retraining_schedule, times) == [1, 0, 1]
    [request] = _evaluate(weekly_retraining_schedule, utc(2026, 3, 14, 10, 0)).run_requests
    assert request.run_key == "retrain-2026-03-14"
