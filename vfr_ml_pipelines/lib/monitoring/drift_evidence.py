"""Evidence of a shift accumulated across the daily drift reports: a one-sided CUSUM of the
breadth (docs/monitoring.md, "Accumulated evidence").

One report's breadth trigger fires when the breadth of the whole window or of one of its
short windows reaches its threshold. A shift that keeps the breadth just under it, day after
day, is never found, although ten days at 0.9 of the threshold say more than one day at 1.0.
So each report's `strength` (the largest breadth / threshold over its windows) is
accumulated, one-sided: `evidence = max(0, previous + strength - allowance)`. The allowance
(`DriftConfig.breadth_evidence_allowance`, 0.7) sits a little under the breadth threshold's
raw calibrated level (1 / `breadth_margin` = 0.8, the 98.3 % quantile of the reference's own
windows): an unshifted day is below it almost always and takes evidence away, a shifted day
that stays above it adds its excess. The "evidence" trigger fires at
`breadth_evidence_threshold` (0.4: e.g. five days at 0.78, or two at 0.9). Its weak point: a
market whose strength sits just above the allowance for weeks without any shift accumulates
too (on the development seeds the most an unshifted 30-day stretch reached was 0.20).

The evidence lives in the `feature_drift` asset's metadata (`drift_evidence`: per horizon the
champion, session, evidence before and after it), so each run continues from the previous
materialization: a new champion (new reference, new calibration) starts from 0, and a second
run for the same session recomputes from the evidence before that session (reruns do not
count a day twice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, DriftReport

# a feature with no value at all gives an infinite breadth; metadata wants a finite number
# (the single-report breadth trigger fires on it anyway)
_STRENGTH_CAP = 100.0


def breadth_strength(report: DriftReport) -> float:
    """The largest breadth / threshold over the whole window and its short windows (0 when
    the report has no breadth threshold)."""
    ratios = [b / t for b, t in report.breadth_windows if t is not None and t > 0 and not math.isnan(b)]
    return min(max(ratios, default=0.0), _STRENGTH_CAP)


@dataclass(frozen=True)
class Evidence:
    model_id: str
    session: str  # ISO date of the report's last session
    before: float  # the evidence carried in from the previous session
    value: float  # after this session's report

    def as_record(self) -> dict[str, str | float]:
        return {"model_id": self.model_id, "session": self.session, "before": self.before, "value": self.value}

    @classmethod
    def from_record(cls, record: Mapping | None) -> Evidence | None:
        """The evidence stored by `as_record` (None for a missing or malformed record: start afresh)."""
        try:
            return cls(str(record["model_id"]), str(record["session"]), float(record["before"]), float(record["value"]))
        except (TypeError, KeyError, ValueError):
            return None


def accumulate(previous: Evidence | None, model_id: str, session: str, strength: float, config: DriftConfig = DriftConfig()) -> Evidence:
    """This session's evidence from the previous one (module docstring): 0 carried in for a
    new champion or no history; the evidence before the session for a rerun of the same
    session or a report older than the stored one (a backfill restarts nothing it cannot see)."""
    if previous is None or previous.model_id != model_id or session < previous.session:
        carried = 0.0
    elif session == previous.session:
        carried = previous.before
    else:
        carried = previous.value
    return Evidence(model_id, session, carried, _step(carried, strength, config))


def sequence_evidence(strengths: list[float], config: DriftConfig = DriftConfig()) -> list[float]:
    """The evidence after each of consecutive daily strengths, from 0 (the detection studies)."""
    out, value = [], 0.0
    for strength in strengths:
        value = _step(value, strength, config)
        out.append(value)
    return out


def _step(carried: float, strength: float, config: DriftConfig) -> float:
    """One session of the one-sided CUSUM: the excess of `strength` over the allowance added."""
    return max(0.0, carried + strength - config.breadth_evidence_allowance)
