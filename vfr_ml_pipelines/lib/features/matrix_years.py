"""The feature matrix one calendar year at a time (`feature_matrix_by_year`), so a long
history never holds every block and the whole matrix in memory; `widest_day_of` gives the
day layout width that keeps the parts equal to one whole build, bit for bit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.dates import MISSING_DAY, day_number, day_numbers
from vfr_ml_pipelines.lib.features.matrix import FeatureMatrixReport, build_feature_matrix

def feature_matrix_by_year(
    read_blocks: Callable[[date, date], list[pd.DataFrame]],
    years: Iterable[int],
    sectors: pd.DataFrame | None,
    *,
    widest_day: int | None,
    **spec: Any,
) -> Iterator[tuple[pd.DataFrame, FeatureMatrixReport]]:
    """`build_feature_matrix` one calendar year at a time, oldest first: yields (that
    year's matrix, its report) for each year in `years`. `read_blocks(first_day, last_day)`
    returns the blocks' rows of those days (e.g. `OfflineFeatureStore.read(..., start=,
    end=)` per block); `widest_day` is the largest number of rows of the first block on one
    day over ALL the years (`widest_day_of`); `spec` holds build_feature_matrix's other
    keyword arguments.

    Every statistic of the matrix is computed from one day's cross-section, and a row's
    completeness and quality from that row and its day, so a year's part equals that year's
    rows of a build over the whole history, and the parts in order are that whole matrix,
    bit for bit (tested) - given `widest_day` (without it, None, each year is laid out as
    wide as its own widest day, and a z-score can differ from the whole build's in its last
    bit). The point is memory: one year of blocks and matrix at a time instead of all blocks
    plus the whole matrix (2.8 GB at 500 symbols x 10 years; the feature-matrix step stages
    each part to disk with `OfflineFeatureStore.write_parts` before it asks for the next).
    `FeatureMatrixReport.combine` merges the reports. A year whose blocks have no row
    yields an empty part."""
    for year in sorted(set(int(y) for y in years)):
        first, last = date(year, 1, 1), date(year, 12, 31)
        blocks = read_blocks(first, last)
        matrix, report = build_feature_matrix(blocks, sectors, panel_width=widest_day, **spec)
        del blocks
        if len(matrix):
            days = day_numbers(matrix["trade_date"])
            lo, hi = day_number(first), day_number(last)
            if int(days.min()) < lo or int(days.max()) > hi:
                outside = matrix["trade_date"].iloc[int(np.argmax((days < lo) | (days > hi)))]
                raise ValueError(f"read_blocks({first}, {last}) returned rows of other days, e.g. {outside!r}")
        yield matrix, report
        del matrix


def widest_day_of(trade_dates: pd.Series | np.ndarray) -> int | None:
    """The largest number of rows on one calendar day (None when there is no row): the
    `widest_day` of `feature_matrix_by_year`, from the first block's trade_date column."""
    days = day_numbers(trade_dates)
    days = days[days != MISSING_DAY]
    if not len(days):
        return None
    return int(np.unique(days, return_counts=True)[1].max())
