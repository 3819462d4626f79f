"""Feature blocks whose raw data is absent (a price-only export: no fundamentals, no news)
are not computed as columns of NaN and zeros: their assets skip, say "no source" in their
metadata, and store nothing; a partly sourced block stores only its sourced features.
Dagster assets on the real PostgreSQL."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from vfr_ml_pipelines.defs.features.assets import (
    adjusted_prices,
    fundamental_features,
    sentiment_features,
    technical_features,
)
from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine
from vfr_ml_pipelines_tests.feature_market import store_price_only_market

CONFIG = SyntheticMarketConfig(as_of=date(2025, 3, 31), start=date(2024, 1, 2), n_symbols=6)


@pytest.fixture(scope="module")
def price_only_run(make_database, tmp_path_factory):
    url = make_database("feature_sources")
    engine = create_warehouse_engine(url)
    apply_migrations(engine, settings.sql_dir())
    store_price_only_market(engine, CONFIG)
    root = tmp_path_factory.mktemp("feature_store")
    result = dg.materialize(
        [adjusted_prices, technical_features, fundamental_features, sentiment_features],
        resources={"warehouse": WarehouseResource(database_url=url), "feature_store": FeatureStoreResource(root=str(root))},
    )
    yield result, OfflineFeatureStore(root)
    engine.dispose()


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def test_a_block_without_source_is_skipped_and_says_so(price_only_run):
    result, store = price_only_run
    assert result.success
    meta = _metadata(result, "sentiment_features")
    assert meta["features"] == 0 and meta["features_without_source"] == len(sentiment.FEATURE_NAMES)
    assert "no source" in meta["no_source"] and "vfr_ml.raw_news has no rows" in meta["no_source"]
    assert sentiment.FEATURE_SET_VERSION not in store.feature_sets()  # nothing stored


def test_a_partly_sourced_block_stores_only_its_sourced_features(price_only_run):
    result, store = price_only_run
    meta = _metadata(result, "fundamental_features")
    priced = [spec.name for spec in fundamental.FUNDAMENTAL_FEATURES if spec.source == "prices"]
    assert priced == ["trailing_dividend_yield_252"]
    assert meta["features"] == 1 and meta["features_without_source"] == len(fundamental.FEATURE_NAMES) - 1
    stored = store.read(fundamental.FEATURE_SET_VERSION)
    assert [c for c in stored.columns if c not in ("symbol", "trade_date")] == priced
    assert stored[priced[0]].notna().any()  # the synthetic market pays dividends
    # the technical block is whole, and the names the matrix takes are what was stored
    assert _metadata(result, "technical_features")["features"] == len(technical.FEATURE_NAMES)
    assert catalog.names_with_source("fundamental", {"prices"}) == tuple(priced)
    assert catalog.names_with_source("sentiment", {"prices"}) == ()
    with pytest.raises(ValueError, match="unknown feature block"):
        catalog.names_with_source("macro", {"prices"})
