"""Reading features back from the warehouse as (symbol, trade_date) x feature frames."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features.technical import to_wide
from vfr_ml_pipelines.lib.warehouse import read_frame


def read_feature_matrix(engine: Engine, feature_set: str, feature_names: Sequence[str]) -> pd.DataFrame:
    long = read_frame(
        engine,
        "SELECT symbol, trade_date, feature_name, value FROM vfr_ml.feature_values "
        "WHERE feature_set = :fs AND feature_name = ANY(:names)",
        {"fs": feature_set, "names": list(feature_names)},
    )
    return to_wide(long, tuple(feature_names))


def latest_trading_day(engine: Engine, feature_set: str, as_of: date | None = None) -> date:
    frame = read_frame(
        engine,
        "SELECT max(trade_date) AS day FROM vfr_ml.feature_values WHERE feature_set = :fs "
        "AND (CAST(:as_of AS date) IS NULL OR trade_date <= CAST(:as_of AS date))",
        {"fs": feature_set, "as_of": as_of},
    )
    day = frame["day"].iloc[0]
    if day is None or pd.isna(day):
        raise LookupError(f"no features of set {feature_set!r} stored{f' up to {as_of}' if as_of else ''}")
    return day


def features_on(engine: Engine, feature_set: str, feature_names: Sequence[str], day: date) -> pd.DataFrame:
    """One row per universe symbol with features on `day` (NaN where not computable)."""
    long = read_frame(
        engine,
        "SELECT f.symbol, f.trade_date, f.feature_name, f.value FROM vfr_ml.feature_values f "
        "JOIN vfr_ml.universe_membership m ON m.symbol = f.symbol AND m.trade_date = f.trade_date "
        "WHERE f.feature_set = :fs AND f.trade_date = :day AND f.feature_name = ANY(:names)",
        {"fs": feature_set, "day": day, "names": list(feature_names)},
    )
    return to_wide(long, tuple(feature_names))
