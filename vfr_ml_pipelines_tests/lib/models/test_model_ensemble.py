"""Ensembles: Rank-IC weights and stacking against hand-computed and independent references,
combination of real fitted members, byte round trips, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from vfr_ml_pipelines.lib.models.algorithms import Regressor, fit_regressor
from vfr_ml_pipelines.lib.models.ensemble import (
    RANK_IC_WEIGHTED,
    STACKING,
    EnsembleModel,
    fit_rank_ic_ensemble,
    fit_stacking_ensemble,
    load_model_bytes,
    rank_ic_weights,
)

NAMES = ["signal", "bend", "noise_a", "noise_b", "noise_c"]
N_SYMBOLS = 40
# One thread: OpenMP threads spin badly when the 2-core test machine is busy with other work.
THREADS = 1


# ----------------------------------------------------------------------------- tiny frames


def _member_frame(daily_scores: list[list[float]]) -> pd.DataFrame:
    """One day per list; the label of every day is 1, 2, 3, 4 (so the Rank IC of a day is
    Spearman's rho of its scores against 1..4)."""
    rows = []
    for day, scores in enumerate(daily_scores):
        for symbol, (score, label) in enumerate(zip(scores, [1.0, 2.0, 3.0, 4.0])):
            rows.append({"trade_date": day, "symbol": f"S{symbol}", "score": score, "forward_return": label})
    return pd.DataFrame(rows)


# rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - sum(d^2) / 10 for n = 4
PERFECT = [1, 2, 3, 4]  # rho 1
ONE_SWAP = [2, 1, 3, 4]  # sum d^2 = 2 -> rho 0.8
ROTATED = [2, 3, 1, 4]  # sum d^2 = 6 -> rho 0.4
REVERSED = [4, 3, 2, 1]  # rho -1
HALF_REVERSED = [3, 4, 2, 1]  # sum d^2 = 4+4+1+9 = 18 -> rho -0.8


def test_rank_ic_weights_hand_computed_over_the_recent_days():
    val_scores = {
        "a": _member_frame([REVERSED, PERFECT, PERFECT]),  # recent 2 days: mean 1.0
        "b": _member_frame([PERFECT, ONE_SWAP, ROTATED]),  # recent: (0.8 + 0.4) / 2 = 0.6
        "c": _member_frame([PERFECT, REVERSED, HALF_REVERSED]),  # recent: -0.9 -> 0
    }
    weights = rank_ic_weights(val_scores, recent_days=2)
    assert weights == pytest.approx({"a": 1.0 / 1.6, "b": 0.6 / 1.6, "c": 0.0}, abs=1e-12)
    # over all three days: a (−1 + 1 + 1)/3 = 1/3, b (1 + 0.8 + 0.4)/3 = 2.2/3, c < 0
    everything = rank_ic_weights(val_scores, recent_days=3)
    assert everything == pytest.approx({"a": 1.0 / 3.2, "b": 2.2 / 3.2, "c": 0.0}, abs=1e-12)


def test_rank_ic_weights_all_non_positive_members_get_equal_weights():
    val_scores = {
        "a": _member_frame([REVERSED, HALF_REVERSED]),
        "b": _member_frame([HALF_REVERSED, HALF_REVERSED]),
        "c": _member_frame([[1, 1, 1, 1], [2, 2, 2, 2]]),  # constant scores: no Rank IC at all
    }
    assert rank_ic_weights(val_scores) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_rank_ic_weights_unsorted_rows_and_a_member_without_rank_ic():
    a = _member_frame([REVERSED, PERFECT]).sample(frac=1.0, random_state=3)
    constant = _member_frame([[5, 5, 5, 5], [5, 5, 5, 5]])
    assert rank_ic_weights({"a": a, "constant": constant}, recent_days=1) == pytest.approx({"a": 1.0, "constant": 0.0})


@pytest.mark.parametrize(
    ("val_scores", "recent_days", "match"),
    [
        ({}, 60, "no members"),
        ({"a": _member_frame([PERFECT])}, 0, "recent_days"),
        ({"a": _member_frame([PERFECT]).drop(columns="score")}, 60, r"member 'a' lack column\(s\) \['score'\]"),
        ({"a": _member_frame([PERFECT]).iloc[:0]}, 60, "'a' are empty"),
    ],
)
def test_rank_ic_weights_bad_input(val_scores, recent_days, match):
    with pytest.raises(ValueError, match=match):
        rank_ic_weights(val_scores, recent_days=recent_days)


# ----------------------------------------------------------------------------- real members


def _segment(rng: np.random.Generator, n_days: int, first_day: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    n = n_days * N_SYMBOLS
    X = rng.normal(size=(n, len(NAMES)))
    X[rng.random(X.shape) < 0.02] = np.nan  # a few missing values, as in real features
    clean = np.nan_to_num(X)
    y = 0.3 * clean[:, 0] + 0.3 * np.tanh(2.0 * clean[:, 1]) + rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "trade_date": np.repeat(np.arange(first_day, first_day + n_days), N_SYMBOLS),
            "symbol": np.tile([f"S{i}" for i in range(N_SYMBOLS)], n_days),
            "forward_return": y,
        }
    )
    return X, y, frame


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    rng = np.random.default_rng(42)
    return {"train": _segment(rng, 150, 0), "val": _segment(rng, 80, 150), "test": _segment(rng, 40, 230)}


