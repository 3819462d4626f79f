"""Progress lines for a long loop of the core (a market-data load over many symbols): how far
it is and about how long is left, logged with Python's logging (the local Dagster instance
hands the `vfr_ml_pipelines` loggers to the run's log, the console of `vfr-ml run` and the UI).

A line is worth reading, not a heartbeat: nothing while a loop is short (under
`quiet_seconds`), then one line per tenth done or per `every_seconds`, whichever comes first;
never one per item. The closing summary is the caller's (it knows what the counts mean).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator


def duration(seconds: float) -> str:
    """`0.4 s`, `12 s`, `3 min 05 s`, `1 h 02 min`: how long, at the precision a person reads."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class Progress:
    """`advance(n)` after each batch of a loop over `total` items of `unit`; the ETA assumes
    the rest goes at the pace so far. `clock` is injectable so the rule can be tested without
    waiting."""

    def __init__(
        self, log: logging.Logger, what: str, total: int, unit: str, *,
        quiet_seconds: float = 10.0, every_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic,
    ):
        if total < 0:
            raise ValueError(f"progress of {what!r}: total must be >= 0, got {total}")
        self.log, self.what, self.total, self.unit = log, what, total, unit
        self.quiet_seconds, self.every_seconds, self.clock = quiet_seconds, every_seconds, clock
        self.started = clock()
        self.done = 0
        self._last_line = self.started
        self._last_tenth = 0
        self.lines = 0

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def advance(self, n: int = 1, detail: str = "") -> None:
        """`n` more items done; `detail` (e.g. "12,400 rows so far") goes into the line."""
        self.done = min(self.total, self.done + n)
        now = self.clock()
        tenth = math.floor(10 * self.done / self.total) if self.total else 10
        if self.done >= self.total or now - self.started < self.quiet_seconds:
            return  # the caller's summary closes the loop; a short loop says nothing until then
        if tenth > self._last_tenth or now - self._last_line >= self.every_seconds:
            self._line(now, detail)
            self._last_line, self._last_tenth = now, tenth

    def each(self, items: Iterable) -> Iterator:
        """`items`, one done each time the loop asks for the next (a `continue` counts too)."""
        for item in items:
            yield item
            self.advance()

    def _line(self, now: float, detail: str) -> None:
        elapsed = now - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta = f"about {duration(left)} left" if self.done else "time left unknown yet"
        extra = f", {detail}" if detail else ""
        self.log.info(
            f"{self.what}: {self.done:,} of {self.total:,} {self.unit} ({100 * self.done // self.total} %){extra}; "
            f"{duration(elapsed)} so far, {eta}"
        )
        self.lines += 1
