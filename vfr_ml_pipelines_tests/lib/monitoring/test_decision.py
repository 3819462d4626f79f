from __future__ import annotations

from datetime import date, timedelta

import pytest

from vfr_ml_pipelines.lib.monitoring.decision import (
    COOLDOWN, REQUESTED, WATCHING, DecisionConfig, DriftCursor, Observation, decide,
)

CONFIG = DecisionConfig(cooldown_sessions=3, max_wait_sessions=4)


def _session(i: int) -> str:
    return (date(2026, 3, 2) + timedelta(days=i)).isoformat()


class Sensor:
    """Drives `decide` like the Dagster sensor: the cursor goes through its string form each tick."""

    def __init__(self) -> None:
        self.cursor_text: str | None = None
        self.requests: list[tuple[int, str]] = []

    def tick(self, i: int, drifted: bool, finished: bool = False) -> str:
        cursor = DriftCursor.from_string(self.cursor_text)
        decision = decide(cursor, Observation(_session(i), drifted, 0.5 if drifted else 0.0, finished), CONFIG)
        self.cursor_text = decision.cursor.to_string()
        if decision.request_run:
            self.requests.append((i, decision.run_key))
        return decision.reason

    @property
    def phase(self) -> str:
        return DriftCursor.from_string(self.cursor_text).phase


def test_one_drift_event_one_request_despite_repeated_ticks() -> None:
    sensor = Sensor()
    sensor.tick(0, False)
    for _ in range(3):  # the sensor runs several times within a session
        sensor.tick(1, True)
    for i in range(2, 5):
        sensor.tick(i, True)
    assert sensor.requests == [(1, f"drift-{_session(1)}")]
    assert sensor.phase == REQUESTED


def test_no_request_while_running_even_if_drift_clears_and_returns() -> None:
    sensor = Sensor()
    sensor.tick(0, True)
    sensor.tick(1, False)
    sensor.tick(2, True)
    assert len(sensor.requests) == 1


def test_cooldown_then_persistent_drift_requests_once_more() -> None:
    sensor = Sensor()
    sensor.tick(0, True)
    sensor.tick(1, True, finished=True)
    assert sensor.phase == COOLDOWN
    for i in range(2, 5):  # three cooldown sessions: nothing
        sensor.tick(i, True)
    assert len(sensor.requests) == 1
    reason = sensor.tick(5, True)
    assert sensor.requests[-1] == (5, f"drift-{_session(5)}")
    assert "persists after retraining" in reason and _session(0) in reason


def test_after_cooldown_cleared_drift_waits_for_its_return() -> None:
    sensor = Sensor()
    sensor.tick(0, True)
    sensor.tick(1, False, finished=True)
    for i in range(2, 9):
        sensor.tick(i, False)
    assert sensor.phase == WATCHING and len(sensor.requests) == 1
    reason = sensor.tick(9, True)
    assert sensor.requests[-1][0] == 9 and "persists" not in reason


def test_drift_that_clears_in_cooldown_and_returns_is_a_new_event() -> None:
    sensor = Sensor()
    sensor.tick(0, True)
    sensor.tick(1, True, finished=True)
    sensor.tick(2, False)
    sensor.tick(3, True)
    sensor.tick(4, True)
    assert len(sensor.requests) == 1  # still cooling down
    reason = sensor.tick(5, True)
    assert len(sensor.requests) == 2 and "persists" not in reason


def test_a_lost_run_stops_blocking_after_max_wait() -> None:
    sensor = Sensor()
    sensor.tick(0, True)
    for i in range(1, 5):
        sensor.tick(i, True)
    assert sensor.phase == REQUESTED
    assert "did not finish" in sensor.tick(5, True)
    assert sensor.phase == COOLDOWN
    for i in range(6, 9):
        sensor.tick(i, True)
    sensor.tick(9, True)
    assert [i for i, _ in sensor.requests] == [0, 9]


def test_finish_reported_within_the_same_session_and_stale_reports() -> None:
    sensor = Sensor()
    sensor.tick(3, True)
    sensor.tick(3, True, finished=True)
    assert sensor.phase == COOLDOWN
    before = sensor.cursor_text
    assert "stale" in sensor.tick(1, True)
    assert sensor.cursor_text == before


def test_zero_cooldown_and_cursor_round_trip() -> None:
    config = DecisionConfig(cooldown_sessions=0)
    d1 = decide(DriftCursor(), Observation("2026-03-02", True), config)
    d2 = decide(d1.cursor, Observation("2026-03-02", True, retraining_finished=True), config)
    d3 = decide(DriftCursor.from_string(d2.cursor.to_string()), Observation("2026-03-03", True), config)
    assert (d1.request_run, d2.request_run, d3.request_run) == (True, False, True)
    assert DriftCursor.from_string(d3.cursor.to_string()) == d3.cursor
    assert DriftCursor.from_string(None) == DriftCursor() == DriftCursor.from_string("")


def test_bad_cursor_and_config() -> None:
    with pytest.raises(ValueError, match="not a drift cursor"):
        DriftCursor.from_string('{"phase": "watching", "bogus": 1}')
    with pytest.raises(ValueError, match="phase"):
        DriftCursor.from_string('{"phase": "sleeping"}')
    with pytest.raises(ValueError):
        DecisionConfig(max_wait_sessions=0)


def test_the_reason_names_the_trigger_that_fired_and_the_cursor_ignores_it() -> None:
    named = decide(DriftCursor(), Observation(_session(0), True, 0.03, trigger="1w:breadth"), CONFIG)
    unnamed = decide(DriftCursor(), Observation(_session(0), True, 0.03), CONFIG)
    assert named.request_run and "trigger 1w:breadth" in named.reason and "trigger" not in unnamed.reason
    assert named.cursor == unnamed.cursor and named.run_key == unnamed.run_key
