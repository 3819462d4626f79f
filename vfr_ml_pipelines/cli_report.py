"""What `vfr-ml run` prints while the run goes and when it ends: one line per step started and
finished with the count of steps done and the time, a line a minute naming what still runs
(training a horizon takes minutes), and a closing table of what is served.

The lines are read from the run's own event log (the instance's storage), the source the
Dagster UI reads, by a thread beside the run: nothing in the assets knows about the console.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import dagster as dg

HEARTBEAT_SECONDS = 60.0
POLL_SECONDS = 2.0
_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}

# Dagster's console logger at INFO: the steps' own messages and every warning, without the
# DEBUG line Dagster writes for each event (one per partition per asset in a catch-up run).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:2d}:{secs:02d}"


class StepProgress:
    """Prints the run's step events as they are stored, until `stop()`."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, print_line: Callable[[str], None]):
        self._instance, self._run_id, self._print = instance, run_id, print_line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="vfr-ml-progress", daemon=True)
        self._started_at = time.monotonic()
        self._running: dict[str, float] = {}
        self._done = 0
        self._total: int | None = None

    def __enter__(self) -> StepProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _steps_planned(self) -> int | None:
        run = self._instance.get_run_by_id(self._run_id)
        if run is None or not run.execution_plan_snapshot_id:
            return None
        plan = self._instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        return len(plan.step_keys_to_execute)

    def _follow(self) -> None:
        cursor = None
        last_line = time.monotonic()
        while not self._stop.wait(POLL_SECONDS):
            try:
                if self._total is None:
                    self._total = self._steps_planned()
                connection = self._instance.get_records_for_run(self._run_id, cursor=cursor, of_type=_STEP_EVENTS)
            except Exception:  # the run's database may not exist yet; progress is best effort
                continue
            cursor = connection.cursor
            for record in connection.records:
                self._show(record.event_log_entry)
                last_line = time.monotonic()
            if self._running and time.monotonic() - last_line >= HEARTBEAT_SECONDS:
                now = time.monotonic()
                still = ", ".join(f"{step} ({_clock(now - since).strip()})" for step, since in self._running.items())
                self._print(f"[{_clock(now - self._started_at)}] still running: {still}")
                last_line = now

    def _show(self, entry) -> None:
        step, kind = entry.step_key, entry.dagster_event_type
        now = time.monotonic()
        total = f"/{self._total}" if self._total else ""
        if kind == dg.DagsterEventType.STEP_START:
            self._running[step] = now
            self._print(f"[{_clock(now - self._started_at)}] {step}: started ({self._done}{total} steps done)")
            return
        self._done += 1
        took = now - self._running.pop(step, now)
        verdict = {dg.DagsterEventType.STEP_SUCCESS: "done", dg.DagsterEventType.STEP_FAILURE: "FAILED",
                   dg.DagsterEventType.STEP_SKIPPED: "skipped"}[kind]
        self._print(f"[{_clock(now - self._started_at)}] {step}: {verdict} in {_clock(took).strip()} ({self._done}{total} steps done)")


def _materializations(result) -> dict[str, dict]:
    """The last materialization metadata of each asset in the run (raw values)."""
    latest: dict[str, dict] = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.step_materialization_data.materialization
            latest[materialization.asset_key.to_user_string()] = {
                k: getattr(v, "value", v) for k, v in materialization.metadata.items()
            }
    return latest


def _ic(value) -> str:
    return f"{value:+.3f}" if isinstance(value, int | float) else "-"


def summary_table(result, horizons: list[str]) -> list[str]:
    """Per horizon: who serves it, what the gate did, the challenger's test Rank IC next to
    the oracle's (the best possible forecast on the synthetic market); then the Redis publish."""
    meta = _materializations(result)
    rows = [("horizon", "served by", "gate", "challenger", "test Rank IC", "oracle Rank IC")]
    for horizon in horizons:
        champion = meta.get(f"champion_{horizon}_model", {})
        challenger = meta.get(f"challenger_{horizon}_model", {})
        rows.append((
            horizon,
            str(champion.get("serving_model", "-")),
            str(champion.get("action", "-")),
            str(challenger.get("serving_model") or challenger.get("serving_version") or "-")
            + (" (reused)" if challenger.get("reused") else ""),
            _ic(challenger.get("test_rank_ic")),
            _ic(challenger.get("oracle_test_rank_ic")),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    publish = meta.get("redis_predictions")
    if publish:
        lines.append(
            f"\n  Redis: {publish.get('entries_written', 0)} prediction entries written under "
            f"{publish.get('key_prefix', '?')!r} (TTL {publish.get('ttl_seconds', '?')} s), "
            f"{publish.get('stale_keys_removed', 0)} stale keys removed"
        )
    return lines
