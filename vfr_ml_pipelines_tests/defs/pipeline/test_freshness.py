"""The `refreshed_for_last_session` checks (defs/pipeline/freshness.py): wired to the
instance's latest materialization, evaluated each evening declaratively, and kept out of the
pipeline jobs they observe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.pipeline.freshness import FRESHNESS_CHECK_NAME, FRESHNESS_CHECKS, REFRESHED_ASSETS

NY = ZoneInfo("America/New_York")
PREDICTIONS_CHECK = dg.AssetCheckKey(dg.AssetKey("predictions"), FRESHNESS_CHECK_NAME)


def _defs() -> dg.Definitions:
    return dg.Definitions(assets=[dg.AssetSpec(a) for a in REFRESHED_ASSETS], asset_checks=FRESHNESS_CHECKS)


def _check(instance: dg.DagsterInstance, as_of: datetime | str) -> dg.AssetCheckEvaluation:
    check = next(c for c in FRESHNESS_CHECKS if PREDICTIONS_CHECK in c.check_keys)
    result = dg.materialize(
        [dg.AssetSpec("predictions"), check], instance=instance, selection=dg.AssetSelection.checks(check),
        run_config={"ops": {check.node_def.name: {"config": {"as_of": str(as_of)}}}}, raise_on_error=False,
    )
    assert result.success, result.all_events
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_never_refreshed_is_late_as_a_warning() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        evaluation = _check(instance, datetime(2026, 11, 26, 21, 0, tzinfo=NY).isoformat())
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["last_refresh"].value == "never"
    assert evaluation.metadata["due_session"].value == "2026-11-25"  # Thanksgiving evening: Wednesday's


def test_the_latest_materialization_is_judged_against_the_due_session() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("predictions"))
        stamp = datetime.fromtimestamp(instance.get_latest_materialization_event(dg.AssetKey("predictions")).timestamp, UTC)
        # as of the refresh itself, the due session's deadline (so its close) is already behind it
        fresh = _check(instance, stamp.isoformat())
        late = _check(instance, (stamp + timedelta(days=10)).isoformat())
    assert fresh.passed and fresh.metadata["last_refresh"].value == stamp.isoformat()
    assert not late.passed and late.description.startswith("late by")


def test_as_of_without_a_time_zone_is_refused() -> None:
    check = FRESHNESS_CHECKS[0]
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(ValueError, match="as_of='2026-11-26T21:00' needs a time zone"):
        dg.materialize([dg.AssetSpec(REFRESHED_ASSETS[0]), check], instance=instance, selection=dg.AssetSelection.checks(check),
                       run_config={"ops": {check.node_def.name: {"config": {"as_of": "2026-11-26T21:00"}}}})


def test_the_checks_run_each_evening_declaratively() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        defs = _defs()
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=datetime(2026, 11, 26, 20, 10, tzinfo=NY))
        assert before.total_requested == 0
        after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor,
                                                  evaluation_time=datetime(2026, 11, 26, 20, 20, tzinfo=NY))
        assert after.total_requested == len(REFRESHED_ASSETS)  # Thanksgiving too: that is where it says fresh
        again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor,
                                                  evaluation_time=datetime(2026, 11, 26, 20, 40, tzinfo=NY))
        assert again.total_requested == 0


def test_the_pipeline_jobs_leave_the_observers_out() -> None:
    from vfr_ml_pipelines.definitions import defs

    keys = {key for check in FRESHNESS_CHECKS for key in check.check_keys}
    assert keys <= set(defs.resolve_asset_graph().asset_check_keys)
    for name in ("daily_pipeline_job", "full_pipeline_job", "retraining_job", "republish_job"):
        assert not keys & set(defs.resolve_job_def(name).asset_layer.asset_graph.asset_check_keys), name


def test_the_evening_evaluation_follows_new_york_across_the_clock_change() -> None:
    # Monday 2 November 2026, the first day of EST: 20:15 New York is 01:15 UTC on the 3rd, not 00:15
    times = [datetime(2026, 11, 3, 0, 10, tzinfo=UTC), datetime(2026, 11, 3, 0, 20, tzinfo=UTC),
             datetime(2026, 11, 3, 1, 10, tzinfo=UTC), datetime(2026, 11, 3, 1, 20, tzinfo=UTC)]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=_defs(), instance=instance, evaluation_time=times[0])
        requested = []
        for moment in times[1:]:
            result = dg.evaluate_automation_conditions(defs=_defs(), instance=instance, cursor=result.cursor, evaluation_time=moment)
            requested.append(result.total_requested)
    assert requested == [0, 0, len(REFRESHED_ASSETS)]