def _fit_members(data, seed: int = 7) -> dict[str, Regressor]:
    X, y, _ = data["train"]
    X_val, y_val, _ = data["val"]
    return {
        algorithm: fit_regressor(
            algorithm, X, y, X_val, y_val, feature_names=NAMES, seed=seed, num_threads=THREADS,
            params=None if algorithm == "linear" else {"num_boost_round": 300},
        )
        for algorithm in ("lightgbm", "xgboost", "linear")
    }


@pytest.fixture(scope="module")
def members(data) -> dict[str, Regressor]:
    return _fit_members(data)


def _reference_rank_ic_weights(members, X_val, val_frame, recent_days):
    """Weights computed independently: scipy's Spearman per day, the last `recent_days`
    days, clipped at 0, normalised."""
    days = sorted(val_frame["trade_date"].unique())[-recent_days:]
    raw = {}
    for name, member in members.items():
        prediction = member.predict(X_val)
        per_day = [
            stats.spearmanr(prediction[(val_frame["trade_date"] == d).to_numpy()],
                            val_frame.loc[val_frame["trade_date"] == d, "forward_return"]).statistic
            for d in days
        ]
        raw[name] = max(0.0, float(np.mean(per_day)))
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def test_rank_ic_ensemble_predicts_the_hand_combined_members(data, members):
    X_val, _, val_frame = data["val"]
    X_test = data["test"][0]
    ensemble = fit_rank_ic_ensemble(members, X_val, val_frame, recent_days=50)
    assert ensemble.kind == RANK_IC_WEIGHTED and ensemble.algorithm == "ensemble"
    assert ensemble.intercept == 0.0 and ensemble.best_iteration is None
    assert ensemble.feature_names == NAMES

    scales = {name: float(np.std(member.predict(X_val))) for name, member in members.items()}
    assert ensemble.scales == pytest.approx(scales, rel=1e-12)
    expected_weights = _reference_rank_ic_weights(members, X_val, val_frame, 50)
    assert ensemble.weights == pytest.approx(expected_weights, abs=1e-12)
    assert sum(ensemble.weights.values()) == pytest.approx(1.0)
    # every member learnt the planted signal: all get a real share
    assert min(ensemble.weights.values()) > 0.15

    by_hand = sum(expected_weights[n] * members[n].predict(X_test) / scales[n] for n in members)
    np.testing.assert_allclose(ensemble.predict(X_test), by_hand, rtol=1e-10, atol=1e-12)


