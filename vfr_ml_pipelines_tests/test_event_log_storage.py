"""The local instance's event log (defs/event_log.py) records exactly what Dagster's own SQLite
event log records for a run over a partition range, successful or failed: same events, same
partition status, same latest-event records. The reference is Dagster's storage itself, run
on the same job in an instance of its own."""


from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from vfr_ml_pipelines.cli import LOCAL_INSTANCE_MARKER, _ensure_dagster_home
from vfr_ml_pipelines.defs.event_log import BatchedSqliteEventLogStorage
from vfr_ml_pipelines.defs.market_data.partitions import single_run_backfill, trading_day_partitions
from vfr_ml_pipelines.defs.runs import range_tags

START, END = "2026-09-01", "2026-10-30"  # 43 sessions
ASSET_EVENT_TYPES = [
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
]


def _job(fail: bool) -> dg.JobDefinition:
    @dg.asset(partitions_def=trading_day_partitions, backfill_policy=single_run_backfill)
    def prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"last_day": context.partition_key_range.end})

    @dg.asset(partitions_def=trading_day_partitions, backfill_policy=single_run_backfill, deps=[prices])
    def news(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        if fail:
            raise RuntimeError("the news provider is down")
        return dg.MaterializeResult(metadata={"rows": 3})

    @dg.asset(deps=[prices, news])
    def model() -> None:
        return None

    # its planned evaluation rides in the same batch as the assets' planned events
    @dg.asset_check(asset=model, blocking=True)
    def model_is_sane() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    job = dg.define_asset_job("range_job", partitions_def=trading_day_partitions)
    return dg.Definitions(assets=[prices, news, model], asset_checks=[model_is_sane], jobs=[job]).resolve_job_def("range_job")


def _instance(home: Path, batched: bool) -> dg.DagsterInstance:
    home.mkdir(parents=True)
    config = "telemetry:\n  enabled: false\n"
    if batched:
        config += (
            "event_log_storage:\n  module: vfr_ml_pipelines.defs.event_log\n"
            f"  class: BatchedSqliteEventLogStorage\n  config:\n    base_dir: {home / 'history' / 'runs'}\n"
        )
    (home / "dagster.yaml").write_text(config)
    return dg.DagsterInstance.from_config(str(home))


def _what_the_instance_knows(instance: dg.DagsterInstance, run_ids: list[str]) -> dict:
    known = {}
    for key in ("prices", "news"):
        asset = dg.AssetKey(key)
        known[f"{key} materialized"] = sorted(instance.get_materialized_partitions(asset))
        for event_type in ASSET_EVENT_TYPES:
            events = instance.get_event_records(dg.EventRecordsFilter(event_type=event_type, asset_key=asset), limit=10_000, ascending=True)
            known[f"{key} {event_type.value}"] = [
                (run_ids.index(r.run_id), r.partition_key, _metadata(r)) for r in events
            ]
        record = instance.get_asset_records([asset])[0].asset_entry
        latest = record.last_materialization_record
        known[f"{key} latest"] = (
            run_ids.index(record.last_run_id) if record.last_run_id else None,
            latest.partition_key if latest else None,
            _metadata(latest) if latest else None,
        )
    for index, run_id in enumerate(run_ids):
        known[f"run {index} events"] = sorted(
            (e.dagster_event_type.value, e.dagster_event.asset_key.to_user_string() if e.dagster_event and e.dagster_event.asset_key else "",
             e.dagster_event.partition if e.dagster_event else None)
            for e in instance.all_logs(run_id) if e.is_dagster_event
        )
    return known


def _metadata(record) -> dict:
    event = record.event_log_entry.dagster_event
    if event.is_step_materialization:
        return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
    return {}


def _run_both(home: Path, batched: bool) -> dict:
    with _instance(home, batched) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage) == batched
        ok = _job(fail=False).execute_in_process(instance=instance, tags=range_tags(START, END))
        failed = _job(fail=True).execute_in_process(instance=instance, tags=range_tags("2026-10-01", END), raise_on_error=False)
        assert ok.success and not failed.success
        return _what_the_instance_knows(instance, [ok.run_id, failed.run_id])


def test_a_range_run_leaves_what_dagsters_own_storage_leaves(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "10000")
    reference = _run_both(tmp_path / "dagster_default", batched=False)
    in_transactions = []  # what took the fast path (the point of the class)
    original = BatchedSqliteEventLogStorage._store_in_transactions

    def _counting(self, events):
        in_transactions.extend(e.dagster_event_type for e in events)
        return original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "_store_in_transactions", _counting)
    batched = _run_both(tmp_path / "batched", batched=True)
    # every partition's planned and materialization events of both runs, despite the checks'
    # planned evaluations in the same batch
    assert in_transactions.count(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) >= 2 * (43 + 22)
    assert in_transactions.count(DagsterEventType.ASSET_MATERIALIZATION) >= 2 * 43
    assert reference["prices materialized"][0] == START and len(reference["prices materialized"]) == 43
    assert len(reference["prices ASSET_MATERIALIZATION_PLANNED"]) == 43 + 22  # one per partition per run
    assert reference["news latest"][1] == END
    assert batched == reference


def test_the_local_instance_config_is_written_and_upgraded_but_a_users_is_kept(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an earlier version's file
    _ensure_dagster_home()
    assert (home / "dagster.yaml").read_text().startswith(LOCAL_INSTANCE_MARKER)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
    own = "storage:\n  sqlite:\n    base_dir: elsewhere\n"
    (home / "dagster.yaml").write_text(own)
    _ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == own

