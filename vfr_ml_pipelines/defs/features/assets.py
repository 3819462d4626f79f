from datetime import date

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
from vfr_ml_pipelines.lib.features.labels import compute_all_labels
from vfr_ml_pipelines.lib.features.online_store import register_feature_set, write_latest
from vfr_ml_pipelines.lib.features.transforms import build_feature_matrix
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
from vfr_ml_pipelines.lib.warehouse import read_frame
from vfr_ml_pipelines.lib.warehouse.partitions import replace_date_range

MARKET_DATA = ["raw_prices", "raw_fundamentals", "raw_news"]
PRICES_SQL = """
SELECT symbol, trade_date, open, high, low, close, adj_close, volume, dividend, split_ratio
FROM vfr_ml.raw_prices ORDER BY symbol, trade_date
"""


def read_adjusted_prices(warehouse: WarehouseResource) -> pd.DataFrame:
    """All stored bars with adj_close recomputed from split and dividend events."""
    return adjust_prices(read_frame(warehouse.engine, PRICES_SQL))


def _lineage(prices: pd.DataFrame, **extra: object) -> dict:
    return {
        "code_version": settings.code_version(),
        "input_first_day": str(prices["trade_date"].min()),
        "input_last_day": str(prices["trade_date"].max()),
        "input_rows": len(prices),
        **extra,
    }


def _register(warehouse: WarehouseResource, feature_store: FeatureStoreResource, feature_set: str, description: str) -> None:
    """Mirror the offline manifest into `vfr_ml.feature_sets`, so SQL clients see what is stored."""
    store = feature_store.offline
    with warehouse.engine.begin() as conn:
        register_feature_set(
            conn, feature_set, store.manifest(feature_set), version=feature_set.rsplit("-", 1)[-1],
            description=description, store_uri=str(store.root / feature_set),
        )


