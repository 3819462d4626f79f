"""Range runs (catch-up and backfill): with the switch `vfr-ml run` and `vfr-ml ui` turn on, a run
over many sessions records one planned event per asset, and still one materialization per
session, so the UI and `catch_up_range` see every session done."""


import os
from datetime import date

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.defs.pipeline.runs import ONE_PLANNED_EVENT_PER_ASSET_ENV, catch_up_range, plan_ranges_per_asset, range_tags


@dg.asset(partitions_def=trading_day_partitions, backfill_policy=dg.BackfillPolicy.single_run())
def ranged_prices(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"sessions": len(context.partition_keys)})


@dg.asset(partitions_def=trading_day_partitions, backfill_policy=dg.BackfillPolicy.single_run(), deps=[ranged_prices])
def ranged_features(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"sessions": len(context.partition_keys)})


def _run_range(instance: dg.DagsterInstance, start: str, end: str) -> dg.ExecuteInProcessResult:
    job = dg.Definitions(assets=[ranged_prices, ranged_features]).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, tags=range_tags(start, end))


def _planned(instance: dg.DagsterInstance, key: str) -> int:
    return len(instance.fetch_planned_materializations(dg.AssetKey(key), limit=10_000).records)


@pytest.mark.parametrize("switch_on, planned_per_asset", [(True, 1), (False, 12)])
def test_a_range_run_plans_once_per_asset_with_the_switch_and_still_materializes_every_session(
    tmp_path, monkeypatch, switch_on, planned_per_asset
):
    monkeypatch.delenv(ONE_PLANNED_EVENT_PER_ASSET_ENV, raising=False)
    if switch_on:
        plan_ranges_per_asset()
    keys = trading_day_partitions.get_partition_keys()[:12]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert _run_range(instance, keys[0], keys[-1]).success
        assert _planned(instance, "ranged_prices") == planned_per_asset
        assert _planned(instance, "ranged_features") == planned_per_asset
        for key in ("ranged_prices", "ranged_features"):
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == set(keys)


def test_the_operator_can_turn_the_switch_off(monkeypatch):
    monkeypatch.setenv(ONE_PLANNED_EVENT_PER_ASSET_ENV, "false")
    plan_ranges_per_asset()

    assert os.environ[ONE_PLANNED_EVENT_PER_ASSET_ENV] == "false"


def test_catch_up_starts_at_the_first_session_never_materialized(tmp_path, monkeypatch):
    monkeypatch.delenv(ONE_PLANNED_EVENT_PER_ASSET_ENV, raising=False)
    plan_ranges_per_asset()
    keys = trading_day_partitions.get_partition_keys()[:12]

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # catch_up_range reads raw_prices: give the toy asset that name for this check
        @dg.asset(name="raw_prices", partitions_def=trading_day_partitions, backfill_policy=dg.BackfillPolicy.single_run())
        def raw_prices(context: dg.AssetExecutionContext) -> None:
            return None

        job = dg.Definitions(assets=[raw_prices]).resolve_implicit_global_asset_job_def()
        assert job.execute_in_process(instance=instance, tags=range_tags(keys[0], keys[5])).success
        assert catch_up_range(instance, date.fromisoformat(keys[-1])) == (keys[6], keys[-1])
