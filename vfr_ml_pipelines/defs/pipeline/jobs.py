"""The jobs that run the whole pipeline: `full_pipeline_job` (every asset; `vfr-ml run` runs it over a
partition range as one catch-up run) and `daily_pipeline_job` (the after-close refresh: market data,
features, serving, monitoring). Retraining and rollback jobs live with the models domain, the kill switch and
republish with serving."""

import dagster as dg

from vfr_ml_pipelines.defs.market_data.partitions import trading_day_partitions
from vfr_ml_pipelines.defs.pipeline.freshness import FRESHNESS_CHECKS

# the freshness checks observe these jobs from outside (defs/pipeline/freshness.py)
_OBSERVERS = dg.AssetSelection.checks(*FRESHNESS_CHECKS)

full_pipeline_job = dg.define_asset_job(
    name="full_pipeline_job",
    selection=dg.AssetSelection.all() - _OBSERVERS,
    partitions_def=trading_day_partitions,
    description=(
        "Everything: market data of the partition's sessions -> features -> training, promotion gate, champions "
        "-> predictions -> VFR's Redis keys and tables. Run over a partition range it is one catch-up run "
        "(`vfr-ml run`)."
    ),
)

daily_pipeline_job = dg.define_asset_job(
    name="daily_pipeline_job",
    selection=dg.AssetSelection.groups("market_data", "features", "serving", "monitoring") - _OBSERVERS,
    partitions_def=trading_day_partitions,
    description=(
        "After the close: market data of the session -> features -> predictions of the current champions "
        "-> VFR's Redis keys and tables, realized outcomes and the daily performance roll-up, then the "
        "monitoring reports (feature drift of the champions, live performance of the served models)."
    ),
)
