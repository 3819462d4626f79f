"""The feature assets (group `features`): wiring only, each body one call into
`lib/features/feature_run.py`.

Assets: `adjusted_prices`, `technical_features`, `fundamental_features`,
`sentiment_features`, `feature_matrix`, `labels`."""

import dagster as dg

from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib.features import feature_run
from vfr_ml_pipelines.lib.features.feature_run import StepReport


def _reported(context: dg.AssetExecutionContext, step: StepReport) -> dg.MaterializeResult:
    if step.log_line:
        context.log.info(step.log_line)
    return dg.MaterializeResult(metadata=step.metadata)


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=["raw_prices"])
def adjusted_prices(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """Every stored daily bar, read once per run from `vfr_ml.raw_prices`, with adj_close
    recomputed from the split and dividend events (anchored on each symbol's last stored
    day), written whole as one Parquet snapshot (`_snapshots/adjusted-prices-v1.parquet`
    in the feature store). The three feature blocks and the labels read this snapshot
    instead of querying PostgreSQL each; the same stored prices give the same snapshot."""
    step = feature_run.adjusted_prices_snapshot(warehouse.engine, feature_store.offline)
    return dg.MaterializeResult(metadata=step.metadata)


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=[adjusted_prices])
def technical_features(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """48 technical indicators (TA-Lib definitions) per symbol and session, computed on the
    run's split- and dividend-adjusted bars (the `adjusted_prices` snapshot), stored as
    feature set `technical-v2` in the offline store. Warm-up windows stay missing, never
    filled."""
    step = feature_run.technical_block(warehouse.engine, feature_store.offline)
    return dg.MaterializeResult(metadata=step.metadata)


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=[adjusted_prices, "raw_fundamentals"])
def fundamental_features(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """32 valuation, profitability, health, growth and payout ratios, strictly point in
    time (a report counts from its filing session on), priced with the run's
    `adjusted_prices` snapshot, as feature set `fundamental-v1`. Only the features whose
    data is stored are kept: without fundamentals, the price-only dividend yield alone
    (the metadata lists what was left out)."""
    return _reported(context, feature_run.fundamental_block(warehouse.engine, feature_store.offline))


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=[adjusted_prices, "raw_news"])
def sentiment_features(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """18 news features from headlines scored with the Loughran-McDonald finance lexicon
    (tone, shares, counts, momentum, divergence from the price move on the run's
    `adjusted_prices` snapshot), as `sentiment-v1`. Without stored news the block has no
    source: nothing is computed or stored, and the metadata says so."""
    return _reported(context, feature_run.sentiment_block(warehouse.engine, feature_store.offline))


@dg.asset(
    group_name="features", kinds={"python", "parquet", "postgres"},
    deps=[technical_features, fundamental_features, sentiment_features, "universe"],
)
def feature_matrix(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """The model-ready matrix: the features that have a source (every raw dataset they are
    computed from has data: technical always, fundamental ratios when fundamentals were
    loaded, sentiment when news was) joined per (symbol, session) plus per-day
    cross-sectional transforms (winsorised z-scores, ranks, sector-neutral variants), each
    row with its completeness and quality score; history in the offline store
    (`feature-matrix-v1`, built and staged a year at a time to bound memory, replaced all
    at once), the latest session in `vfr_ml.feature_latest` for serving."""
    return _reported(context, feature_run.publish_feature_matrix(warehouse.engine, feature_store.offline))


@dg.asset(group_name="features", kinds={"python", "postgres"}, deps=[adjusted_prices])
def labels(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """Forward returns for 1d, 1w and 1m (and excess over the universe, and per-day rank)
    on the run's `adjusted_prices` snapshot, with the session each becomes known
    (`vfr_ml.labels`). Days whose horizon has not passed have no label."""
    step = feature_run.store_labels(warehouse.engine, feature_store.offline)
    return dg.MaterializeResult(metadata=step.metadata)
