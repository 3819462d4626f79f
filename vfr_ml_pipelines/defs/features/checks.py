"""Gates on the feature matrix before models train or VFR reads it."""

import dagster as dg
import numpy as np

from vfr_ml_pipelines.defs.features.assets import feature_matrix
from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.warehouse import read_frame

MIN_LATEST_COMPLETENESS = 0.6


@dg.asset_check(asset=feature_matrix, blocking=True)
def feature_matrix_is_valid(feature_store: FeatureStoreResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The stored matrix has no infinity, no duplicate (symbol, session), every raw feature
    within its plausible range, is as fresh as the latest stored prices, and the latest
    session's vectors are at least 60 % complete on average."""
    matrix = feature_store.offline.read(catalog.MATRIX_VERSION)
    values = matrix.drop(columns=["symbol", "trade_date"]).to_numpy(dtype="float64")
    infinite = int(np.isinf(values).sum())
    duplicates = int(matrix.duplicated(["symbol", "trade_date"]).sum())
    out_of_range = {
        name: int(((matrix[name] < low) | (matrix[name] > high)).sum())
        for name, (low, high) in catalog.RANGES.items()
        if name in matrix.columns
    }
    out_of_range = {k: v for k, v in out_of_range.items() if v}
    last_price_day = read_frame(warehouse.engine, "SELECT max(trade_date) AS d FROM vfr_ml.raw_prices")["d"].iloc[0]
    last_day = matrix["trade_date"].max()
    latest = read_latest(warehouse.engine, catalog.MATRIX_VERSION, sorted(matrix["symbol"].unique()))
    completeness = float(latest["completeness"].mean()) if not latest.empty else 0.0
    passed = (
        infinite == 0 and duplicates == 0 and not out_of_range and last_day == last_price_day
        and completeness >= MIN_LATEST_COMPLETENESS
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "infinite_values": infinite,
            "duplicate_rows": duplicates,
            "out_of_range": dg.MetadataValue.json(out_of_range),
            "latest_day": str(last_day),
            "latest_price_day": str(last_price_day),
            "latest_mean_completeness": completeness,
            "min_completeness": MIN_LATEST_COMPLETENESS,
        },
    )
