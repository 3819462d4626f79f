"""The feature run's memory-bounded pieces: the per-run adjusted-price snapshot, the offline
store's write in parts, and the feature matrix built and stored a year at a time (equal, bit
for bit, to one build over the whole history)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.features.price_snapshot import (
    price_snapshot_info,
    read_price_snapshot,
    read_price_snapshot_with_info,
    snapshot_path,
    write_price_snapshot,
)
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig
from vfr_ml_pipelines_tests.feature_market import feature_blocks, synthetic_market

CONFIG = SyntheticMarketConfig(as_of=date(2025, 3, 31), start=date(2023, 6, 1), n_symbols=24)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(CONFIG)


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ the adjusted-price snapshot

def test_snapshot_reads_back_the_frame_that_was_written(tmp_path, market):
    *_, prices = market
    assert prices["symbol"].nunique() == 24 and (prices["split_ratio"] != 1).any()  # events to carry
    info = write_price_snapshot(tmp_path, prices, lineage={"code_version": "test", "input_rows": len(prices)})
    back = read_price_snapshot(tmp_path)
    pd.testing.assert_frame_equal(back, prices, check_exact=True)  # values, dtypes, order, index
    assert isinstance(back["trade_date"].iloc[0], date) and back["volume"].dtype == np.int64
    assert info.path == snapshot_path(tmp_path) and info.path.parent.name == "_snapshots"
    assert (info.rows, info.symbols) == (len(prices), 24)
    assert (info.first_day, info.last_day) == (min(prices["trade_date"]), max(prices["trade_date"]))
    assert info.lineage == {"code_version": "test", "input_rows": len(prices)}
    assert price_snapshot_info(tmp_path) == info
    frame, same_info = read_price_snapshot_with_info(tmp_path)
    pd.testing.assert_frame_equal(frame, prices, check_exact=True)
    assert same_info == info
    assert _temp_files(tmp_path) == []
    assert OfflineFeatureStore(tmp_path).feature_sets() == []  # never mistaken for a feature set


def test_a_new_snapshot_replaces_the_old_one_whole(tmp_path, market):
    *_, prices = market
    write_price_snapshot(tmp_path, prices, lineage={})
    first = price_snapshot_info(tmp_path)
    one = prices[prices["symbol"] == prices["symbol"].iloc[0]].reset_index(drop=True)
    write_price_snapshot(tmp_path, one, lineage={})
    pd.testing.assert_frame_equal(read_price_snapshot(tmp_path), one, check_exact=True)
    assert price_snapshot_info(tmp_path).written_at >= first.written_at
    assert price_snapshot_info(tmp_path).rows == len(one)


def test_the_same_prices_give_the_same_snapshot(tmp_path, market):
    *_, prices = market
    write_price_snapshot(tmp_path / "a", prices, lineage={"x": 1})
    write_price_snapshot(tmp_path / "b", prices.copy(), lineage={"x": 1})
    pd.testing.assert_frame_equal(read_price_snapshot(tmp_path / "a"), read_price_snapshot(tmp_path / "b"), check_exact=True)


def _broken(prices: pd.DataFrame, how: str) -> pd.DataFrame:
    bad = prices.copy()
    if how == "duplicate":
        return pd.concat([bad.iloc[:3], bad.iloc[2:3], bad.iloc[3:]], ignore_index=True)
    if how == "unsorted":
        return bad.iloc[::-1].reset_index(drop=True)
    if how == "missing column":
        return bad.drop(columns=["split_ratio"])
    if how == "float volume":
        return bad.assign(volume=bad["volume"].astype(float))
    if how == "timestamps":
        return bad.assign(trade_date=pd.to_datetime(bad["trade_date"]))
    if how == "nan price":
        bad.loc[5, "adj_close"] = np.nan
        return bad
    raise AssertionError(how)


@pytest.mark.parametrize("how, message", [
    ("duplicate", "duplicate"), ("unsorted", "order"), ("missing column", "split_ratio"),
    ("float volume", "volume"), ("timestamps", "trade_date"), ("nan price", "adj_close"),
])
def test_a_bad_frame_is_refused_and_the_previous_snapshot_stays(tmp_path, market, how, message):
    *_, prices = market
    write_price_snapshot(tmp_path, prices, lineage={})
    before = snapshot_path(tmp_path).stat()
    with pytest.raises(ValueError, match=message):
        write_price_snapshot(tmp_path, _broken(prices, how), lineage={})
    after = snapshot_path(tmp_path).stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert _temp_files(tmp_path) == []


def test_reading_before_any_snapshot_names_the_asset_to_materialize(tmp_path):
    with pytest.raises(LookupError, match="adjusted_prices"):
        read_price_snapshot(tmp_path)
    with pytest.raises(LookupError, match="adjusted_prices"):
        price_snapshot_info(tmp_path)


def test_an_empty_price_table_gives_an_empty_snapshot(tmp_path, market):
    *_, prices = market
    write_price_snapshot(tmp_path, prices.iloc[:0], lineage={})
    back = read_price_snapshot(tmp_path)
    assert list(back.columns) == list(prices.columns) and len(back) == 0
    assert price_snapshot_info(tmp_path).first_day is None


# ------------------------------------------------------------------ the offline store's write in parts

def _wide(years: list[int], columns: tuple[str, ...] = ("f1", "f2"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = [d.date() for y in years for d in pd.bdate_range(f"{y}-12-20", f"{y}-12-31")]
    frame = pd.DataFrame({"symbol": np.tile(["AAA", "BBB", "CCC"], len(days)),
                          "trade_date": np.repeat(np.array(days, dtype=object), 3)})
    for c in columns:
        frame[c] = rng.standard_normal(len(frame))
    frame.loc[::7, columns[0]] = np.nan
    return frame


def _year_files(store: OfflineFeatureStore, name: str) -> dict[int, tuple[int, int]]:
    files = {}
    for year in store.years(name):
        st = (store.root / name / f"year={year}" / "data.parquet").stat()
        files[year] = (st.st_ino, st.st_mtime_ns)
    return files


def test_parts_are_staged_one_by_one_and_land_together(tmp_path):
    store = OfflineFeatureStore(tmp_path)
    parts = [_wide([2021], seed=1), _wide([2022, 2023], seed=2), _wide([], seed=3)]
    seen_staged: list[list[str]] = []

    def produce():
        for k, part in enumerate(parts):
            # by the time the next part is asked for, the previous one is on disk (not in memory)
            seen_staged.append(sorted(p.parent.name for p in _temp_files(tmp_path)))
            assert store.feature_sets() == []  # nothing has landed yet
            yield part

    report = store.write_parts("parts-v1", produce(), lineage={"run": 1})
    assert seen_staged == [[], ["year=2021"], ["year=2021", "year=2022", "year=2023"]]
    whole = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(store.read("parts-v1"), whole, check_exact=True)
    assert report.years == (2021, 2022, 2023) and report.rows == len(whole) and report.columns == ("f1", "f2")
    assert store.years("parts-v1") == [2021, 2022, 2023]
    assert store.manifest("parts-v1")["rows"] == len(whole)
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("second, message", [
    (_wide([2021], seed=9), "year 2021 is in two parts"),
    (_wide([2022], columns=("f1", "f3")), "other feature columns"),
    (_wide([2022], columns=("f2", "f1")), "other order"),
])
def test_a_bad_part_writes_nothing(tmp_path, second, message):
    store = OfflineFeatureStore(tmp_path)
    store.write("parts-v1", _wide([2021, 2022]), lineage={})
    before = _year_files(store, "parts-v1")
    with pytest.raises(ValueError, match=message):
        store.write_parts("parts-v1", iter([_wide([2021], seed=5), second]), lineage={})
    assert _year_files(store, "parts-v1") == before
    pd.testing.assert_frame_equal(store.read("parts-v1"), _wide([2021, 2022]), check_exact=True)
    assert _temp_files(tmp_path) == []


def test_a_producer_that_fails_midway_leaves_the_previous_years(tmp_path):
    store = OfflineFeatureStore(tmp_path)
    store.write("parts-v1", _wide([2021, 2022]), lineage={})
    before = _year_files(store, "parts-v1")

    def produce():
        yield _wide([2021], seed=7)
        raise RuntimeError("the build of 2022 failed")

    with pytest.raises(RuntimeError, match="2022 failed"):
        store.write_parts("parts-v1", produce(), lineage={})
    assert _year_files(store, "parts-v1") == before
    assert _temp_files(tmp_path) == []


# ------------------------------------------------------------------ the feature matrix, stored a year at a time

def test_stored_matrix_equals_one_build_over_the_whole_history(tmp_path, market):
    from vfr_ml_pipelines.lib.features import catalog, technical
    from vfr_ml_pipelines.lib.features.feature_run import store_feature_matrix
    from vfr_ml_pipelines.lib.features.matrix import build_feature_matrix

    universe = market.universe
    blocks = feature_blocks(market)
    per_day = blocks[technical.FEATURE_SET_VERSION].groupby("trade_date").size()
    assert per_day.min() < per_day.max()  # a listing during the history: days of different width
    store = OfflineFeatureStore(tmp_path)
    for version, frame in blocks.items():
        store.write(version, frame, lineage={})
    sectors = universe[["symbol", "sector"]]
    result = store_feature_matrix(store, sectors, lineage={"code_version": "test"})

    whole, report = build_feature_matrix(
        [store.read(v) for v in blocks], sectors, min_names_per_day=5,
        raw_columns=list(catalog.RAW_NAMES), rank_columns=list(catalog.RANK_COLUMNS),
        zscore_columns=list(catalog.ZSCORE_COLUMNS), neutral_columns=list(catalog.NEUTRAL_COLUMNS),
    )
    stored = store.read(catalog.MATRIX_VERSION)
    pd.testing.assert_frame_equal(stored, whole, check_exact=True)
    assert result.report == report
    assert result.written.years == (2023, 2024, 2025) and result.written.rows == len(whole)
    last = whole[whole["trade_date"] == whole["trade_date"].max()].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.latest, last, check_exact=True)
    assert store.manifest(catalog.MATRIX_VERSION)["lineage"] == {"code_version": "test"}
    assert result.read_seconds > 0 and result.build_seconds > 0
    # a second run over the same blocks stores the same matrix
    store_feature_matrix(store, sectors, lineage={"code_version": "test"})
    pd.testing.assert_frame_equal(store.read(catalog.MATRIX_VERSION), whole, check_exact=True)
    assert os.listdir(tmp_path / catalog.MATRIX_VERSION) and _temp_files(tmp_path) == []


def test_price_only_matrix_has_no_sourceless_columns_and_is_complete(tmp_path, market):
    """Without fundamentals and news the matrix holds the technical block only: no column
    of NaN or constant 0 from a block with no source, and completeness is measured over
    what has a source."""
    from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
    from vfr_ml_pipelines.lib.features.feature_run import store_feature_matrix

    universe = market.universe
    store = OfflineFeatureStore(tmp_path)
    for version, frame in feature_blocks(market, price_only=True).items():
        store.write(version, frame, lineage={})

    columns = catalog.matrix_columns({"prices"})
    # the technical block, and the one fundamental feature computed from prices alone
    assert columns.blocks == ("technical", "fundamental")
    result = store_feature_matrix(store, universe[["symbol", "sector"]], lineage={}, columns=columns)
    matrix = store.read(catalog.MATRIX_VERSION)
    features = [c for c in matrix.columns if c not in ("symbol", "trade_date", "completeness", "quality_score")]
    priced = set(technical.FEATURE_NAMES) | {"trailing_dividend_yield_252"}
    assert priced <= set(features)
    assert not set(features) & ((set(fundamental.FEATURE_NAMES) | set(sentiment.FEATURE_NAMES)) - priced)
    assert set(catalog.raw_names_in(matrix.columns)) == priced
    assert {s.source for s in catalog.specs_in(matrix.columns)} == {"prices"}
    # the latest session's vectors are complete (warm-up is long past)
    assert result.latest["completeness"].mean() > 0.95
    with pytest.raises(ValueError, match="prices"):
        catalog.matrix_columns({"fundamentals"})
    full = catalog.matrix_columns()
    assert full.raw == catalog.RAW_NAMES and full.blocks == tuple(catalog.BLOCKS)
