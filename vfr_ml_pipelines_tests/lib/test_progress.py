"""The progress rule of `lib/progress.py` on a clock the test moves: silent while a loop is
short, then a line per tenth (or per 10 s between tenths) with an ETA from the pace so far."""

from __future__ import annotations

import logging

import pytest

from vfr_ml_pipelines.lib.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.progress"]


@pytest.fixture
def log(caplog) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="test.progress")
    return logging.getLogger("test.progress")


def test_durations_read_as_a_person_says_them():
    assert duration(0.44) == "0.4 s"
    assert duration(12.4) == "12 s"
    assert duration(185) == "3 min 05 s"
    assert duration(3720) == "1 h 02 min"


def test_a_short_loop_says_nothing(log, caplog):
    clock = Clock()
    progress = Progress(log, "prices from csv", 50, "symbols", clock=clock)
    for _ in range(50):
        clock.now += 0.1  # 5 s in all: under the 10 s of silence
        progress.advance()
    assert lines(caplog) == []


def test_a_long_loop_says_each_tenth_with_the_time_left(log, caplog):
    clock = Clock()
    progress = Progress(log, "prices from fmp", 100, "symbols", clock=clock)
    for _ in range(100):
        clock.now += 1.0
        progress.advance(1, "a detail")
    said = lines(caplog)
    # tenths 1..9; the 100th item is the caller's summary, not a progress line
    assert len(said) == 9 and progress.lines == 9
    # 10 done in 10 s: 90 left at that pace take 90 s
    assert said[0] == "prices from fmp: 10 of 100 symbols (10 %), a detail; 10 s so far, about 1 min 30 s left"
    assert said[-1] == "prices from fmp: 90 of 100 symbols (90 %), a detail; 1 min 30 s so far, about 10 s left"


def test_slow_items_are_reported_every_ten_seconds_between_tenths(log, caplog):
    clock = Clock()
    progress = Progress(log, "news from fmp", 1000, "symbols", clock=clock)
    for _ in range(60):  # 60 items of 1 s: 6 % done, no tenth reached
        clock.now += 1.0
        progress.advance()
    said = lines(caplog)
    assert len(said) == 6  # at 10, 20, ... 60 s
    assert said[0].startswith("news from fmp: 10 of 1,000 symbols (1 %); 10 s so far, about 16 min 30 s left")


def test_one_slow_batch_gets_its_line_and_bad_totals_are_refused(log, caplog):
    clock = Clock()
    progress = Progress(log, "prices from fmp", 2, "batches", clock=clock)
    clock.now += 30
    progress.advance()
    assert lines(caplog) == ["prices from fmp: 1 of 2 batches (50 %); 30 s so far, about 30 s left"]
    with pytest.raises(ValueError, match="progress of 'prices': total must be >= 0, got -1"):
        Progress(log, "prices", -1, "symbols")


def test_each_counts_every_item_the_loop_takes_skipped_ones_too(log, caplog):
    clock = Clock()
    progress = Progress(log, "universe from csv price files", 20, "files", clock=clock)
    seen = []
    for n in progress.each(range(20)):
        clock.now += 2.0
        if n % 2:
            continue  # a refused file still counts as done
        seen.append(n)
    assert len(seen) == 10 and progress.done == 20
    # 2 s a file: the 5th file ends the 10 s of silence at 10 s (past a tenth); 15 left take 30 s
    assert lines(caplog)[0] == "universe from csv price files: 5 of 20 files (25 %); 10 s so far, about 30 s left"
