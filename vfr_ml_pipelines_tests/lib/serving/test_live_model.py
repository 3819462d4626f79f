"""The export for VFR's live ensemble: a serving model (LightGBM, XGBoost, the ridge, ensembles
of them) written as one LightGBM text model + normalizer.json, loaded back exactly as VFR's
predict-generic.py loads them, gives the serving model's calibrated probability on every
row, missing inputs included (sent as the sentinel VFR can carry). The one thing not
expressed is the ridge's clip of its output to its training range (a clip of a sum): on the
rows where that clip binds the export gives the unclipped ridge, and nowhere else differs."""

from __future__ import annotations

import copy
import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import PROBABILITY_EPSILON, ReturnCalibration
from vfr_ml_pipelines.lib.models.ensemble import STACKING, EnsembleModel, fit_rank_ic_ensemble, fit_stacking_ensemble
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.serving import live_model, live_trees, live_values

NAMES = [f"feat_{i}" for i in range(6)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 3000
    X = rng.normal(size=(n, len(NAMES)))
    X[:, 5] = np.round(X[:, 5], 1)  # repeated values: splits fall between them, inputs land on grid points
    X[rng.random(X.shape) < 0.15] = np.nan
    # the target depends on missingness too, so NaN routing matters
    y = 0.4 * np.nan_to_num(X[:, 0]) + 0.2 * np.nan_to_num(X[:, 1]) ** 2 + 0.5 * np.isnan(X[:, 2]) + rng.normal(size=n)
    return X, y


def _scoring_rows(X: np.ndarray) -> np.ndarray:
    """The rows scored: some inputs infinite (XGBoost refuses them in training, not in
    prediction; a served vector may hold one)."""
    rng = np.random.default_rng(4)
    X = X.copy()
    X[rng.random(X.shape) < 0.02] = np.inf
    X[rng.random(X.shape) < 0.02] = -np.inf
    # outlying values, beyond the ridge's training range: its output clip binds on some rows
    X[rng.random(X.shape) < 0.01] *= 40
    return X


@pytest.fixture(scope="module")
def members(data):
    X, y = data
    return {
        a: algorithms.fit_regressor(a, X[:2200], y[:2200], X[2200:], y[2200:], feature_names=NAMES)
        for a in ("lightgbm", "xgboost", "linear")
    }


def _serving(estimator, a=1.3, b=-0.25, residual_std=0.03) -> ServingModel:
    """A serving model whose probability is sigmoid(a * score + b): the return calibration
    with residual std `residual_std` and those logit coefficients."""
    scale = residual_std / 1.702
    calibration = ReturnCalibration(
        slope=a * scale, intercept=b * scale, residual_std=residual_std, raw_slope=a * scale, ic_t=3.0,
        shrinkage=8 / 9, drift=b * scale, n_days=20,
    )
    assert calibration.logit_coefficients() == pytest.approx((a, b))
    return ServingModel("1w", estimator.algorithm, estimator, calibration)


def _estimators(data, members):
    X, y = data
    val = pd.DataFrame({"trade_date": np.repeat(pd.date_range("2026-01-01", periods=16), 50), "y": y[2200:]})
    trees = {a: members[a] for a in ("lightgbm", "xgboost")}
    with_ridge = fit_rank_ic_ensemble(members, X[2200:], val, recent_days=10, label="y")
    assert with_ridge.weights["linear"] > 0, "the ridge member has a vote"
    return {
        "lightgbm": members["lightgbm"],
        "xgboost": members["xgboost"],
        "linear": members["linear"],
        "stacking": fit_stacking_ensemble(trees, X[2200:], y[2200:]),
        "rankic": fit_rank_ic_ensemble(trees, X[2200:], val, recent_days=10, label="y"),
        "rankic_with_ridge": with_ridge,
        # the stacker gives the ridge no weight on these data: fixed weights give it one
        "stacking_with_ridge": EnsembleModel(STACKING, members, with_ridge.scales, {"lightgbm": 0.2, "xgboost": 0.3, "linear": 0.5}, 0.05),
    }


def _unclipped(estimator):
    """The estimator with its ridge's output clip removed (what the export computes)."""
    estimator = copy.deepcopy(estimator)
    for ridge in [estimator, *getattr(estimator, "members", {}).values()]:
        if isinstance(ridge, algorithms.LinearRegressor):
            ridge.bounds = None
    return estimator


def _predict_generic(folder, rows: list[dict]) -> np.ndarray:
    """predict-generic.py's reading: Booster(model_file); the normalizer's keys in order, a
    missing key raises; (x - mean) / stdDev; one row per request."""
    booster = lgb.Booster(model_file=str(folder / live_model.MODEL_FILE))
    params = json.loads((folder / live_model.NORMALIZER_FILE).read_text())["params"]
    out = []
    for features in rows:
        row = [(features[name] - p["mean"]) / p["stdDev"] for name, p in params.items()]
        out.append(float(booster.predict(np.array(row).reshape(1, -1))[0]))
    return np.array(out)


KINDS = ["lightgbm", "xgboost", "linear", "stacking", "rankic", "rankic_with_ridge", "stacking_with_ridge"]


@pytest.mark.parametrize("kind", KINDS)
def test_exported_model_gives_the_calibrated_probability(kind, data, members, tmp_path):
    X = _scoring_rows(data[0])
    model = _serving(_estimators(data, members)[kind])
    inputs = [f"vfr_live_{n}" for n in NAMES]
    folder = live_model.write_live_model(tmp_path, "vfr-1w", "4", model, inputs)
    assert folder == tmp_path / "vfr-1w" / "v4"
    expected = model.predict_frame(pd.DataFrame(X, columns=NAMES))["probability"].to_numpy()
    rows = [
        {f"vfr_live_{k}": v for k, v in live_values.live_inputs(dict(zip(NAMES, x, strict=True)), NAMES, "test").items()}
        for x in X[:600]
    ]
    sent = [v for r in rows for v in r.values()]
    assert live_values.MISSING_VALUE in sent and live_values.POSITIVE_INFINITY_VALUE in sent and live_values.NEGATIVE_INFINITY_VALUE in sent
    got = _predict_generic(folder, rows)
    # LightGBM trees and the ridge are copied exactly (up to the order of a sum); XGBoost sums
    # its leaves in float32
    tolerance = 1e-6 if kind in ("xgboost", "stacking", "rankic", "rankic_with_ridge", "stacking_with_ridge") else 1e-12
    # the ridge's output clip is not exported: where it binds the export is the unclipped
    # model (an independent reference: the same estimator with the clip removed), elsewhere
    # it is the published model itself
    binds = np.array([live_trees.ridge_clip_binds(model.estimator, x.reshape(1, -1)) == 1 for x in X[:600]])
    assert binds.sum() == live_trees.ridge_clip_binds(model.estimator, X[:600])
    if "linear" in kind or "ridge" in kind:
        assert 0 < binds.sum() < 30, "the outlying rows make the clip bind on a few rows"
        unclipped = ServingModel(model.horizon, model.candidate, _unclipped(model.estimator), model.calibration)
        reference = unclipped.predict_frame(pd.DataFrame(X[:600], columns=NAMES))["probability"].to_numpy()
        # (the calibration keeps probabilities PROBABILITY_EPSILON away from 0 and 1, which the
        # unclipped ridge reaches on the most outlying rows)
        np.testing.assert_allclose(np.clip(got, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON), reference, rtol=0, atol=tolerance)
        assert np.abs(got - expected[:600])[binds].max() > 100 * tolerance, "the clip binds for real on those rows"
    else:
        assert not binds.any()
    np.testing.assert_allclose(got[~binds], expected[:600][~binds], rtol=0, atol=tolerance)
    # the same file fed real NaN (LightGBM's own missing routing) agrees as well
    nan_rows = data[0]
    booster = lgb.Booster(model_file=str(folder / live_model.MODEL_FILE))
    expected_nan = model.predict_frame(pd.DataFrame(nan_rows, columns=NAMES))["probability"].to_numpy()
    nan_binds = np.array([live_trees.ridge_clip_binds(model.estimator, x.reshape(1, -1)) == 1 for x in nan_rows])
    np.testing.assert_allclose(booster.predict(nan_rows)[~nan_binds], expected_nan[~nan_binds], rtol=0, atol=tolerance)
    # only the inputs some split reads are asked for, in the model's order; a missing one is an
    # error in predict-generic, never a silent default
    asked = list(json.loads((folder / live_model.NORMALIZER_FILE).read_text())["params"])
    assert asked == [f"vfr_live_{n}" for n in live_model.used_features(model)] and asked
    with pytest.raises(KeyError):
        _predict_generic(folder, [{k: v for k, v in rows[0].items() if k != asked[0]}])


def test_a_slope_of_zero_or_below_is_folded_in_too(data, members, tmp_path):
    X, _ = data
    for a, b in ((0.0, 0.4), (-0.8, 0.1)):
        model = _serving(members["lightgbm"], a=a, b=b)
        folder = live_model.write_live_model(tmp_path / str(a), "m", "1", model, NAMES)
        expected = model.predict_frame(pd.DataFrame(X, columns=NAMES))["probability"].to_numpy()
        np.testing.assert_allclose(lgb.Booster(model_file=str(folder / "model.txt")).predict(X), expected, atol=1e-12)


def test_xgboost_threshold_is_float32_exact():
    rng = np.random.default_rng(0)
    conditions = np.concatenate([rng.normal(size=5000), rng.normal(size=500) * 1e6, [0.5, 1.0, -2.0, 1e-30]]).astype(np.float32)
    for c in conditions:
        t = live_trees.xgboost_threshold(float(c))
        # below or at t, float32(x) < c (XGBoost goes left); just above t, it does not
        assert np.float32(t) < c
        assert not np.float32(np.nextafter(t, np.inf)) < c


def test_the_ridge_is_one_linear_leaf_per_input(data, members):
    """Each input of the ridge is one tree whose only linear leaf holds the standardised
    coefficient; a missing input (the sentinel) gets the imputed median's contribution."""
    ridge = members["linear"]
    text = live_model.live_model_text(_serving(ridge, a=1.0, b=0.0))
    assert text.count("is_linear=1") == len(NAMES) and "is_linear=0" not in text
    booster = lgb.Booster(model_str=text)
    assert booster.num_trees() == len(NAMES)
    _, scaler, fitted = ridge.pipeline.named_steps.values()
    coefficients = [float(c) for c in fitted.coef_ / scaler.scale_]
    assert [float(line.split("=")[1]) for line in text.splitlines() if line.startswith("leaf_coeff=")] == pytest.approx(coefficients, rel=1e-15)
    # all inputs missing: the ridge predicts from the training medians
    medians = ridge.pipeline.named_steps["impute"].statistics_.reshape(1, -1)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert logit(booster.predict(np.full((1, len(NAMES)), live_values.MISSING_VALUE)))[0] == pytest.approx(ridge.predict(medians)[0], abs=1e-12)


class _Lstm:
    algorithm = "lstm"
    feature_names = NAMES


def test_what_cannot_be_exported_is_refused(data, members, tmp_path):
    with pytest.raises(live_values.LiveExportError, match="lstm model cannot be written as LightGBM trees"):
        live_model.live_model_text(_serving(_Lstm()))
    odd = copy.deepcopy(members["linear"])
    odd.pipeline.steps.insert(0, ("square", odd.pipeline.steps[0][1]))
    with pytest.raises(live_values.LiveExportError, match="expected impute -> scale -> ridge"):
        live_model.live_model_text(_serving(odd))
    with pytest.raises(live_values.LiveExportError, match="AAPL on 2026-11-20: feature feat_0"):
        live_values.live_inputs({"feat_0": live_values.GUARD_THRESHOLD}, ["feat_0"], "AAPL on 2026-11-20")
    with pytest.raises(live_values.LiveExportError, match="cannot be sent"):
        live_values.live_inputs({"feat_0": 2e12}, ["feat_0"], "AAPL on 2026-11-20")
    assert live_values.live_inputs({"feat_0": None, "feat_1": 2.5, "feat_2": float("-inf")}, ["feat_0", "feat_1", "feat_2"], "x") == {
        "feat_0": live_values.MISSING_VALUE, "feat_1": 2.5, "feat_2": live_values.NEGATIVE_INFINITY_VALUE,
    }


def test_files_are_replaced_whole(data, members, tmp_path):
    model = _serving(members["lightgbm"])
    folder = live_model.write_live_model(tmp_path, "vfr-1w", "2", model, NAMES)
    first = (folder / "model.txt").read_text()
    live_model.write_live_model(tmp_path, "vfr-1w", "2", _serving(members["lightgbm"], a=2.0), NAMES)
    assert (folder / "model.txt").read_text() != first
    # (scoring.json: what our own publish scores the live model with, never read by VFR)
    assert sorted(p.name for p in folder.iterdir()) == ["model.txt", "normalizer.json", "scoring.json"], "no temporary file is left behind"
    assert list(json.loads((folder / "normalizer.json").read_text())["params"]) == live_model.used_features(model)
