from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.monitoring import distances, drift
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, ReferenceProfile, compare, feature_drift


def _frames(rng: np.random.Generator, n_ref: int, n_cur: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(n: int, delta: float) -> pd.DataFrame:
        return pd.DataFrame({
            "normal": rng.normal(delta, 1.0, n),
            "skewed": rng.lognormal(delta, 0.8, n),
            # heavy ties: a discrete feature with few levels
            "discrete": rng.integers(0, 4, n).astype(float) + (delta > 0),
            "with_nan": np.where(rng.random(n) < 0.1, np.nan, rng.normal(delta, 2.0, n)),
        })
    return frame(n_ref, 0.0), frame(n_cur, shift)


@pytest.mark.parametrize("n_ref,n_cur", [(300, 80), (20_000, 2_000), (30_000, 12_000)])
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_and_wasserstein_equal_scipy_per_feature(n_ref: int, n_cur: int, shift: float) -> None:
    # small samples exercise scipy's exact KS path, the large ones its asymptotic one
    reference, current = _frames(np.random.default_rng(n_ref + n_cur), n_ref, n_cur, shift)
    report = feature_drift(reference, current, list(reference.columns), config=DriftConfig(exact_pvalues=True))
    table = report.table().set_index("feature")
    for name in reference.columns:
        ref = reference[name].dropna().to_numpy()
        cur = current[name].dropna().to_numpy()
        expected = stats.ks_2samp(cur, ref)
        assert table.loc[name, "ks_statistic"] == pytest.approx(expected.statistic, abs=1e-9)
        assert table.loc[name, "ks_pvalue"] == pytest.approx(expected.pvalue, abs=1e-9)
        distance = stats.wasserstein_distance(cur, ref) / ref.std(ddof=1)
        assert table.loc[name, "wasserstein"] == pytest.approx(distance, abs=1e-9)


def _psi_by_hand(ref: np.ndarray, cur: np.ndarray, bins: int, eps: float, nan_bin: bool) -> float:
    finite_ref = ref[np.isfinite(ref)]
    edges = np.unique(np.quantile(finite_ref, np.arange(1, bins) / bins))

    def shares(x: np.ndarray) -> np.ndarray:
        finite = x[np.isfinite(x)]
        counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1).astype(float)
        if nan_bin:
            counts = np.append(counts, len(x) - len(finite))
            return np.maximum(counts / len(x), eps)
        return np.maximum(counts / len(finite), eps)

    r, c = shares(ref), shares(cur)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.mark.parametrize("nan_policy", ["bin", "exclude"])
def test_psi_matches_a_direct_histogram(nan_policy: str) -> None:
    reference, current = _frames(np.random.default_rng(3), 5_000, 700, shift=0.2)
    config = DriftConfig(nan_policy=nan_policy)
    table = feature_drift(reference, current, list(reference.columns), config=config).table().set_index("feature")
    for name in reference.columns:
        expected = _psi_by_hand(reference[name].to_numpy(), current[name].to_numpy(), 10, config.epsilon, nan_policy == "bin")
        assert table.loc[name, "psi"] == pytest.approx(expected, abs=1e-12)


def test_linear_quantiles_equal_numpy() -> None:
    values = np.sort(np.random.default_rng(0).normal(size=1001))
    levels = np.arange(1, 10) / 10
    np.testing.assert_allclose(drift._linear_quantiles(values, levels), np.quantile(values, levels), rtol=0, atol=1e-15)


def test_constant_feature_stable_then_moved() -> None:
    reference = pd.DataFrame({"flag": np.zeros(1000), "x": np.random.default_rng(1).normal(size=1000)})
    same = reference.iloc[:200]
    moved = same.assign(flag=1.0)
    stable = feature_drift(reference, same, ["flag", "x"]).table().set_index("feature")
    assert stable.loc["flag", "psi"] == pytest.approx(0.0)
    assert stable.loc["flag", "wasserstein"] == 0.0
    assert not stable.loc["flag", "drifted"]
    shifted = feature_drift(reference, moved, ["flag", "x"]).table().set_index("feature")
    assert shifted.loc["flag", "psi"] > 1.0
    assert shifted.loc["flag", "wasserstein"] == np.inf
    assert shifted.loc["flag", "ks_statistic"] == 1.0
    assert shifted.loc["flag", "drifted"]


def test_a_feature_that_goes_missing_is_drifted() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    current = pd.DataFrame({"a": rng.normal(size=300), "b": np.full(300, np.nan)})
    table = feature_drift(reference, current, ["a", "b"]).table().set_index("feature")
    assert table.loc["b", "drifted"] and not table.loc["a", "drifted"]
    assert table.loc["b", "current_missing_share"] == 1.0
    assert np.isnan(table.loc["b", "ks_statistic"])


