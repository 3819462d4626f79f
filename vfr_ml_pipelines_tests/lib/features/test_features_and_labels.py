"""Technical features equal TA-Lib's output per symbol; labels are hand-checkable."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.labels import HORIZON_DAYS, compute_all_labels, rank_label
from vfr_ml_pipelines.lib.features.technical import compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_prices


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_prices(SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2023, 6, 1), n_symbols=6))


def test_no_look_ahead_changing_the_future_leaves_the_past_unchanged(prices):
    cutoff = sorted(prices["trade_date"].unique())[200]
    shocked = prices.copy()
    future = shocked["trade_date"] > cutoff
    for col in ("open", "high", "low", "close", "adj_close"):
        shocked.loc[future, col] *= 1.5
    shocked.loc[future, "volume"] *= 3
    a = compute_technical_features(prices)
    b = compute_technical_features(shocked)
    past = a["trade_date"] <= cutoff
    pd.testing.assert_frame_equal(a[past].reset_index(drop=True), b[past].reset_index(drop=True))


def test_labels_forward_return_and_known_date():
    frame = pd.DataFrame(
        {"symbol": ["A"] * 7 + ["B"] * 7,
         "trade_date": list(pd.bdate_range("2024-01-01", periods=7).date) * 2,
         "adj_close": [10, 11, 12, 13, 14, 15, 16, 20, 20, 20, 20, 20, 22, 20]}
    )
    labels = compute_labels(frame, "1w")
    a = labels[labels["symbol"] == "A"].reset_index(drop=True)
    assert len(a) == 2  # 7 days, horizon 5: two labelled days
    assert a.loc[0, "forward_return"] == pytest.approx(15 / 10 - 1)
    assert a.loc[0, "known_date"] == date(2024, 1, 8)
    b0 = labels[(labels["symbol"] == "B")].iloc[0]
    assert b0["forward_return"] == pytest.approx(0.1)
    assert b0["excess_return"] == pytest.approx(0.1 - (0.5 + 0.1) / 2)
    assert (labels["known_date"] > labels["trade_date"]).all()
    with pytest.raises(ValueError, match="unknown horizon"):
        compute_labels(frame, "2w")


def test_synthetic_history_is_stable_when_the_market_moves_on():
    short = generate_prices(SyntheticMarketConfig(as_of=date(2024, 3, 29), start=date(2023, 6, 1), n_symbols=4, recent_listings=0))
    long = generate_prices(SyntheticMarketConfig(as_of=date(2024, 6, 28), start=date(2023, 6, 1), n_symbols=4, recent_listings=0))
    merged = short.merge(long, on=["symbol", "trade_date"], suffixes=("_s", "_l"))
    assert len(merged) == len(short)
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(merged[f"{col}_s"], merged[f"{col}_l"])
    assert (long["low"] <= long[["open", "close"]].min(axis=1)).all()
    assert (long["high"] >= long[["open", "close"]].max(axis=1)).all()


def _labels_with_groupby(prices: pd.DataFrame, horizon: str) -> pd.DataFrame:
    """The original groupby.shift implementation, kept as the reference."""
    h = HORIZON_DAYS[horizon]
    ordered = prices.sort_values(["symbol", "trade_date"], kind="stable")
    grouped = ordered.groupby("symbol", sort=False)
    frame = ordered[["symbol", "trade_date"]].copy()
    frame["forward_return"] = grouped["adj_close"].shift(-h) / ordered["adj_close"] - 1.0
    frame["known_date"] = grouped["trade_date"].shift(-h)
    frame = frame.dropna(subset=["forward_return", "known_date"])
    frame["excess_return"] = frame["forward_return"] - frame.groupby("trade_date")["forward_return"].transform("mean")
    frame.insert(0, "horizon", horizon)
    return frame[["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date"]].reset_index(drop=True)


def test_vectorised_labels_equal_the_groupby_reference(prices):
    ragged = prices.drop(index=prices.sample(frac=0.05, random_state=1).index)  # gaps per symbol
    ragged = ragged.sample(frac=1.0, random_state=2)  # unsorted input
    ragged.loc[ragged.sample(n=3, random_state=3).index, "adj_close"] = np.nan
    for horizon in HORIZON_DAYS:
        ours = compute_labels(ragged, horizon)
        ref = _labels_with_groupby(ragged, horizon)
        assert list(ours.columns) == list(ref.columns)
        pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=1e-12, atol=1e-15, check_dtype=False)


def test_compute_all_labels_concatenates_the_horizons(prices):
    every = compute_all_labels(prices)
    assert list(every.columns) == ["horizon", "trade_date", "symbol", "forward_return", "excess_return", "known_date", "rank_return"]
    assert list(dict.fromkeys(every["horizon"])) == ["1d", "1w", "1m"]
    for horizon in ("1d", "1w", "1m"):
        part = every[every["horizon"] == horizon].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.drop(columns="rank_return"), compute_labels(prices, horizon))
        pd.testing.assert_series_equal(part["rank_return"], rank_label(compute_labels(prices, horizon))["rank_return"])
    assert not every.duplicated(["horizon", "trade_date", "symbol"]).any()
    # a longer horizon leaves fewer labelled rows (the last h rows of each symbol)
    counts = every["horizon"].value_counts()
    assert counts["1d"] > counts["1w"] > counts["1m"]
    plain = compute_all_labels(prices, ("1w",), with_rank=False)
    assert "rank_return" not in plain.columns and set(plain["horizon"]) == {"1w"}
    with pytest.raises(ValueError, match="unknown horizon"):
        compute_all_labels(prices, ("1d", "3m"))


def test_rank_return_is_the_per_day_percentile_rank_with_ties():
    labels = pd.DataFrame({
        "horizon": ["1w"] * 8 + ["1d"] * 2,
        "trade_date": [date(2024, 1, 1)] * 4 + [date(2024, 1, 2)] * 4 + [date(2024, 1, 1)] * 2,
        "symbol": ["A", "B", "C", "D"] * 2 + ["A", "B"],
        "forward_return": [0.01, 0.03, 0.03, -0.02, 0.5, 0.1, -0.1, 0.2, 0.9, -0.9],
    })
    ranked = rank_label(labels)
    # day 1 (1w): -0.02 < 0.01 < 0.03 = 0.03 -> 1-based ranks 2, 3.5, 3.5, 1 of n=4 -> (r-1)/(n-1) - 0.5
    assert ranked["rank_return"].tolist()[:4] == pytest.approx([1 / 3 - 0.5, 2.5 / 3 - 0.5, 2.5 / 3 - 0.5, -0.5])
    # day 2 (1w): -0.1 < 0.1 < 0.2 < 0.5
    assert ranked["rank_return"].tolist()[4:8] == pytest.approx([0.5, 1 / 3 - 0.5, -0.5, 2 / 3 - 0.5])
    # each horizon is ranked on its own
    assert ranked["rank_return"].tolist()[8:] == [0.5, -0.5]
    assert "rank_return" not in labels.columns  # the input is not modified


def test_rank_return_on_computed_labels_is_bounded_and_centred(prices):
    ranked = rank_label(compute_labels(prices, "1w"))
    assert ranked["rank_return"].between(-0.5, 0.5).all()
    per_day = ranked.groupby("trade_date")["rank_return"]
    np.testing.assert_allclose(per_day.mean(), 0.0, atol=1e-12)  # average ranks sum to the middle
    np.testing.assert_allclose(per_day.max(), 0.5)
    # the order within a day is the order of forward_return
    day = ranked[ranked["trade_date"] == ranked["trade_date"].iloc[0]]
    assert day.sort_values("forward_return")["rank_return"].is_monotonic_increasing


def test_labels_and_ranks_across_1970():
    days = [date(1969, 12, 30), date(1969, 12, 31), date(1970, 1, 2)]
    frame = pd.DataFrame({"symbol": ["A"] * 3 + ["B"] * 3, "trade_date": days * 2,
                          "adj_close": [10.0, 11.0, 12.0, 10.0, 9.0, 9.0]})
    labels = compute_all_labels(frame, ("1d",))
    assert labels["trade_date"].tolist() == [days[0], days[1], days[0], days[1]]
    assert labels["known_date"].tolist() == [days[1], days[2], days[1], days[2]]
    assert labels["rank_return"].tolist() == [0.5, 0.5, -0.5, -0.5]


# ------------------------------------------------------------------ the assets: one price snapshot per run

def test_one_adjusted_price_snapshot_feeds_the_blocks_and_the_labels(make_database, tmp_path):
    """`adjusted_prices` reads vfr_ml.raw_prices once and snapshots it; the technical block
    and the labels then compute from the snapshot exactly what they computed from
    PostgreSQL before, without reading the price table again; a second run gives the same."""
    import dagster as dg
    from sqlalchemy import text

    from vfr_ml_pipelines.defs.features import assets as feature_assets
    from vfr_ml_pipelines.defs.market_data import assets as market_data_assets
    from vfr_ml_pipelines.defs.resources import FeatureStoreResource, SyntheticMarketDataResource, WarehouseResource
    from vfr_ml_pipelines.defs.pipeline.runs import range_tags
    from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
    from vfr_ml_pipelines.lib.features.online_store import read_feature_set
    from vfr_ml_pipelines.lib.features.price_snapshot import price_snapshot_info, read_price_snapshot
    from vfr_ml_pipelines.lib.features.store import read_raw_prices
    from vfr_ml_pipelines.lib.features.technical import FEATURE_SET_VERSION
    from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
    from vfr_ml_pipelines.lib.warehouse import create_warehouse_engine, read_frame

    url = make_database("price_snapshot")
    store_root = tmp_path / "feature_store"
    resources = {
        "warehouse": WarehouseResource(database_url=url),
        "feature_store": FeatureStoreResource(root=str(store_root)),
        "market_data": SyntheticMarketDataResource(n_symbols=6, history_start="2025-01-02", as_of="2025-08-29"),
    }
    assets = dg.load_assets_from_modules([market_data_assets, feature_assets])
    tags = range_tags("2025-01-02", "2025-08-29")
    market = ["universe", "raw_prices", "raw_fundamentals", "raw_news"]

    def run(*names: str) -> None:
        assert dg.materialize(assets, resources=resources, tags=tags, selection=list(names)).success

    run(*market, "adjusted_prices", "technical_features", "labels")
    engine = create_warehouse_engine(url)
    try:
        from_postgres = adjust_prices(read_raw_prices(engine))
        snapshot = read_price_snapshot(store_root)
        pd.testing.assert_frame_equal(snapshot, from_postgres, check_exact=True)
        assert snapshot["symbol"].nunique() == 6

        def stored_block() -> pd.DataFrame:
            return OfflineFeatureStore(store_root).read(FEATURE_SET_VERSION)

        def stored_labels() -> pd.DataFrame:
            return read_frame(engine, "SELECT horizon, trade_date, symbol, forward_return, excess_return, known_date "
                                      "FROM vfr_ml.labels ORDER BY horizon, trade_date, symbol")

        expected = compute_technical_features(from_postgres).sort_values(["trade_date", "symbol"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(stored_block(), expected[list(stored_block().columns)], check_exact=True)
        labels = compute_all_labels(from_postgres, with_rank=False)
        labels = labels.sort_values(["horizon", "trade_date", "symbol"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(stored_labels(), labels, check_exact=True, check_dtype=False)
        info = price_snapshot_info(store_root)
        lineage = read_feature_set(engine, FEATURE_SET_VERSION)["lineage"]
        assert lineage["prices_snapshot_written_at"] == info.written_at
        assert lineage["input_rows"] == info.rows == len(from_postgres)

        # the block and the labels no longer read the price table: empty it, and they
        # still compute the same from the snapshot
        block_before, labels_before = stored_block(), stored_labels()
        with engine.begin() as conn:
            saved = read_frame(conn, "SELECT * FROM vfr_ml.raw_prices")
            conn.execute(text("DELETE FROM vfr_ml.raw_prices"))
        run("technical_features", "labels")
        pd.testing.assert_frame_equal(stored_block(), block_before, check_exact=True)
        pd.testing.assert_frame_equal(stored_labels(), labels_before, check_exact=True)
        assert price_snapshot_info(store_root) == info  # nothing rewrote the snapshot

        # an empty price table is an error, not an empty snapshot; the last snapshot stays
        with pytest.raises(ValueError, match="vfr_ml.raw_prices is empty"):
            run("adjusted_prices")
        assert price_snapshot_info(store_root) == info
        # the same table gives the same snapshot, and the same block
        with engine.begin() as conn:
            saved.to_sql("raw_prices", conn, schema="vfr_ml", if_exists="append", index=False)
        run("adjusted_prices", "technical_features")
        pd.testing.assert_frame_equal(read_price_snapshot(store_root), snapshot, check_exact=True)
        pd.testing.assert_frame_equal(stored_block(), block_before, check_exact=True)
    finally:
        engine.dispose()


def test_a_block_without_a_snapshot_says_which_asset_to_materialize(make_database, tmp_path):
    import dagster as dg

    from vfr_ml_pipelines.defs.features.assets import technical_features
    from vfr_ml_pipelines.defs.resources import FeatureStoreResource, WarehouseResource

    resources = {"warehouse": WarehouseResource(database_url=make_database("no_snapshot")),
                 "feature_store": FeatureStoreResource(root=str(tmp_path))}
    with pytest.raises(LookupError, match="materialize the `adjusted_prices` asset"):
        dg.materialize([technical_features], resources=resources)
