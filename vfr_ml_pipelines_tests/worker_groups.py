"""How `make test` shares the tests between its two pytest-xdist workers (README "Testing").

`make test` passes `-n 2 --dist loadscope --no-loadscope-reorder`. A worker takes a whole
group at a time. A group is a module (its module-scoped fixtures are then built once, as in a
serial run), except that the modules using the session-wide `pipeline` of conftest.py form one
group, so that pipeline is trained once. The groups that train whole pipelines or run the CLI
go out first, longest first, so that neither worker is left with one of them after the other
has run out of work.

The controller, which hands out the groups, sees only test ids (it collects nothing and sees
no fixtures or marks; pytest-xdist's own `xdist_group` marks do not reach it under pytest 9.2,
whose node ids that plugin can no longer rewrite): hence module paths here, and a check at
collection that a module using the shared pipeline is listed.
"""

from __future__ import annotations

import pytest

SHARED_PIPELINE = "pipeline"
SHARED_PIPELINE_MODULES = frozenset({
    "vfr_ml_pipelines_tests/defs/backtests/test_backtest_assets.py",
    "vfr_ml_pipelines_tests/defs/monitoring/test_drift_wiring.py",
    "vfr_ml_pipelines_tests/defs/monitoring/test_health_wiring.py",
    "vfr_ml_pipelines_tests/defs/monitoring/test_performance_wiring.py",
    "vfr_ml_pipelines_tests/defs/serving/test_vfr_live_path.py",
    "vfr_ml_pipelines_tests/defs/serving/test_vfr_reads.py",
    "vfr_ml_pipelines_tests/e2e/test_pipeline_e2e.py",
})
# longest first, from the slowest-test list of a serial run (README "Testing")
HEAVY_GROUPS_FIRST = (
    "vfr_ml_pipelines_tests/e2e/test_drift_retraining_e2e.py",
    SHARED_PIPELINE,
    "vfr_ml_pipelines_tests/e2e/test_embedded_default.py",
    "vfr_ml_pipelines_tests/defs/models/test_model_lifecycle.py",
    "vfr_ml_pipelines_tests/e2e/test_real_data_e2e.py",
    "vfr_ml_pipelines_tests/cli/test_cli_run.py",
    "vfr_ml_pipelines_tests/cli/test_cli_ui.py",
    "vfr_ml_pipelines_tests/e2e/test_fault_postgres_restart.py",
    "vfr_ml_pipelines_tests/defs/test_definitions.py",
)


def group_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SHARED_PIPELINE if module in SHARED_PIPELINE_MODULES else module


def _uses_shared_pipeline(item: pytest.Item) -> bool:
    # a module with a `pipeline` of its own (the lifecycle tests) overrides the shared one
    return "pipeline" in item.fixturenames and not hasattr(getattr(item, "module", None), "pipeline")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unlisted = sorted({group_of(item.nodeid) for item in items if _uses_shared_pipeline(item)} - {SHARED_PIPELINE})
    if unlisted:
        raise pytest.UsageError(
            f"{', '.join(unlisted)} use the session-wide pipeline: add them to SHARED_PIPELINE_MODULES in "
            f"{__name__}, or the two workers each train it"
        )
    # the controller hands the groups out in the order of a worker's collection
    if hasattr(config, "workerinput"):
        rank = {group: k for k, group in enumerate(HEAVY_GROUPS_FIRST)}
        items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which a bare pytest lacks
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadscope` with the groups above as its scopes (other modes: xdist's own)."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)
