"""Cross-sectional transforms: hand-computed values on small frames, no cross-day leakage,
and agreement with plain pandas groupby references on random data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.matrix import FeatureMatrixReport, build_feature_matrix
from vfr_ml_pipelines.lib.features.panels import pct_rank_by_group
from vfr_ml_pipelines.lib.features.transforms import (
    cs_rank,
    cs_zscore,
    impute_for_linear,
    sector_neutral,
    winsorize,
)

D1, D2, D3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)


def _frame(rows: list[tuple[str, date, float]], name: str = "x") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "trade_date", name])


def _values(frame: pd.DataFrame, column: str, day: date) -> list[float]:
    return frame.loc[frame["trade_date"] == day, column].tolist()


# ------------------------------------------------------------------ single transforms

def test_cs_rank_averages_ties_maps_to_half_interval_and_keeps_nan():
    frame = _frame([("A", D1, 1.0), ("B", D1, 2.0), ("C", D1, 2.0), ("D", D1, 3.0),
                    ("A", D2, 5.0), ("B", D2, np.nan), ("C", D2, 1.0),
                    ("A", D3, 7.0)])
    ranked = cs_rank(frame, ["x"])
    # day 1: 1-based ranks 1, 2.5, 2.5, 4 of n=4 -> (r-1)/(n-1) - 0.5
    assert _values(ranked, "x", D1) == [-0.5, 0.0, 0.0, 0.5]
    d2 = _values(ranked, "x", D2)
    assert d2[0] == 0.5 and np.isnan(d2[1]) and d2[2] == -0.5
    assert _values(ranked, "x", D3) == [0.0]  # a lone value sits in the middle
    assert ranked["symbol"].tolist() == frame["symbol"].tolist()  # rows stay where they were
    np.testing.assert_array_equal(pct_rank_by_group(np.array([3.0, 1.0, 2.0, 9.0]), np.array([0, 0, 0, -1])),
                                  [0.5, -0.5, 0.0, np.nan])


def test_cs_zscore_uses_each_days_mean_and_sample_std():
    frame = _frame([("A", D1, 1.0), ("B", D1, 2.0), ("C", D1, 3.0), ("D", D1, np.nan),
                    ("A", D2, 4.0), ("B", D2, 4.0),  # no dispersion -> 0.0
                    ("A", D3, 0.1), ("B", D3, 0.1), ("C", D3, 0.1),  # equal values with a rounding mean
                    ])
    z = cs_zscore(frame, ["x"])
    d1 = _values(z, "x", D1)
    assert d1[:3] == pytest.approx([-1.0, 0.0, 1.0])  # mean 2, std (ddof=1) 1
    assert np.isnan(d1[3])
    assert _values(z, "x", D2) == [0.0, 0.0]
    assert _values(z, "x", D3) == [0.0, 0.0, 0.0]
    frame2 = _frame([("A", D1, 2.0), ("B", D1, 4.0), ("C", D1, 9.0)])
    expected = (np.array([2.0, 4.0, 9.0]) - 5.0) / np.std([2.0, 4.0, 9.0], ddof=1)
    np.testing.assert_allclose(cs_zscore(frame2, ["x"])["x"], expected)


def test_winsorize_uses_the_days_own_quantiles_not_the_whole_history():
    rows = [(f"S{i}", D1, float(i)) for i in range(11)] + [(f"S{i}", D2, 100.0 + 10 * i) for i in range(11)]
    frame = _frame(rows)
    out = winsorize(frame, ["x"], lower=0.1, upper=0.9)
    # day 1: values 0..10, 10% / 90% quantiles (linear) are 1 and 9
    assert _values(out, "x", D1) == [1.0, 1.0, 2, 3, 4, 5, 6, 7, 8, 9.0, 9.0]
    # day 2: values 100..200, quantiles 110 and 190
    assert _values(out, "x", D2) == [110.0, 110.0, 120, 130, 140, 150, 160, 170, 180, 190.0, 190.0]
    # with quantiles of the whole history day 1 would be clipped by day 2's values
    lo, hi = np.quantile(frame["x"], [0.1, 0.9])
    whole = frame["x"].clip(lo, hi)
    assert whole[frame["trade_date"] == D1].tolist() != _values(out, "x", D1)
    assert whole[frame["trade_date"] == D1].min() > 1.0  # day 2 would have raised day 1's floor


def test_sector_neutral_demeans_within_day_and_sector():
    frame = pd.DataFrame({
        "symbol": ["A", "B", "C", "D", "E", "A", "B", "C"],
        "trade_date": [D1] * 5 + [D2] * 3,
        "sector": ["tech", "tech", "energy", "energy", None, "tech", "tech", "energy"],
        "x": [1.0, 3.0, 10.0, 20.0, 5.0, 2.0, np.nan, 7.0],
    })
    out = sector_neutral(frame, ["x"])
    assert out["x"].tolist()[:4] == [-1.0, 1.0, -5.0, 5.0]
    assert np.isnan(out["x"].iloc[4])  # no sector, cannot be neutralized
    assert out["x"].iloc[5] == 0.0 and np.isnan(out["x"].iloc[6]) and out["x"].iloc[7] == 0.0
    sums = out.dropna(subset=["x"]).groupby(["trade_date", "sector"])["x"].sum()
    np.testing.assert_allclose(sums, 0.0, atol=1e-12)


def test_impute_for_linear_fills_the_days_median_and_flags_it():
    frame = pd.DataFrame({
        "symbol": ["A", "B", "C", "D", "A", "B", "A", "B"],
        "trade_date": [D1] * 4 + [D2] * 2 + [D3] * 2,
        "x": [1.0, 4.0, np.nan, 10.0, np.nan, 7.0, np.nan, np.nan],
        "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    })
    out = impute_for_linear(frame, ["x", "y"])
    assert out["x"].tolist()[:6] == [1.0, 4.0, 4.0, 10.0, 7.0, 7.0]  # medians of D1 (1, 4, 10) and D2 (7)
    assert out["x"].iloc[6:].isna().all()  # a day without any value is not invented
    assert out["x_missing"].tolist() == [0, 0, 1, 0, 1, 0, 1, 1]
    assert out["y"].tolist() == frame["y"].tolist() and (out["y_missing"] == 0).all()
    assert frame["x"].isna().sum() == 4  # the input is not modified


# ------------------------------------------------------------------ references on random data

def _random_panel(seed: int = 0, days: int = 6, symbols: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=days).date
    frame = pd.DataFrame({
        "symbol": np.repeat([f"S{i:02d}" for i in range(symbols)], days),
        "trade_date": np.tile(dates, symbols),
        "a": rng.standard_t(3, days * symbols),
        "b": rng.integers(0, 5, days * symbols).astype(float),  # many ties
    })
    frame.loc[rng.random(len(frame)) < 0.15, ["a"]] = np.nan
    frame.loc[rng.random(len(frame)) < 0.15, ["b"]] = np.nan
    return frame.sample(frac=0.9, random_state=seed).reset_index(drop=True)  # unsorted, ragged days


def test_transforms_agree_with_pandas_groupby_references():
    frame = _random_panel()
    g = frame.groupby("trade_date")
    for col in ("a", "b"):
        n = g[col].transform("count")
        ref_rank = (g[col].rank(method="average") - 1) / (n - 1) - 0.5
        np.testing.assert_allclose(cs_rank(frame, [col])[col], ref_rank, atol=1e-12)
        ref_z = (frame[col] - g[col].transform("mean")) / g[col].transform("std")
        np.testing.assert_allclose(cs_zscore(frame, [col])[col], ref_z, atol=1e-12)
        lo, hi = g[col].transform(lambda s: s.quantile(0.05)), g[col].transform(lambda s: s.quantile(0.95))
        np.testing.assert_allclose(winsorize(frame, [col], 0.05, 0.95)[col], frame[col].clip(lo, hi), atol=1e-12)


def test_changing_a_later_day_never_changes_an_earlier_days_values():
    frame = _random_panel(seed=1)
    days = sorted(frame["trade_date"].unique())
    cutoff = days[2]
    shocked = frame.copy()
    later = shocked["trade_date"] > cutoff
    shocked.loc[later, "a"] = shocked.loc[later, "a"] * 100 + 7
    shocked.loc[later, "b"] = np.nan
    extra = pd.DataFrame({"symbol": [f"N{i}" for i in range(5)], "trade_date": days[3], "a": 1e6, "b": -1e6})
    shocked = pd.concat([shocked, extra], ignore_index=True)  # names that only exist later
    sectors = pd.DataFrame({"symbol": sorted(set(shocked["symbol"]))})
    sectors["sector"] = [f"s{i % 3}" for i in range(len(sectors))]
    spec = dict(raw_columns=["a", "b"], rank_columns=["a", "b"], zscore_columns=["a", "b"], neutral_columns=["a"])
    a, _ = build_feature_matrix([frame], sectors, **spec)
    b, _ = build_feature_matrix([shocked], sectors, **spec)
    past_a = a[a["trade_date"] <= cutoff].reset_index(drop=True)
    past_b = b[b["trade_date"] <= cutoff].reset_index(drop=True)
    pd.testing.assert_frame_equal(past_a, past_b)
    assert not a[a["trade_date"] > cutoff]["a_z"].equals(b[b["trade_date"] > cutoff]["a_z"])
    for fn in (lambda f: cs_rank(f, ["a", "b"]), lambda f: cs_zscore(f, ["a", "b"]),
               lambda f: winsorize(f, ["a", "b"]), lambda f: impute_for_linear(f, ["a", "b"]),
               lambda f: sector_neutral(f.merge(sectors, on="symbol"), ["a"])):
        x, y = fn(frame), fn(shocked)
        x = x[x["trade_date"] <= cutoff].sort_values(["trade_date", "symbol"]).reset_index(drop=True)
        y = y[y["trade_date"] <= cutoff].sort_values(["trade_date", "symbol"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y)


# ------------------------------------------------------------------ the feature matrix

def _blocks():
    tech = pd.DataFrame({
        "symbol": ["A", "B", "C", "D", "E", "F", "A", "B", "C"],
        "trade_date": [D1] * 6 + [D2] * 3,
        "t1": [1.0, 2.0, 3.0, 4.0, 5.0, 100.0, 1.0, 2.0, 3.0],
        "t2": [np.nan, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 6.0, 7.0],
    })
    fund = pd.DataFrame({  # no row for (F, D1) nor D2; an extra symbol not in tech
        "symbol": ["E", "D", "C", "B", "A", "Z"],
        "trade_date": [D1] * 6,
        "f1": [50.0, 40.0, 30.0, 20.0, 10.0, 999.0],
    })
    sectors = pd.DataFrame({"symbol": ["A", "B", "C", "D", "E", "F"], "sector": ["x", "x", "x", "y", "y", "y"]})
    return tech, fund, sectors


def test_build_feature_matrix_joins_transforms_and_scores_quality():
    tech, fund, sectors = _blocks()
    matrix, report = build_feature_matrix(
        [tech, fund], sectors, raw_columns=["t1", "t2", "f1"], rank_columns=["t2"],
        zscore_columns=["t1", "f1"], neutral_columns=["t1"], min_names_per_day=5, winsor_limits=(0.0, 1.0))
    assert isinstance(report, FeatureMatrixReport)
    assert list(matrix.columns) == ["symbol", "trade_date", "t1", "t2", "f1", "t1_z", "f1_z", "t2_rank", "t1_sn",
                                    "completeness", "quality_score"]
    # the first block's rows, sorted by (trade_date, symbol); Z (fundamentals only) is not a row
    assert list(zip(matrix["symbol"], matrix["trade_date"])) == [(s, D1) for s in "ABCDEF"] + [(s, D2) for s in "ABC"]
    d1 = matrix[matrix["trade_date"] == D1].set_index("symbol")
    assert d1["f1"].tolist()[:5] == [10.0, 20.0, 30.0, 40.0, 50.0] and np.isnan(d1.loc["F", "f1"])
    t1 = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])
    np.testing.assert_allclose(d1["t1_z"], (t1 - t1.mean()) / t1.std(ddof=1))
    f1 = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    np.testing.assert_allclose(d1["f1_z"].iloc[:5], (f1 - f1.mean()) / f1.std(ddof=1))
    # t2 on day 1: B, C tie (1-based rank 1.5), D, E tie (3.5), F 5 of n=5
    assert d1["t2_rank"].iloc[1:].tolist() == [-0.375, -0.375, 0.125, 0.125, 0.5] and np.isnan(d1.loc["A", "t2_rank"])
    z = d1["t1_z"].to_numpy()
    np.testing.assert_allclose(d1["t1_sn"], z - np.repeat([z[:3].mean(), z[3:].mean()], 3))
    # completeness: share of the 3 source features present
    assert d1["completeness"].tolist() == pytest.approx([2 / 3, 1, 1, 1, 1, 2 / 3])
    # day 2 has 3 names (< 5): transforms NaN, raw values kept, quality 0
    d2 = matrix[matrix["trade_date"] == D2]
    assert d2[["t1_z", "f1_z", "t2_rank", "t1_sn"]].isna().all().all()
    assert d2["t1"].tolist() == [1.0, 2.0, 3.0] and (d2["quality_score"] == 0.0).all()
    assert d2["completeness"].tolist() == pytest.approx([2 / 3] * 3)
    assert report.dropped_days == (D2,) and report.days == 2 and report.rows == 9
    # winsor_limits (0, 1) clip nothing: quality = completeness on day 1
    np.testing.assert_allclose(d1["quality_score"], d1["completeness"])
    assert report.missing_share["f1"] == pytest.approx(4 / 9)
    assert report.missing_share["t1_z"] == pytest.approx(3 / 9)
    assert report.columns == tuple(matrix.columns[2:])
    assert report.as_metadata()["dropped_days"] == ["2024-01-03"] and report.days_dropped == 1


def test_quality_score_penalizes_clipped_extremes_and_per_column_min_names():
    tech, fund, sectors = _blocks()
    matrix, report = build_feature_matrix(
        [tech, fund], sectors, raw_columns=[], rank_columns=["f1"], zscore_columns=["t1"], neutral_columns=[],
        min_names_per_day=3, winsor_limits=(0.2, 0.8))
    assert report.dropped_days == ()
    d1 = matrix[matrix["trade_date"] == D1].set_index("symbol")
    # t1 on day 1: 20% / 80% quantiles of 1,2,3,4,5,100 are 2 and 5 -> A and F are clipped
    clipped = {"A": 1.0, "F": 1.0}
    for sym, row in d1.iterrows():
        assert row["quality_score"] == pytest.approx(row["completeness"] * (1 - 0.5 * clipped.get(sym, 0.0)))
    w = np.array([2.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    np.testing.assert_allclose(d1["t1_z"], (w - w.mean()) / w.std(ddof=1))
    # day 2: 3 names is enough for t1, but f1 has no value at all that day
    d2 = matrix[matrix["trade_date"] == D2]
    np.testing.assert_allclose(d2["t1_z"], [-1.0, 0.0, 1.0])
    assert d2["f1_rank"].isna().all()
    m4, _ = build_feature_matrix([tech, fund], sectors, raw_columns=[], rank_columns=["t2"], zscore_columns=[],
                                 neutral_columns=[], min_names_per_day=3)
    # t2 on day 1 has 5 values -> ranked; with min 6 it would not be
    assert m4["t2_rank"].notna().sum() == 5 + 3
    m6, _ = build_feature_matrix([tech], None, raw_columns=[], rank_columns=["t2"], zscore_columns=[],
                                 neutral_columns=[], min_names_per_day=6)
    assert m6["t2_rank"].isna().all()


def test_build_feature_matrix_rejects_ambiguous_input():
    tech, fund, sectors = _blocks()
    spec = dict(raw_columns=["t1"], rank_columns=[], zscore_columns=[], neutral_columns=[])
    with pytest.raises(ValueError, match="duplicate"):
        build_feature_matrix([pd.concat([tech, tech.iloc[:1]])], sectors, **spec)
    with pytest.raises(ValueError, match="in no feature block"):
        build_feature_matrix([tech], sectors, **{**spec, "zscore_columns": ["nope"]})
    with pytest.raises(ValueError, match="block 0 and block 1"):
        build_feature_matrix([tech, tech.rename(columns={"t2": "t3"})], sectors, **spec)
    with pytest.raises(ValueError, match="sectors"):
        build_feature_matrix([tech], None, **{**spec, "neutral_columns": ["t1"]})
    with pytest.raises(ValueError, match="more than one sector"):
        build_feature_matrix([tech], pd.concat([sectors, pd.DataFrame({"symbol": ["A"], "sector": ["z"]})]),
                             **{**spec, "neutral_columns": ["t1"]})


def test_threads_do_not_change_the_result():
    frame = _random_panel(seed=2, days=30, symbols=60)
    spec = dict(raw_columns=["a", "b"], rank_columns=["a", "b"], zscore_columns=["a", "b"], neutral_columns=[])
    one, _ = build_feature_matrix([frame], None, workers=1, **spec)
    two, _ = build_feature_matrix([frame], None, workers=2, **spec)
    pd.testing.assert_frame_equal(one, two)


def test_blocks_join_on_the_calendar_day_whatever_the_date_type():
    tech, fund, sectors = _blocks()
    fund = fund.assign(trade_date=pd.to_datetime(fund["trade_date"]))  # Timestamps, not dates
    matrix, _ = build_feature_matrix([tech, fund], sectors, raw_columns=["f1"], rank_columns=[], zscore_columns=[],
                                     neutral_columns=[])
    assert matrix["f1"].tolist()[:5] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert matrix["trade_date"].tolist()[0] == D1  # the first block's values are kept


@pytest.mark.parametrize("ragged", [False, True])
def test_matrix_transforms_equal_the_single_transforms_chained(ragged):
    frame = _random_panel(seed=3, days=8, symbols=30)
    if not ragged:  # every day has every symbol: the panel is a plain reshape
        full = pd.MultiIndex.from_product([sorted(frame["symbol"].unique()), sorted(frame["trade_date"].unique())],
                                          names=["symbol", "trade_date"])
        frame = frame.set_index(["symbol", "trade_date"]).reindex(full).reset_index()
    sectors = pd.DataFrame({"symbol": sorted(frame["symbol"].unique())})
    sectors["sector"] = [f"s{i % 4}" for i in range(len(sectors))]
    matrix, _ = build_feature_matrix([frame], sectors, raw_columns=["a"], rank_columns=["a", "b"],
                                     zscore_columns=["a", "b"], neutral_columns=["b"], min_names_per_day=1)
    ref = frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True).merge(sectors, on="symbol")
    ranked = cs_rank(ref, ["a", "b"])
    zed = cs_zscore(winsorize(ref, ["a", "b"]), ["a", "b"])
    neutral = sector_neutral(zed, ["b"])
    np.testing.assert_array_equal(matrix["a"], ref["a"])
    for col in ("a", "b"):
        np.testing.assert_allclose(matrix[f"{col}_rank"], ranked[col], atol=1e-12)
        np.testing.assert_allclose(matrix[f"{col}_z"], zed[col], atol=1e-12)
    np.testing.assert_allclose(matrix["b_sn"], neutral["b"], atol=1e-12)


def test_dates_before_1970_are_days_like_any_other():
    old = [date(1969, 12, 31), date(1970, 1, 1)]
    frame = pd.DataFrame({"symbol": ["A", "B", "C"] * 2, "trade_date": [old[0]] * 3 + [old[1]] * 3,
                          "x": [1.0, 2.0, 3.0, 6.0, 5.0, 4.0]})
    assert cs_rank(frame, ["x"])["x"].tolist() == [-0.5, 0.0, 0.5, 0.5, 0.0, -0.5]
    matrix, report = build_feature_matrix([frame], None, raw_columns=[], rank_columns=["x"], zscore_columns=[],
                                          neutral_columns=[], min_names_per_day=3)
    assert matrix["x_rank"].tolist() == [-0.5, 0.0, 0.5, 0.5, 0.0, -0.5] and report.days == 2


# ------------------------------------------------------------------ the matrix a year at a time

@pytest.fixture(scope="module")
def market_blocks():
    """The three real feature blocks on a small synthetic market over three calendar years
    (recent listings make the days ragged), made awkward the way real data can be: the
    fundamental block shuffled and missing rows, an infinity, one session with only three
    names, a symbol without a sector."""
    from vfr_ml_pipelines.lib.features import catalog
    from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig
    from vfr_ml_pipelines_tests.feature_market import feature_blocks, synthetic_market

    market = synthetic_market(SyntheticMarketConfig(as_of=date(2025, 3, 31), start=date(2023, 6, 1), n_symbols=24))
    universe = market.universe
    tech, fund, sent = feature_blocks(market).values()
    thin_day = sorted(tech["trade_date"].unique())[300]
    thin = tech.index[(tech["trade_date"] == thin_day)][3:]
    tech = tech.drop(index=thin).reset_index(drop=True)
    fund = fund.sample(frac=0.97, random_state=5)  # unsorted, 3 % of rows absent
    fund.loc[fund.index[7], "book_to_market"] = np.inf
    sectors = universe[["symbol", "sector"]].iloc[1:]
    spec = dict(raw_columns=list(catalog.RAW_NAMES), rank_columns=list(catalog.RANK_COLUMNS),
                zscore_columns=list(catalog.ZSCORE_COLUMNS), neutral_columns=list(catalog.NEUTRAL_COLUMNS))
    return [tech, fund, sent], sectors, spec, thin_day


def _rows_between(frame: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    return frame[(frame["trade_date"] >= first) & (frame["trade_date"] <= last)]


def test_matrix_built_a_year_at_a_time_equals_the_whole_build(market_blocks):
    """The feature-matrix step builds and stores the matrix one year at a time; the parts,
    in order, must be exactly the matrix that build_feature_matrix gives for the whole
    history (build_feature_matrix itself is the implementation the step used before)."""
    from vfr_ml_pipelines.lib.features.matrix_years import feature_matrix_by_year, widest_day_of

    blocks, sectors, spec, thin_day = market_blocks
    whole, whole_report = build_feature_matrix(blocks, sectors, **spec)
    read_calls = []

    def read_blocks(first, last):
        read_calls.append((first, last))
        return [_rows_between(b, first, last) for b in blocks]

    years = sorted({d.year for d in blocks[0]["trade_date"]})
    assert years == [2023, 2024, 2025]
    widest = widest_day_of(blocks[0]["trade_date"])
    assert widest == blocks[0].groupby("trade_date").size().max()
    parts = list(feature_matrix_by_year(read_blocks, [2025, *years], sectors, widest_day=widest, **spec))
    assert read_calls == [(date(y, 1, 1), date(y, 12, 31)) for y in years]  # each year once, oldest first
    read_calls.clear()
    stitched = pd.concat([m for m, _ in parts], ignore_index=True)
    pd.testing.assert_frame_equal(stitched, whole, check_exact=True)
    # laid out only as wide as its own widest day, a year sums in another order: last bits differ
    narrow = pd.concat([m for m, _ in feature_matrix_by_year(read_blocks, years, sectors, widest_day=None, **spec)],
                       ignore_index=True)
    pd.testing.assert_frame_equal(narrow, whole, check_exact=False, rtol=1e-12, atol=1e-12)
    combined = FeatureMatrixReport.combine([r for _, r in parts])
    assert combined == whole_report
    assert whole_report.dropped_days == (thin_day,)  # the thin session is reported, whichever way
    # the infinity stays in the raw column (the store refuses it later) and is missing for the transforms
    assert np.isinf(whole["book_to_market"]).sum() == 1
    assert not np.isinf(whole[["book_to_market_rank", "book_to_market_sn"]].to_numpy()).any()
    assert stitched["volatility_20_z"].notna().sum() > 0.5 * len(stitched)  # the comparison compared numbers


def test_a_part_with_rows_of_other_days_is_refused(market_blocks):
    from vfr_ml_pipelines.lib.features.matrix_years import feature_matrix_by_year

    blocks, sectors, spec, _ = market_blocks
    everything = feature_matrix_by_year(lambda first, last: blocks, [2024], sectors, widest_day=None, **spec)
    with pytest.raises(ValueError, match="returned rows of other days"):
        next(everything)


def test_combined_reports_must_describe_the_same_matrix():
    a = FeatureMatrixReport(rows=4, columns=("x", "x_z"), missing_share={"x": 0.25, "x_z": 0.5}, days=2)
    b = FeatureMatrixReport(rows=6, columns=("x", "x_z"), missing_share={"x": 0.5, "x_z": 0.0}, days=3,
                            dropped_days=(D3,))
    both = FeatureMatrixReport.combine([a, b])
    assert (both.rows, both.days, both.dropped_days) == (10, 5, (D3,))
    assert both.missing_share == {"x": 4 / 10, "x_z": 2 / 10}  # 1 + 3 and 2 + 0 missing values of 10
    with pytest.raises(ValueError, match="other columns"):
        FeatureMatrixReport.combine([a, FeatureMatrixReport(rows=1, columns=("y",), missing_share={"y": 0.0}, days=1)])
    with pytest.raises(ValueError, match="at least one"):
        FeatureMatrixReport.combine([])
