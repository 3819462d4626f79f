"""Running the pipeline over a range of sessions in one run (catch-up and backfill)."""

import os
from datetime import date

import dagster as dg

from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions

# Dagster's run tags for a single run over a partition range (what BackfillPolicy.single_run
# launches); setting them directly gives the same run from a script or a test.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


# The code location's name in workspace.yaml and pyproject.toml ([tool.dagster]).
CODE_LOCATION_NAME = "vfr_ml_pipelines"
# The tag the UI lists a job's runs by, and the name Dagster gives the one repository of a
# Definitions object: the values Dagster writes on runs launched from a code location (kept as
# strings here rather than imported from Dagster's private modules; test_cli_ui checks the UI
# lists a run carrying them).
REPOSITORY_LABEL_TAG = ".dagster/repository"
SINGLETON_REPOSITORY_NAME = "__repository__"


# Dagster's switch (read by the process that creates a run: `vfr-ml run`, or the webserver and
# daemon of `vfr-ml ui`) that records one "materialization planned" event per asset for a run over
# a partition range, instead of one per asset per partition. A first catch-up covers about a
# thousand sessions of five partitioned assets: 4,955 planned events, about two minutes of storage
# writes before any work starts. The cost, as Dagster documents it: the partitions of a run that
# fails are shown as missing rather than failed (the run itself still shows the failure, and
# `catch_up_range` starts again from the first missing session).
ONE_PLANNED_EVENT_PER_ASSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def plan_ranges_per_asset() -> None:
    """Turn on one planned event per asset for range runs in this process and its children,
    unless the operator set the switch explicitly."""
    os.environ.setdefault(ONE_PLANNED_EVENT_PER_ASSET_ENV, "true")


def range_tags(start: str | date, end: str | date) -> dict[str, str]:
    return {RANGE_START_TAG: str(start), RANGE_END_TAG: str(end)}


def ui_listing_tags() -> dict[str, str]:
    """Tags that list a run started outside the UI (`vfr-ml run` executes in process) on its
    job's page and the Overview timeline: the UI finds a job's runs by the repository label
    that runs launched from the code location carry, which an in-process run lacks."""
    return {REPOSITORY_LABEL_TAG: f"{SINGLETON_REPOSITORY_NAME}@{CODE_LOCATION_NAME}"}


def catch_up_range(instance: dg.DagsterInstance, latest: date) -> tuple[str, str]:
    """From the first session whose raw prices were never materialized up to `latest`
    (just `latest` when nothing is missing: re-running it is idempotent)."""
    keys = [k for k in trading_day_partitions.get_partition_keys() if k <= latest.isoformat()]
    if not keys:
        raise ValueError(f"no trading-day partition on or before {latest}")
    done = instance.get_materialized_partitions(dg.AssetKey("raw_prices"))
    missing = [k for k in keys if k not in done]
    return (missing[0] if missing else keys[-1]), keys[-1]
