"""The drift sensor's decision: when a drift report asks for one retraining run, as a pure
function of an explicit cursor (a JSON string, the Dagster sensor cursor).

Phases
------
* ``watching``: no retraining of ours is pending. A drifted window requests one run (run
  key ``drift-<session>``; ``<run_key_prefix>-<session>`` in general: the decay sensor runs
  this same machine as ``decay``) and moves to ``requested``.
* ``requested``: the run was asked for and has not finished. Nothing is requested, however
  long the drift lasts or however often it clears and returns: the run in flight answers it.
  When the shell reports the run finished (success or failure alike: the run-failure sensor
  alerts on failures) the cursor moves to ``cooldown``. A run that never reports back stops
  blocking after ``max_wait_sessions`` sessions (then ``cooldown`` as well), so a lost run
  cannot silence the sensor for good.
* ``cooldown``: ``cooldown_sessions`` sessions after the run finished, nothing is requested
  (a new champion needs a few sessions before its own drift report means anything). The next
  session after that goes back to ``watching`` and is judged there: drift that persisted
  through the retraining requests again (once per cooldown period at most, and the reason
  says it persisted); drift that cleared requests again only when it returns.

So one drift event gives one request, and a persistent drift at most one request per
retraining plus cooldown. Sessions are the ISO dates of the windows' last sessions; the
sensor may be evaluated many times per session (only a new session advances the counters),
and a report for an older session than the cursor's is ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

WATCHING, REQUESTED, COOLDOWN = "watching", "requested", "cooldown"
PHASES = (WATCHING, REQUESTED, COOLDOWN)


@dataclass(frozen=True)
class DecisionConfig:
    cooldown_sessions: int = 5  # a week of sessions for the retrained champion to settle
    max_wait_sessions: int = 10  # retraining takes well under a session; ten means it is lost
    # the run key is `<prefix>-<session>`: the decay sensor runs the same machine as "decay"
    run_key_prefix: str = "drift"

    def __post_init__(self) -> None:
        if self.cooldown_sessions < 0 or self.max_wait_sessions < 1:
            raise ValueError(f"need cooldown_sessions >= 0 and max_wait_sessions >= 1, got {self}")


@dataclass(frozen=True)
class DriftCursor:
    phase: str = WATCHING
    last_session: str | None = None
    run_key: str | None = None
    sessions_waited: int = 0
    cooldown_left: int = 0
    # the run key of the last retraining that finished: set when drift persists through it
    previous_run_key: str | None = None

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"unknown drift cursor phase {self.phase!r}")

    def to_string(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_string(cls, text: str | None) -> DriftCursor:
        """The cursor a sensor stored (None or "" on its first evaluation: watching)."""
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a drift cursor: {text[:200]!r} ({error})") from None


@dataclass(frozen=True)
class Observation:
    session: str  # ISO date of the last session of the drift report's window
    drifted: bool
    score: float = float("nan")
    # the run requested under cursor.run_key has reached a terminal state (read by the shell)
    retraining_finished: bool = False
    # which trigger(s) fired, for the reason (the drift sensor: "1w:breadth"; "" when not named)
    trigger: str = ""


@dataclass(frozen=True)
class Decision:
    request_run: bool
    run_key: str | None
    cursor: DriftCursor
    reason: str


def _request(cursor: DriftCursor, observation: Observation, config: DecisionConfig) -> Decision:
    run_key = f"{config.run_key_prefix}-{observation.session}"
    persisted = cursor.previous_run_key is not None
    fired = f"; trigger {observation.trigger}" if observation.trigger else ""
    reason = (f"drift persists after retraining {cursor.previous_run_key} (score {observation.score:.3f}{fired}): requesting again"
              if persisted else f"drift score {observation.score:.3f} passed the threshold{fired}: requesting retraining")
    new = replace(cursor, phase=REQUESTED, run_key=run_key, sessions_waited=0, cooldown_left=0)
    return Decision(True, run_key, new, reason)


def _watch(cursor: DriftCursor, observation: Observation, config: DecisionConfig) -> Decision:
    if observation.drifted:
        return _request(cursor, observation, config)
    # drift cleared: a later drift is a new event, not a persisting one
    return Decision(False, None, replace(cursor, previous_run_key=None), "no drift")


def decide(cursor: DriftCursor, observation: Observation, config: DecisionConfig = DecisionConfig()) -> Decision:
    """What the drift sensor does for `observation`, and the cursor it stores next."""
    if cursor.last_session is not None and observation.session < cursor.last_session:
        return Decision(False, None, cursor, f"stale report for {observation.session} (cursor at {cursor.last_session})")
    new_session = observation.session != cursor.last_session
    cursor = replace(cursor, last_session=observation.session)

    if cursor.phase == REQUESTED:
        if observation.retraining_finished:
            finished = replace(cursor, phase=COOLDOWN, cooldown_left=config.cooldown_sessions,
                               previous_run_key=cursor.run_key, run_key=None)
            return Decision(False, None, finished, f"retraining {cursor.run_key} finished: cooling down {config.cooldown_sessions} sessions")
        waited = cursor.sessions_waited + int(new_session)
        if waited > config.max_wait_sessions:
            lost = replace(cursor, phase=COOLDOWN, cooldown_left=config.cooldown_sessions,
                           previous_run_key=cursor.run_key, run_key=None, sessions_waited=0)
            return Decision(False, None, lost, f"retraining {cursor.run_key} did not finish within {config.max_wait_sessions} sessions: no longer waiting")
        return Decision(False, None, replace(cursor, sessions_waited=waited), f"waiting for retraining {cursor.run_key}")

    if cursor.phase == COOLDOWN:
        if not observation.drifted:
            cursor = replace(cursor, previous_run_key=None)  # cleared: a return is a new event
        if not new_session or cursor.cooldown_left > 0:
            left = cursor.cooldown_left - int(new_session)
            return Decision(False, None, replace(cursor, cooldown_left=left), f"cooldown: {left} more session(s)")
        cursor = replace(cursor, phase=WATCHING)
    return _watch(cursor, observation, config)
