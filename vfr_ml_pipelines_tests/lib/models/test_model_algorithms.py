"""The three regressors behind one interface: skill on a planted signal, determinism,
bit-exact serialisation, additive contributions, importance, NaN handling, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vfr_ml_pipelines.lib.models.algorithms import (
    ALGORITHMS,
    Regressor,
    default_params,
    fit_regressor,
)

# one thread: OpenMP threads spin-wait, and on a busy 2-core machine two of them make small
# fits many times slower (the thread count does not change what is tested here)
THREADS = 1
NAMES = ["signal_linear", "signal_negative", "signal_sine", "noise_a", "noise_b", "noise_c"]


def _planted(n: int, seed: int, nan_share: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """y = 0.5 x0 - 0.3 x1 + 0.4 sin(2 x2) + noise; x3..x5 are pure noise; some NaN."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    y = 0.5 * X[:, 0] - 0.3 * X[:, 1] + 0.4 * np.sin(2 * X[:, 2]) + rng.normal(size=n)
    X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    X_train, y_train = _planted(6000, 1)
    X_val, y_val = _planted(2000, 2)
    X_test, y_test = _planted(3000, 3)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val, "X_test": X_test, "y_test": y_test}


@pytest.fixture(scope="module")
def models(data) -> dict[str, Regressor]:
    return {a: fit_regressor(a, data["X_train"], data["y_train"], data["X_val"], data["y_val"], feature_names=NAMES,
                             num_threads=THREADS)
            for a in ALGORITHMS}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_learns_the_planted_signal(models, data, algorithm):
    model = models[algorithm]
    prediction = model.predict(data["X_test"])
    assert prediction.dtype == np.float64 and prediction.shape == (3000,)
    assert np.isfinite(prediction).all()
    # the signal explains about a quarter of the variance: r is about 0.5 for a perfect model
    assert np.corrcoef(prediction, data["y_test"])[0, 1] > 0.35
    assert model.algorithm == algorithm and model.feature_names == NAMES


def test_trees_capture_the_nonlinear_part_the_linear_model_cannot(models, data):
    X, y = data["X_test"], data["y_test"]
    sine = np.nan_to_num(0.4 * np.sin(2 * X[:, 2]))
    for algorithm in ("lightgbm", "xgboost"):
        assert np.corrcoef(models[algorithm].predict(X), sine)[0, 1] > 0.2
    assert abs(np.corrcoef(models["linear"].predict(X), sine)[0, 1]) < 0.1
    assert np.corrcoef(models["lightgbm"].predict(X), y)[0, 1] > np.corrcoef(models["linear"].predict(X), y)[0, 1]


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_boosting_is_early_stopped_and_keeps_the_best_rounds(models, data, algorithm):
    model = models[algorithm]
    assert 1 <= model.best_iteration < default_params(algorithm)["num_boost_round"]
    trees = model.booster.num_trees() if algorithm == "lightgbm" else model.booster.num_boosted_rounds()
    assert trees == model.best_iteration
    short = fit_regressor(algorithm, data["X_train"], data["y_train"], data["X_val"], data["y_val"], feature_names=NAMES,
                          params={"num_boost_round": 7}, num_threads=THREADS)
    assert short.best_iteration <= 7 and short.params["num_boost_round"] == 7


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_gives_identical_predictions(models, data, algorithm):
    again = fit_regressor(algorithm, data["X_train"], data["y_train"], data["X_val"], data["y_val"], feature_names=NAMES,
                          num_threads=THREADS)
    np.testing.assert_array_equal(again.predict(data["X_test"]), models[algorithm].predict(data["X_test"]))
    assert again.params == models[algorithm].params


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_the_seed_drives_the_tree_randomness(models, data, algorithm):
    other = fit_regressor(algorithm, data["X_train"], data["y_train"], data["X_val"], data["y_val"], feature_names=NAMES,
                          seed=99, num_threads=THREADS)
    assert not np.array_equal(other.predict(data["X_test"]), models[algorithm].predict(data["X_test"]))
    assert other.params["seed"] == 99


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bytes_round_trip_bit_exact(models, data, algorithm):
    model = models[algorithm]
    blob = model.to_bytes()
    assert isinstance(blob, bytes)
    loaded = Regressor.from_bytes(blob)
    assert type(loaded) is type(model)
    assert (loaded.algorithm, loaded.feature_names, loaded.params, loaded.best_iteration) == (
        model.algorithm, model.feature_names, model.params, model.best_iteration)
    np.testing.assert_array_equal(loaded.predict(data["X_test"]), model.predict(data["X_test"]))
    np.testing.assert_array_equal(loaded.contributions(data["X_test"][:50]), model.contributions(data["X_test"][:50]))
    assert loaded.feature_importance() == model.feature_importance()


def test_from_bytes_rejects_foreign_bytes():
    with pytest.raises(ValueError, match="wrong magic bytes"):
        Regressor.from_bytes(b"not a model")