def test_ensemble_importance_and_contributions_are_weighted_member_values(data, members):
    X_val, _, val_frame = data["val"]
    X_test = data["test"][0][:200]
    ensemble = fit_rank_ic_ensemble(members, X_val, val_frame)

    importance = ensemble.feature_importance()
    assert list(importance) == NAMES
    by_hand = {f: sum(ensemble.weights[n] * members[n].feature_importance()[f] for n in members) for f in NAMES}
    total = sum(by_hand.values())
    assert importance == pytest.approx({f: v / total for f, v in by_hand.items()}, abs=1e-12)
    assert sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.get) in ("signal", "bend")

    contributions = ensemble.contributions(X_test)
    assert contributions.shape == (200, len(NAMES))
    factors = {n: ensemble.weights[n] / ensemble.scales[n] for n in members}
    np.testing.assert_allclose(
        contributions, sum(factors[n] * members[n].contributions(X_test) for n in members), rtol=1e-10, atol=1e-12
    )
    # additivity survives the combination: contributions + bias = prediction
    values, bias = ensemble.contributions_with_bias(X_test)
    # (XGBoost computes its contributions in float32, hence the tolerance)
    np.testing.assert_allclose(values.sum(axis=1) + bias, ensemble.predict(X_test), atol=1e-5)


def test_stacking_puts_the_weight_on_the_informative_member(data):
    X, y, _ = data["train"]
    X_val, y_val, _ = data["val"]
    clean, clean_val = np.nan_to_num(X), np.nan_to_num(X_val)
    # same features, two ridge members: one fitted to the real target, one to a target made
    # of the noise features only (its predictions have nothing to do with y)
    informative = fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    noise = fit_regressor("linear", X, clean[:, 2] + clean[:, 3], None, None, feature_names=NAMES)
    members = {"informative": informative, "noise": noise}
    ensemble = fit_stacking_ensemble(members, X_val, y_val)
    assert ensemble.kind == STACKING
    assert ensemble.weights["informative"] > 0.2
    assert ensemble.weights["noise"] < 0.05 * ensemble.weights["informative"]

    # independent reference: non-negative least squares on the centred design
    design = np.column_stack([members[n].predict(X_val) / ensemble.scales[n] for n in members])
    coef, _ = optimize.nnls(design - design.mean(axis=0), y_val - y_val.mean())
    assert [ensemble.weights[n] for n in members] == pytest.approx(coef.tolist(), abs=1e-8)
    assert ensemble.intercept == pytest.approx(float(y_val.mean() - design.mean(axis=0) @ coef), abs=1e-8)
    np.testing.assert_allclose(ensemble.predict(X_val), ensemble.intercept + design @ coef, atol=1e-7)
    assert np.corrcoef(ensemble.predict(X_val), clean_val[:, 0])[0, 1] > 0.5


def test_stacking_gives_an_anti_correlated_member_zero_and_falls_back_when_none_helps(data):
    X, y, _ = data["train"]
    X_val, y_val, _ = data["val"]
    good = fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    contrary = fit_regressor("linear", X, -y, None, None, feature_names=NAMES)
    stacked = fit_stacking_ensemble({"good": good, "contrary": contrary}, X_val, y_val)
    assert stacked.weights["contrary"] == 0.0 and stacked.weights["good"] > 0
    # when every member is anti-correlated with the target, no coefficient is positive:
    # equal weights rather than a constant prediction
    contrary_too = fit_regressor("linear", X, -y, None, None, feature_names=NAMES, params={"alpha": 1e4})
    both_contrary = fit_stacking_ensemble({"a": contrary, "b": contrary_too}, X_val, y_val)
    assert both_contrary.weights == pytest.approx({"a": 0.5, "b": 0.5})
    assert both_contrary.intercept == 0.0


def test_a_member_with_constant_predictions_gets_no_weight(data, members):
    X, y, _ = data["train"]
    X_val, y_val, val_frame = data["val"]
    # a booster whose target has no variation never splits: a constant prediction
    flat = fit_regressor("lightgbm", X, np.full(len(y), 0.25), X_val, np.full(len(y_val), 0.25), feature_names=NAMES,
                         params={"num_boost_round": 20}, num_threads=THREADS)
    assert np.ptp(flat.predict(X_val)) == 0
    with_flat = {"linear": members["linear"], "flat": flat}
    stacked = fit_stacking_ensemble(with_flat, X_val, y_val)
    weighted = fit_rank_ic_ensemble(with_flat, X_val, val_frame)
    for ensemble in (stacked, weighted):
        assert ensemble.weights["flat"] == 0.0
        assert ensemble.scales["flat"] == 1.0
        assert np.isfinite(ensemble.predict(X_val)).all()