def _store_block(
    warehouse: WarehouseResource, feature_store: FeatureStoreResource, *, version: str, names: tuple[str, ...],
    frame: pd.DataFrame, prices: pd.DataFrame, description: str, **lineage: object,
) -> dg.MaterializeResult:
    """Write one feature block to the offline store, register it, and describe it."""
    report = feature_store.offline.write(version, frame, lineage=_lineage(prices, **lineage))
    _register(warehouse, feature_store, version, description)
    latest = frame[frame["trade_date"] == frame["trade_date"].max()]
    return dg.MaterializeResult(
        metadata={
            "feature_set": version,
            "features": len(names),
            "rows": len(frame),
            "latest_day": str(frame["trade_date"].max()),
            "latest_day_missing_share": float(latest[list(names)].isna().mean().mean()),
            "files_written": len(report.files),
        }
    )


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=["raw_prices"])
def technical_features(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """48 technical indicators (TA-Lib definitions) per symbol and session, computed on
    split- and dividend-adjusted bars, stored as feature set `technical-v2` in the offline
    store. Warm-up windows stay missing, never filled."""
    prices = read_adjusted_prices(warehouse)
    return _store_block(
        warehouse, feature_store, version=technical.FEATURE_SET_VERSION, names=technical.FEATURE_NAMES,
        frame=technical.compute_technical_features(prices), prices=prices,
        description="technical indicators (TA-Lib) on adjusted bars",
    )


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=["raw_prices", "raw_fundamentals"])
def fundamental_features(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """32 valuation, profitability, health, growth and payout ratios, strictly point in
    time (a report counts from its filing session on), as feature set `fundamental-v1`."""
    prices = read_adjusted_prices(warehouse)
    reports = read_frame(warehouse.engine, "SELECT * FROM vfr_ml.raw_fundamentals ORDER BY symbol, filing_date")
    return _store_block(
        warehouse, feature_store, version=fundamental.FEATURE_SET_VERSION, names=fundamental.FEATURE_NAMES,
        frame=fundamental.compute_fundamental_features(prices, reports), prices=prices,
        description="point-in-time fundamental ratios", reports=len(reports),
    )


@dg.asset(group_name="features", kinds={"python", "parquet"}, deps=["raw_prices", "raw_news"])
def sentiment_features(warehouse: WarehouseResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """18 news features from headlines scored with the Loughran-McDonald finance lexicon
    (tone, shares, counts, momentum, divergence from the price move), as `sentiment-v1`."""
    prices = read_adjusted_prices(warehouse)
    news = read_frame(warehouse.engine, "SELECT symbol, published_at, headline, source, url FROM vfr_ml.raw_news")
    return _store_block(
        warehouse, feature_store, version=sentiment.FEATURE_SET_VERSION, names=sentiment.FEATURE_NAMES,
        frame=sentiment.compute_sentiment_features(news, prices), prices=prices,
        description="Loughran-McDonald news sentiment", headlines=len(news),
    )


@dg.asset(
    group_name="features", kinds={"python", "parquet", "postgres"},
    deps=[technical_features, fundamental_features, sentiment_features, "universe"],
)
def feature_matrix(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
) -> dg.MaterializeResult:
    """The model-ready matrix: the three blocks joined per (symbol, session) plus per-day
    cross-sectional transforms (winsorised z-scores, ranks, sector-neutral variants), each
    row with its completeness and quality score; history in the offline store
    (`feature-matrix-v1`), the latest session in `vfr_ml.feature_latest` for serving."""
    store = feature_store.offline
    blocks = [store.read(version) for version, _ in catalog.BLOCKS.values()]
    sectors = read_frame(warehouse.engine, "SELECT symbol, sector FROM vfr_ml.universe")
    matrix, report = build_feature_matrix(
        blocks, sectors,
        raw_columns=list(catalog.RAW_NAMES), rank_columns=list(catalog.RANK_COLUMNS),
        zscore_columns=list(catalog.ZSCORE_COLUMNS), neutral_columns=list(catalog.NEUTRAL_COLUMNS),
    )
    written = store.write(
        catalog.MATRIX_VERSION, matrix,
        lineage={"code_version": settings.code_version(), "blocks": [v for v, _ in catalog.BLOCKS.values()]},
    )
    _register(warehouse, feature_store, catalog.MATRIX_VERSION, "model-ready matrix: blocks + per-day transforms")
    last_day = matrix["trade_date"].max()
    latest = matrix[matrix["trade_date"] == last_day]
    with warehouse.engine.begin() as conn:
        rows = write_latest(conn, catalog.MATRIX_VERSION, latest, latest["completeness"], latest["quality_score"])
    context.log.info(f"feature matrix: {len(matrix)} rows x {matrix.shape[1] - 2} columns; latest {last_day}: {rows} vectors")
    return dg.MaterializeResult(
        metadata={
            "feature_set": catalog.MATRIX_VERSION,
            "rows": len(matrix),
            "columns": matrix.shape[1] - 2,
            "latest_day": str(last_day),
            "latest_vectors": rows,
            "latest_mean_completeness": float(latest["completeness"].mean()),
            "days_dropped_too_few_names": report.days_dropped,
            "files_written": len(written.files),
        }
    )


@dg.asset(group_name="features", kinds={"python", "postgres"}, deps=["raw_prices"])
def labels(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Forward returns for 1d, 1w and 1m (and excess over the universe, and per-day rank)
    with the session each becomes known (`vfr_ml.labels`). Days whose horizon has not passed
    have no label."""
    prices = read_adjusted_prices(warehouse)
    frame = compute_all_labels(prices)
    columns = ["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date", "rank_return"]
    with warehouse.engine.begin() as conn:
        # the whole history is recomputed and replaced: a corrected price anywhere changes
        # the labels around it
        replace_date_range(conn, "vfr_ml.labels", frame[columns], "trade_date", date.min, frame["trade_date"].max())
    per_horizon = frame.groupby("horizon")["trade_date"].max()
    return dg.MaterializeResult(
        metadata={
            "rows": len(frame),
            **{f"last_labelled_day_{h}": str(d) for h, d in per_horizon.items()},
        }
    )
