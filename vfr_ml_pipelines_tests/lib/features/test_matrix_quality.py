"""The gate on the stored feature matrix (`lib/features/matrix_quality.py`) on a small
store and the real PostgreSQL: each reason to fail is seen, and a sound matrix passes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.matrix_quality import MIN_LATEST_COMPLETENESS, feature_matrix_quality
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.features.online_store import write_latest

DAYS = [date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 2)]  # two stored years
SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture
def engine(make_engine):
    return make_engine("matrix_quality")


def _matrix(rsi: float = 55.0) -> pd.DataFrame:
    frame = pd.DataFrame([(s, d) for d in DAYS for s in SYMBOLS], columns=["symbol", "trade_date"])
    frame["rsi_14"] = rsi
    frame["roc_5"] = np.linspace(-0.1, 0.1, len(frame))
    return frame


def _store_prices_up_to(engine, last: date) -> None:
    bars = pd.DataFrame({"symbol": "AAA", "trade_date": [last], "open": 10.0, "high": 10.0, "low": 10.0,
                         "close": 10.0, "adj_close": 10.0, "volume": 100, "dividend": 0.0, "split_ratio": 1.0,
                         "source": "test"})
    bars.to_sql("raw_prices", engine, schema="vfr_ml", if_exists="append", index=False)


def _publish(engine, store: OfflineFeatureStore, matrix: pd.DataFrame, completeness: float) -> None:
    store.write(catalog.MATRIX_VERSION, matrix, lineage={})
    latest = matrix[matrix["trade_date"] == matrix["trade_date"].max()]
    with engine.begin() as conn:
        write_latest(conn, catalog.MATRIX_VERSION, latest, completeness, completeness)


def test_a_fresh_complete_matrix_in_range_passes(engine, tmp_path):
    store = OfflineFeatureStore(tmp_path)
    _store_prices_up_to(engine, DAYS[-1])
    _publish(engine, store, _matrix(), completeness=0.9)
    quality = feature_matrix_quality(engine, store)
    assert quality.passed
    assert (quality.infinite_values, quality.duplicate_rows, quality.out_of_range) == (0, 0, {})
    assert quality.latest_day == quality.latest_price_day == DAYS[-1]
    assert quality.latest_mean_completeness == pytest.approx(0.9)
    assert quality.as_metadata()["latest_day"] == "2025-01-02"


def test_out_of_range_stale_or_incomplete_matrices_fail(engine, tmp_path):
    store = OfflineFeatureStore(tmp_path)
    _store_prices_up_to(engine, DAYS[-1])
    _publish(engine, store, _matrix(rsi=140.0), completeness=0.9)
    quality = feature_matrix_quality(engine, store)
    assert not quality.passed and quality.out_of_range == {"rsi_14": len(DAYS) * len(SYMBOLS)}

    _publish(engine, store, _matrix(), completeness=MIN_LATEST_COMPLETENESS / 2)
    quality = feature_matrix_quality(engine, store)
    assert not quality.passed and quality.out_of_range == {}
    assert quality.latest_mean_completeness < quality.min_completeness

    _publish(engine, store, _matrix(), completeness=0.9)
    _store_prices_up_to(engine, date(2025, 1, 3))  # prices of a session the matrix does not have
    quality = feature_matrix_quality(engine, store)
    assert not quality.passed and quality.latest_day < quality.latest_price_day
