"""The online feature store in PostgreSQL (vfr_ml.feature_latest): upserts, column
subsets by array position, completeness and quality, against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.features.online_store import (
    read_feature_set,
    read_latest,
    register_feature_set,
    write_latest,
)
from vfr_ml_pipelines_tests.helpers import migrated_engine

NAMES = [f"f{i:02d}" for i in range(12)]
SYMBOLS = ["AAPL", "MSFT", "NVDA", "BRK.B", "XOM"]
DAY = date(2024, 5, 3)


@pytest.fixture(scope="module")
def online_url(make_database) -> str:
    return make_database("online")


@pytest.fixture(scope="module")
def online_engine(online_url: str) -> Iterator[Engine]:
    engine = migrated_engine(online_url)
    yield engine
    engine.dispose()


@pytest.fixture
def feature_set(request: pytest.FixtureRequest) -> str:
    return f"test-{request.node.name[:40]}"


def vectors(day: date = DAY, *, seed: int = 0, symbols=SYMBOLS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((len(symbols), len(NAMES))) * 10.0 ** rng.integers(-6, 6, (len(symbols), len(NAMES)))
    values[rng.random(values.shape) < 0.2] = np.nan
    values[0, 0] = -0.0
    frame = pd.DataFrame(values, columns=NAMES)
    frame.insert(0, "trade_date", [day] * len(symbols))
    frame.insert(0, "symbol", list(symbols))
    return frame


def stored_rows(engine: Engine, feature_set: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(
            text('SELECT symbol, trade_date, names, "values", completeness, quality_score FROM vfr_ml.feature_latest '
                 "WHERE feature_set = :fs ORDER BY symbol"),
            conn, params={"fs": feature_set},
        )


def test_upsert_twice_leaves_one_row_per_symbol(online_engine: Engine, feature_set: str) -> None:
    first = vectors(seed=1)
    with online_engine.begin() as conn:
        assert write_latest(conn, feature_set, first, 0.9, 0.8) == len(SYMBOLS)
    second = vectors(seed=2)
    with online_engine.begin() as conn:
        assert write_latest(conn, feature_set, second, 0.7, 0.6) == len(SYMBOLS)

    rows = stored_rows(online_engine, feature_set)
    assert sorted(rows["symbol"]) == sorted(SYMBOLS)
    got = read_latest(online_engine, feature_set, SYMBOLS)
    np.testing.assert_array_equal(got[NAMES].to_numpy(), second[NAMES].to_numpy())  # NaN where NaN
    assert got["completeness"].tolist() == [0.7] * len(SYMBOLS)

    # the next session replaces, an older session never does
    with online_engine.begin() as conn:
        assert write_latest(conn, feature_set, vectors(date(2024, 5, 6), seed=3).iloc[:2], 1.0, 1.0) == 2
        assert write_latest(conn, feature_set, vectors(date(2024, 5, 2), seed=4), 0.1, 0.1) == 0
    rows = stored_rows(online_engine, feature_set)
    assert len(rows) == len(SYMBOLS)
    assert dict(zip(rows["symbol"], rows["trade_date"])) == {
        "AAPL": date(2024, 5, 6), "MSFT": date(2024, 5, 6), "NVDA": DAY, "BRK.B": DAY, "XOM": DAY,
    }


def test_values_round_trip_exactly_with_nulls_for_missing(online_engine: Engine, feature_set: str) -> None:
    frame = vectors(seed=5)
    write_latest(online_engine, feature_set, frame, 1.0, 1.0)
    rows = stored_rows(online_engine, feature_set).set_index("symbol")
    assert rows.loc["AAPL", "names"] == NAMES
    stored = rows.loc["AAPL", "values"]
    assert [v is None for v in stored] == list(np.isnan(frame.loc[0, NAMES].to_numpy(dtype=float)))
    got = read_latest(online_engine, feature_set, ["AAPL"])
    assert got[NAMES].to_numpy().view(np.int64).tolist() == frame.loc[[0], NAMES].to_numpy().view(np.int64).tolist()
    assert np.signbit(got.loc[0, "f00"])  # -0.0 survives


def test_column_subsets_by_position_in_requested_order(online_engine: Engine, online_url: str, feature_set: str) -> None:
    frame = vectors(seed=6)
    write_latest(online_engine, feature_set, frame, 1.0, 1.0)
    wanted_symbols = ["XOM", "ZZZZ", "AAPL", "NVDA"]  # ZZZZ has no vector
    wanted_columns = ["f07", "f02", "f11"]
    expected = frame.set_index("symbol").loc[["XOM", "AAPL", "NVDA"], wanted_columns].to_numpy()

    libpq = make_url(online_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as raw, online_engine.connect() as sa_conn:
        for handle in (online_engine, sa_conn, raw):
            got = read_latest(handle, feature_set, wanted_symbols, columns=wanted_columns)
            assert list(got.columns) == ["symbol", "trade_date", *wanted_columns, "completeness", "quality_score"]
            assert got["symbol"].tolist() == ["XOM", "AAPL", "NVDA"]
            assert got["trade_date"].tolist() == [DAY] * 3
            np.testing.assert_array_equal(got[wanted_columns].to_numpy(), expected)

    everything = read_latest(online_engine, feature_set, ["MSFT"])
    assert list(everything.columns) == ["symbol", "trade_date", *NAMES, "completeness", "quality_score"]
    with pytest.raises(KeyError, match="f99"):
        read_latest(online_engine, feature_set, SYMBOLS, columns=["f01", "f99"])
    assert read_latest(online_engine, feature_set, ["NOPE"], columns=["f01"]).empty
    assert read_latest(online_engine, "never-written-v1", SYMBOLS).empty
    assert list(read_latest(online_engine, feature_set, [], columns=["f01"]).columns) == [
        "symbol", "trade_date", "f01", "completeness", "quality_score"
    ]


def test_completeness_and_quality_are_stored(online_engine: Engine, feature_set: str) -> None:
    frame = vectors(seed=7)
    completeness = 1.0 - frame[NAMES].isna().mean(axis=1)
    frame["completeness"] = completeness
    frame["quality_score"] = np.linspace(0.2, 1.0, len(frame))
    frame.index = frame.index + 100  # a slice of a bigger matrix keeps its index
    with online_engine.begin() as conn:
        write_latest(conn, feature_set, frame, frame["completeness"], frame["quality_score"])
    rows = stored_rows(online_engine, feature_set).set_index("symbol").loc[SYMBOLS]
    np.testing.assert_array_equal(rows["completeness"].to_numpy(), completeness.to_numpy())
    np.testing.assert_array_equal(rows["quality_score"].to_numpy(), np.linspace(0.2, 1.0, len(frame)))
    assert rows["names"].iloc[0] == NAMES  # the row-quality columns are not features
    got = read_latest(online_engine, feature_set, SYMBOLS)
    np.testing.assert_array_equal(got["quality_score"].to_numpy(), np.linspace(0.2, 1.0, len(frame)))

    by_symbol = {s: 0.5 for s in SYMBOLS}
    write_latest(online_engine, feature_set, frame, pd.Series(by_symbol), by_symbol)
    assert stored_rows(online_engine, feature_set)["quality_score"].tolist() == [0.5] * len(SYMBOLS)
    write_latest(online_engine, feature_set, frame, [0.1, 0.2, 0.3, 0.4, 0.5], 0.25)
    rows = stored_rows(online_engine, feature_set).set_index("symbol").loc[SYMBOLS]
    assert rows["completeness"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_invalid_vectors_are_rejected(online_engine: Engine, feature_set: str) -> None:
    frame = vectors(seed=8)
    with pytest.raises(ValueError, match=r"'f03'.*inf.*'NVDA'"):
        write_latest(online_engine, feature_set, frame.assign(f03=[0, 0, np.inf, 0, 0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="'MSFT' twice"):
        write_latest(online_engine, feature_set, pd.concat([frame, frame.iloc[[1]]]), 1.0, 1.0)
    with pytest.raises(ValueError, match="one session"):
        write_latest(online_engine, feature_set, frame.assign(trade_date=[DAY, DAY, DAY, DAY, date(2024, 5, 2)]), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"completeness.*\[0, 1\].*'AAPL'"):
        write_latest(online_engine, feature_set, frame, [1.5, 1, 1, 1, 1], 1.0)
    with pytest.raises(ValueError, match="quality"):
        write_latest(online_engine, feature_set, frame, 1.0, np.nan)
    with pytest.raises(ValueError, match="'f04' has dtype"):
        write_latest(online_engine, feature_set, frame.assign(f04="x"), 1.0, 1.0)
    assert stored_rows(online_engine, feature_set).empty
    assert write_latest(online_engine, feature_set, frame.iloc[:0], 1.0, 1.0) == 0


def test_feature_set_registry_mirrors_the_offline_manifest(online_engine: Engine, tmp_path: Path, feature_set: str) -> None:
    store = OfflineFeatureStore(tmp_path / "store")
    history = pd.concat([vectors(d.date(), seed=i) for i, d in enumerate(pd.bdate_range("2023-12-27", "2024-01-03"))])
    store.write(feature_set, history, lineage={"code_version": "0.1.0+abc", "input_last_day": "2024-01-03"})
    manifest = store.manifest(feature_set)
    register_feature_set(online_engine, feature_set, manifest, version="v1", store_uri=str(store.root))
    row = read_feature_set(online_engine, feature_set)
    assert row is not None
    assert row["columns"] == NAMES and row["row_count"] == len(history)
    assert (row["first_day"], row["last_day"]) == (date(2023, 12, 27), date(2024, 1, 3))
    assert row["lineage"] == {"code_version": "0.1.0+abc", "input_last_day": "2024-01-03"}
    assert row["version"] == "v1" and row["store_uri"] == str(store.root)
    register_feature_set(online_engine, feature_set, {**manifest, "rows": 1})  # refresh keeps the version
    assert read_feature_set(online_engine, feature_set)["version"] == "v1"
    assert read_feature_set(online_engine, "unknown-v0") is None
