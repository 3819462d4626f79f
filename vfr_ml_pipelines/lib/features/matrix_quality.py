"""The gate on the stored feature matrix before models train or VFR reads it: no infinity,
no duplicate (symbol, session), every raw feature within its plausible range, as fresh as
the latest stored prices, and the latest session's vectors complete enough."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.features.store import latest_price_day

MIN_LATEST_COMPLETENESS = 0.6


@dataclass(frozen=True)
class MatrixQuality:
    infinite_values: int
    duplicate_rows: int
    out_of_range: dict[str, int]  # raw feature -> rows outside catalog.RANGES
    latest_day: date | None  # of the stored matrix
    latest_price_day: date | None  # of vfr_ml.raw_prices
    latest_mean_completeness: float  # of the latest vectors in vfr_ml.feature_latest
    min_completeness: float = MIN_LATEST_COMPLETENESS

    @property
    def passed(self) -> bool:
        return (
            self.infinite_values == 0 and self.duplicate_rows == 0 and not self.out_of_range
            and self.latest_day == self.latest_price_day and self.latest_mean_completeness >= self.min_completeness
        )

    def as_metadata(self) -> dict[str, Any]:
        return {
            "infinite_values": self.infinite_values,
            "duplicate_rows": self.duplicate_rows,
            "out_of_range": self.out_of_range,
            "latest_day": str(self.latest_day),
            "latest_price_day": str(self.latest_price_day),
            "latest_mean_completeness": self.latest_mean_completeness,
            "min_completeness": self.min_completeness,
        }


def feature_matrix_quality(engine: Engine, store: OfflineFeatureStore) -> MatrixQuality:
    """The stored matrix checked one year at a time (the whole matrix at 500 symbols x 10
    years would double the step's memory; every check is per row or per day, and a year
    file holds whole days), against the warehouse's latest price day and latest vectors."""
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
    latest = read_latest(engine, catalog.MATRIX_VERSION, sorted(symbols))
    return MatrixQuality(
        infinite_values=infinite,
        duplicate_rows=duplicates,
        out_of_range=out_of_range,
        latest_day=last_day,
        latest_price_day=latest_price_day(engine),
        latest_mean_completeness=float(latest["completeness"].mean()) if not latest.empty else 0.0,
    )