def test_round_trip_is_bit_exact_for_both_kinds(data, members):
    X_val, y_val, val_frame = data["val"]
    X_test = data["test"][0]
    for ensemble in (fit_rank_ic_ensemble(members, X_val, val_frame), fit_stacking_ensemble(members, X_val, y_val)):
        blob = ensemble.to_bytes()
        for restored in (load_model_bytes(blob), EnsembleModel.from_bytes(blob)):
            assert isinstance(restored, EnsembleModel)
            assert restored.kind == ensemble.kind
            assert restored.weights == ensemble.weights and restored.scales == ensemble.scales
            assert restored.intercept == ensemble.intercept
            assert restored.feature_names == ensemble.feature_names
            assert restored.params == ensemble.params
            assert {n: m.algorithm for n, m in restored.members.items()} == {n: m.algorithm for n, m in members.items()}
            assert np.array_equal(restored.predict(X_test), ensemble.predict(X_test))
            assert restored.feature_importance() == ensemble.feature_importance()


def test_load_model_bytes_dispatches_and_single_model_loader_refuses_ensembles(data, members):
    X_val, y_val, _ = data["val"]
    X_test = data["test"][0]
    single = load_model_bytes(members["xgboost"].to_bytes())
    assert single.algorithm == "xgboost" and not isinstance(single, EnsembleModel)
    assert np.array_equal(single.predict(X_test), members["xgboost"].predict(X_test))

    blob = fit_stacking_ensemble(members, X_val, y_val).to_bytes()
    with pytest.raises(ValueError, match="ensemble"):
        Regressor.from_bytes(blob)
    with pytest.raises(ValueError, match="hold a 'linear' model"):
        EnsembleModel.from_bytes(members["linear"].to_bytes())
    with pytest.raises(ValueError, match="wrong magic"):
        load_model_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="truncated|corrupt"):
        load_model_bytes(blob[:-10])


def test_ensembles_are_deterministic(data, members):
    X_val, y_val, val_frame = data["val"]
    X_test = data["test"][0]
    again = _fit_members(data)
    a = fit_rank_ic_ensemble(members, X_val, val_frame)
    b = fit_rank_ic_ensemble(again, X_val, val_frame)
    assert a.to_bytes() == b.to_bytes()
    assert np.array_equal(a.predict(X_test), b.predict(X_test))
    c = fit_stacking_ensemble(members, X_val, y_val)
    d = fit_stacking_ensemble(again, X_val, y_val)
    assert c.to_bytes() == d.to_bytes()


def test_ensemble_bad_input(data, members):
    X_val, y_val, val_frame = data["val"]
    X, y, _ = data["train"]
    renamed = fit_regressor("linear", X, y, None, None, feature_names=[f"other_{n}" for n in NAMES])
    with pytest.raises(ValueError, match="different feature names"):
        fit_stacking_ensemble({"linear": members["linear"], "renamed": renamed}, X_val, y_val)
    with pytest.raises(ValueError, match="no members"):
        fit_stacking_ensemble({}, X_val, y_val)
    with pytest.raises(ValueError, match="val_frame has 10 rows"):
        fit_rank_ic_ensemble(members, X_val, val_frame.iloc[:10])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['forward_return'\]"):
        fit_rank_ic_ensemble(members, X_val, val_frame.drop(columns="forward_return"))
    with pytest.raises(ValueError, match="non-finite"):
        fit_stacking_ensemble(members, X_val, np.where(np.arange(len(y_val)) == 3, np.nan, y_val))
    ensemble = fit_stacking_ensemble(members, X_val, y_val)
    with pytest.raises(ValueError, match="is itself an ensemble"):
        fit_stacking_ensemble({"nested": ensemble, "linear": members["linear"]}, X_val, y_val)
    with pytest.raises(ValueError, match="columns"):
        ensemble.predict(X_val[:, :3])
    with pytest.raises(ValueError, match="unknown kind"):
        EnsembleModel("average", members, ensemble.scales, ensemble.weights)
    with pytest.raises(ValueError, match="weight of member"):
        EnsembleModel(STACKING, members, ensemble.scales, {**ensemble.weights, "linear": -1.0})