def test_infinities_are_missing() -> None:
    reference = pd.DataFrame({"a": np.r_[np.arange(100.0), np.inf]})
    report = feature_drift(reference, pd.DataFrame({"a": np.arange(50.0)}), ["a"])
    assert report.table().loc[0, "n_reference"] == 100


def test_shift_in_important_features_drives_the_score() -> None:
    rng = np.random.default_rng(5)
    names = [f"f{i}" for i in range(10)]
    reference = pd.DataFrame(rng.normal(size=(20_000, 10)), columns=names)
    current = pd.DataFrame(rng.normal(size=(2_000, 10)), columns=names)
    current[["f0", "f1"]] += 1.0
    profile = ReferenceProfile.from_frame(reference, names)
    important = compare(profile, current, {"f0": 4.0, "f1": 4.0, **{n: 0.25 for n in names[2:]}})
    assert sorted(important.drifted_features()) == ["f0", "f1"]
    assert important.score == pytest.approx(0.8)
    assert important.is_drifted
    ignored = compare(profile, current, {"f0": 0.0, "f1": 0.0, **{n: 1.0 for n in names[2:]}})
    assert ignored.score == 0.0 and not ignored.is_drifted
    equal = compare(profile, current, None)
    assert equal.score == pytest.approx(0.2)
    assert equal.table()["weight"].sum() == pytest.approx(1.0)
    assert list(equal.table().columns) == drift.TABLE_COLUMNS


def test_no_drift_on_a_sample_of_the_same_distribution() -> None:
    rng = np.random.default_rng(8)
    names = [f"f{i}" for i in range(20)]
    reference = pd.DataFrame(rng.normal(size=(50_000, 20)), columns=names)
    current = pd.DataFrame(rng.normal(size=(10_000, 20)), columns=names)
    report = feature_drift(reference, current, names)
    assert report.score == 0.0
    assert (report.table()["psi_level"] == "stable").all()


def test_importance_weights() -> None:
    assert drift.importance_weights(["a", "b"], None).tolist() == [0.5, 0.5]
    assert drift.importance_weights(["a", "b"], {"a": 0.0, "b": 0.0}).tolist() == [0.5, 0.5]
    assert drift.importance_weights(["a", "b", "c"], {"a": 3.0, "b": 1.0}).tolist() == [0.75, 0.25, 0.0]
    with pytest.raises(ValueError):
        drift.importance_weights(["a"], {"a": -1.0})


def test_config_validation_and_missing_columns() -> None:
    with pytest.raises(ValueError, match="nan_policy"):
        DriftConfig(nan_policy="drop")
    with pytest.raises(ValueError, match="psi_warn"):
        DriftConfig(psi_warn=0.3, psi_drift=0.2)
    with pytest.raises(ValueError, match="no column"):
        feature_drift(pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"b": [1.0]}), ["a"])
    with pytest.raises(ValueError, match="no finite value"):
        feature_drift(pd.DataFrame({"a": [np.nan, np.nan]}), pd.DataFrame({"a": [1.0]}), ["a"])


def test_plot_and_summary() -> None:
    reference, current = _frames(np.random.default_rng(9), 2_000, 500, shift=0.5)
    report = feature_drift(reference, current, list(reference.columns))
    png = report.plot_png()
    assert png.startswith(b"\x89PNG") and png == report.plot_png()
    summary = report.summary()
    assert summary["features"] == 4 and summary["drift_score"] == report.score


@pytest.mark.parametrize("n,m", [(1, 1), (3, 1), (5, 7), (100, 3000), (1000, 50)])
@pytest.mark.parametrize("ties", [False, True])
def test_sorted_kernels_equal_scipy_on_edge_sizes_and_ties(n: int, m: int, ties: bool) -> None:
    rng = np.random.default_rng(n * 31 + m)
    current, reference = rng.normal(0.3, 1.2, n), rng.normal(size=m)
    if ties:
        current, reference = np.round(current), np.round(reference)
    current.sort()
    reference.sort()
    assert distances.wasserstein_sorted(reference, current) == pytest.approx(stats.wasserstein_distance(current, reference), abs=1e-9)
    assert distances.ks_statistic_sorted(reference, current) == pytest.approx(stats.ks_2samp(current, reference).statistic, abs=1e-12)


def test_fast_pvalues_are_close_and_give_the_same_verdicts() -> None:
    reference, current = _frames(np.random.default_rng(12), 30_000, 12_000, shift=0.0)
    shifted = current.assign(normal=current["normal"] + 0.1)
    names = list(reference.columns)
    for window in (current, shifted):
        exact = feature_drift(reference, window, names, config=DriftConfig(exact_pvalues=True)).table().set_index("feature")
        fast = feature_drift(reference, window, names).table().set_index("feature")
        np.testing.assert_allclose(fast["ks_pvalue"], exact["ks_pvalue"], atol=0.02)
        assert (fast["drifted"] == exact["drifted"]).all()
