"""Gates on the feature matrix before models train or VFR reads it.

Checks: `feature_matrix/feature_matrix_is_valid` (blocking; logic in
`lib/features/matrix_quality.py`)."""

import dagster as dg

from vfr_ml_pipelines.defs.features.assets import feature_matrix
from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib.features.matrix_quality import feature_matrix_quality


@dg.asset_check(asset=feature_matrix, blocking=True)
def feature_matrix_is_valid(feature_store: FeatureStoreResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The stored matrix has no infinity, no duplicate (symbol, session), every raw feature
    within its plausible range, is as fresh as the latest stored prices, and the latest
    session's vectors are at least 60 % complete on average."""
    quality = feature_matrix_quality(warehouse.engine, feature_store.offline)
    metadata = quality.as_metadata()
    metadata["out_of_range"] = dg.MetadataValue.json(quality.out_of_range)
    return dg.AssetCheckResult(passed=quality.passed, metadata=metadata)
