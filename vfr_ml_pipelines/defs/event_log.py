"""Dagster's SQLite event log with one transaction per batch of asset events.

A run over a range of daily partitions (the catch-up run of `vfr-ml run`, a single-run
backfill) records one event per asset per partition: an ASSET_MATERIALIZATION_PLANNED event
when the run is created and an ASSET_MATERIALIZATION event when each asset's step ends. For
four years of sessions and five partitioned assets that is about 10,000 events. Dagster hands
them to the storage in batches (when DAGSTER_EVENT_BATCH_SIZE is set), but its SQLite storage
writes a batch one event at a time, each in two transactions of its own (the run's database and
the cross-run index), about 25 ms an event on this machine: four minutes of a first run spent
on bookkeeping. This storage writes a batch in one transaction per database instead and keeps
every event, so partition status, lineage and the UI read exactly what Dagster would have
written; only the cost changes.

The zero-configuration instance (`vfr-ml run`, `make ui`) names this class in its
dagster.yaml. Production instances on PostgreSQL do not need it: Dagster's PostgreSQL storage
already writes materialization batches in one statement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result

# Dagster buffers batchable events only while this is set (a batch is also flushed at its
# end, so the size only bounds memory: one range's events of one asset fit in one batch).
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "10000"

# Events whose whole effect is a row in the run's database, a row in the index with its tags,
# and the asset's latest-event row: what one transaction may write together. Anything else in
# a batch (checks' planned evaluations, failures to materialize) takes Dagster's own path.
_BATCHED_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    }
)


def enable_event_batches() -> None:
    """Make Dagster hand partition events to the storage in batches (an explicit setting in
    the environment wins). Called by every process that loads the instance, through this
    module's import."""
    os.environ.setdefault(EVENT_BATCH_SIZE_ENV, EVENT_BATCH_SIZE)


enable_event_batches()


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` uses one transaction per database."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: D102 (as the base class)
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # A run's planned events come as one batch that also holds its checks' planned
        # evaluations: those take Dagster's own path, the asset events around them go in
        # transactions; the order of the batch is kept.
        pending: list[EventLogEntry] = []
        for event in events:
            if _is_batched(event):
                pending.append(event)
                continue
            self._store_in_transactions(pending)
            pending = []
            self.store_event(event)
        self._store_in_transactions(pending)

    def _store_in_transactions(self, events: Sequence[EventLogEntry]) -> None:
        if not events:
            return
        statements = [self.prepare_insert_event(event) for event in events]
        by_run: dict[str, list] = {}
        for event, statement in zip(events, statements):
            by_run.setdefault(event.run_id, []).append(statement)
        for run_id, run_statements in by_run.items():
            with self.run_connection(run_id) as conn:  # one transaction
                for statement in run_statements:
                    conn.execute(statement)
        # the cross-run index: the same rows (their ids are the asset events' storage ids),
        # their tags, and the latest event of each asset and kind, as store_event leaves them
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            latest = {}
            for event, event_id in zip(events, event_ids):
                latest[(event.dagster_event.asset_key, event.dagster_event_type)] = (event, event_id)
            for event, event_id in sorted(latest.values(), key=lambda pair: pair[1]):
                self._store_asset_event(conn, event, event_id)


def _is_batched(event: EventLogEntry) -> bool:
    return (
        event.is_dagster_event
        and event.dagster_event_type in _BATCHED_TYPES
        and event.dagster_event.asset_key is not None
    )