@pytest.mark.parametrize("algorithm,tolerance", [
    ("lightgbm", 1e-9),
    ("xgboost", 1e-5),  # XGBoost computes and returns SHAP values in float32
    ("linear", 1e-9),
])
def test_contributions_plus_bias_add_up_to_the_prediction(models, data, algorithm, tolerance):
    model = models[algorithm]
    X = data["X_test"][:500]
    contributions, bias = model.contributions_with_bias(X)
    assert contributions.shape == (500, len(NAMES))
    np.testing.assert_array_equal(model.contributions(X), contributions)
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, model.predict(X), rtol=0, atol=tolerance)
    # the noise features contribute much less than the planted ones
    spread = np.abs(contributions).mean(axis=0)
    assert spread[:3].min() > 2 * spread[3:].max()


def test_linear_contributions_are_coef_times_standardized_x(models, data):
    model = models["linear"]
    X_train, X = data["X_train"], data["X_test"][:100]
    median = np.nanmedian(X_train, axis=0)
    filled_train = np.where(np.isnan(X_train), median, X_train)
    mean, std = filled_train.mean(axis=0), filled_train.std(axis=0)
    standardized = (np.where(np.isnan(X), median, X) - mean) / std
    coef = model.pipeline.named_steps["ridge"].coef_
    np.testing.assert_allclose(model.contributions(X), standardized * coef, rtol=1e-10, atol=1e-12)


def test_linear_is_ridge_on_median_imputed_standardized_features(data):
    X, y = data["X_train"], data["y_train"]
    model = fit_regressor("linear", X, y, None, None, feature_names=NAMES, params={"alpha": 50.0})
    # closed form: (Z'Z + alpha I) b = Z'(y - mean y), intercept = mean y (Z is centred)
    filled = np.where(np.isnan(X), np.nanmedian(X, axis=0), X)
    Z = (filled - filled.mean(axis=0)) / filled.std(axis=0)
    coef = np.linalg.solve(Z.T @ Z + 50.0 * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
    np.testing.assert_allclose(model.pipeline.named_steps["ridge"].coef_, coef, rtol=1e-8)
    np.testing.assert_allclose(model.predict(X), Z @ coef + y.mean(), rtol=0, atol=1e-9)
    importance = model.feature_importance()
    np.testing.assert_allclose(list(importance.values()), np.abs(coef) / np.abs(coef).sum(), rtol=1e-8)
    # validation rows are not used by the linear model
    other = fit_regressor("linear", X, y, data["X_val"], data["y_val"], feature_names=NAMES, params={"alpha": 50.0})
    np.testing.assert_array_equal(other.predict(data["X_test"]), model.predict(data["X_test"]))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_importance_is_a_share_per_feature_led_by_the_signal(models, algorithm):
    importance = models[algorithm].feature_importance()
    assert list(importance) == NAMES
    assert sum(importance.values()) == pytest.approx(1.0)
    assert min(importance[n] for n in NAMES[:3]) > max(importance[n] for n in NAMES[3:])
    assert max(importance, key=importance.get) == "signal_linear"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_an_all_missing_training_column_is_handled(data, algorithm):
    X_train, X_val, X_test = data["X_train"].copy(), data["X_val"].copy(), data["X_test"].copy()
    X_train[:, 4] = np.nan
    X_val[:, 4] = np.nan
    model = fit_regressor(algorithm, X_train, data["y_train"], X_val, data["y_val"], feature_names=NAMES, num_threads=THREADS)
    assert model.feature_importance()["noise_b"] == 0.0
    prediction = model.predict(X_test)  # the column has values at prediction time
    assert np.isfinite(prediction).all()
    assert np.corrcoef(prediction, data["y_test"])[0, 1] > 0.35
    assert np.isfinite(model.predict(np.full((3, len(NAMES)), np.nan))).all()


def test_float32_input_and_an_empty_batch(data):
    X32 = data["X_train"].astype(np.float32)
    for algorithm in ALGORITHMS:
        params = {"num_boost_round": 20} if algorithm != "linear" else None
        model = fit_regressor(algorithm, X32, data["y_train"], data["X_val"].astype(np.float32), data["y_val"],
                              feature_names=NAMES, params=params, num_threads=THREADS)
        assert model.predict(data["X_test"].astype(np.float32)).dtype == np.float64
        assert model.predict(np.empty((0, len(NAMES)))).shape == (0,)


def test_all_zero_importance_is_zeros(data):
    # a constant target gives trees without a single split
    model = fit_regressor("lightgbm", data["X_train"], np.zeros(6000), data["X_val"], np.zeros(2000), feature_names=NAMES,
                          params={"num_boost_round": 5}, num_threads=THREADS)
    assert model.feature_importance() == dict.fromkeys(NAMES, 0.0)


def test_params_override_defaults_and_stay_json(data):
    model = fit_regressor("lightgbm", data["X_train"], data["y_train"], data["X_val"], data["y_val"], feature_names=NAMES,
                          params={"num_leaves": np.int64(7), "num_boost_round": 30}, seed=5, num_threads=1)
    assert model.params["num_leaves"] == 7 and model.params["seed"] == 5 and model.params["num_threads"] == 1
    assert model.params["learning_rate"] == default_params("lightgbm")["learning_rate"]
    assert json.loads(json.dumps(model.params)) == model.params


def test_bad_input_raises_clear_errors(data):
    X, y, Xv, yv = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    with pytest.raises(ValueError, match="unknown algorithm 'catboost'"):
        fit_regressor("catboost", X, y, Xv, yv, feature_names=NAMES)
    with pytest.raises(ValueError, match="unknown algorithm"):
        default_params("catboost")
    with pytest.raises(ValueError, match="lightgbm X_train has 6 columns but there are 5 feature_names"):
        fit_regressor("lightgbm", X, y, Xv, yv, feature_names=NAMES[:5])
    with pytest.raises(ValueError, match="xgboost X_val has 5 columns"):
        fit_regressor("xgboost", X, y, Xv[:, :5], yv, feature_names=NAMES)
    with pytest.raises(ValueError, match="linear y_train has 5999 values but its matrix has 6000 rows"):
        fit_regressor("linear", X, y[:-1], Xv, yv, feature_names=NAMES)
    with pytest.raises(ValueError, match="must be 2-D"):
        fit_regressor("linear", X[:, 0], y, Xv, yv, feature_names=NAMES[:1])
    bad_y = y.copy()
    bad_y[[3, 10, 20]] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"lightgbm y_train has 3 non-finite value\(s\) \(first at row 3\)"):
        fit_regressor("lightgbm", X, bad_y, Xv, yv, feature_names=NAMES)
    with pytest.raises(ValueError, match=r"xgboost y_val has 1 non-finite"):
        fit_regressor("xgboost", X, y, Xv, np.where(np.arange(2000) == 7, np.nan, yv), feature_names=NAMES)
    with pytest.raises(ValueError, match="X_val and y_val are required"):
        fit_regressor("lightgbm", X, y, None, None, feature_names=NAMES)
    with pytest.raises(ValueError, match="duplicate feature_names"):
        fit_regressor("linear", X, y, None, None, feature_names=["a"] * 6)
    with pytest.raises(ValueError, match=r"unknown param\(s\) \['num_leaves'\]"):
        fit_regressor("linear", X, y, None, None, feature_names=NAMES, params={"num_leaves": 7})
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        fit_regressor("linear", X, y, None, None, feature_names=NAMES, params={"alpha": 0})
    with pytest.raises(ValueError, match="num_boost_round must be an integer >= 1"):
        fit_regressor("xgboost", X, y, Xv, yv, feature_names=NAMES, params={"num_boost_round": 0})
    model = fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    with pytest.raises(ValueError, match="linear input X has 5 columns but there are 6 feature_names"):
        model.predict(X[:, :5])


