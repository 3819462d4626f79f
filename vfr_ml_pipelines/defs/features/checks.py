"""Gates on the feature matrix before models train or VFR reads it."""

from datetime import date

import dagster as dg
import numpy as np

from vfr_ml_pipelines.defs.features.assets import feature_matrix
from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.features.store import latest_price_day

MIN_LATEST_COMPLETENESS = 0.6


@dg.asset_check(asset=feature_matrix, blocking=True)
def feature_matrix_is_valid(feature_store: FeatureStoreResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The stored matrix has no infinity, no duplicate (symbol, session), every raw feature
    within its plausible range, is as fresh as the latest stored prices, and the latest
    session's vectors are at least 60 % complete on average."""
    # one stored year at a time: the whole matrix at 500 symbols x 10 years would double the
    # step's memory (every check is per row or per day, and a year file holds whole days)
    store = feature_store.offline
    infinite = duplicates = 0
    out_of_range: dict[str, int] = {}
    last_day = None
    symbols: set[str] = set()
    for year in store.years(catalog.MATRIX_VERSION):
        part = store.read(catalog.MATRIX_VERSION, start=date(year, 1, 1), end=date(year, 12, 31))
        if part.empty:
            continue
        values = part.drop(columns=["symbol", "trade_date"]).to_numpy(dtype="float64")
        infinite += int(np.isinf(values).sum())
        del values
        duplicates += int(part.duplicated(["symbol", "trade_date"]).sum())
        for name, (low, high) in catalog.RANGES.items():
            if name in part.columns:
                bad = int(((part[name] < low) | (part[name] > high)).sum())
                if bad:
                    out_of_range[name] = out_of_range.get(name, 0) + bad
        last_day = max(filter(None, [last_day, part["trade_date"].max()]))
        symbols.update(part["symbol"].unique())
    last_price_day = latest_price_day(warehouse.engine)
    latest = read_latest(warehouse.engine, catalog.MATRIX_VERSION, sorted(symbols))
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