def test_linear_predictions_stay_within_the_range_of_its_training_predictions(data):
    """A ridge model extrapolates without bound on an outlying feature value; its predictions
    are clipped to what it predicted on its training rows (no ranking inside that range moves)."""
    X, y = data["X_train"], data["y_train"]
    model = fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    fitted = model.pipeline.predict(X)
    assert model.bounds == (fitted.min(), fitted.max())
    outlier = data["X_test"][:3].copy()
    outlier[0, 0] = 1e6  # far beyond anything seen in training
    outlier[1, 0] = -1e6
    raw = model.pipeline.predict(outlier)
    assert abs(raw[0]) > 1e3 and abs(raw[1]) > 1e3
    clipped = model.predict(outlier)
    assert clipped.min() >= fitted.min() and clipped.max() <= fitted.max()
    assert clipped[0] == fitted.max() if raw[0] > 0 else clipped[0] == fitted.min()
    if fitted.min() <= raw[2] <= fitted.max():
        assert clipped[2] == raw[2]
    contributions, bias = model.contributions_with_bias(outlier)
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, clipped, atol=1e-9)
    restored = type(model).from_bytes(model.to_bytes())
    np.testing.assert_array_equal(restored.predict(outlier), clipped)


def test_linear_treats_an_infinite_feature_as_missing(data):
    X, y = data["X_train"], data["y_train"]
    model = fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    rows = data["X_test"][:2].copy()
    infinite, missing = rows.copy(), rows.copy()
    infinite[0, 1], missing[0, 1] = np.inf, np.nan
    infinite[1, 2], missing[1, 2] = -np.inf, np.nan
    np.testing.assert_array_equal(model.predict(infinite), model.predict(missing))
    np.testing.assert_array_equal(model.contributions(infinite), model.contributions(missing))
