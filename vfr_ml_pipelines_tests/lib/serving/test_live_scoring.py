"""Scoring the live model from the files exported for VFR (`live_scoring`) gives the published
model's numbers: expected return and probability equal `ServingModel.predict_frame`'s
(the pyfunc model's) within float rounding for the kinds of live model we deploy (LightGBM,
the ridge with its output clip binding on some rows, their stacked and Rank-IC ensembles),
missing and infinite inputs included, and the rows published from them are the same. Files
of another run, a replaced model.txt or a model with XGBoost trees are not used."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.ensemble import STACKING, EnsembleModel, fit_rank_ic_ensemble, fit_stacking_ensemble
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.serving import live_model, live_scoring, live_trees, payloads
from vfr_ml_pipelines.lib.serving.predict import prediction_rows

NAMES = [f"feat_{i}" for i in range(6)]
RUN = "run-abc"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    X = rng.normal(size=(n, len(NAMES)))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = 0.4 * np.nan_to_num(X[:, 0]) - 0.3 * np.nan_to_num(X[:, 1]) + 0.3 * np.isnan(X[:, 2]) + rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def members(data):
    X, y = data
    return {a: algorithms.fit_regressor(a, X[:2200], y[:2200], X[2200:], y[2200:], feature_names=NAMES)
            for a in ("lightgbm", "xgboost", "linear")}


def _calibration(slope=0.004, intercept=0.0008, residual_std=0.03) -> ReturnCalibration:
    return ReturnCalibration(slope=slope, intercept=intercept, residual_std=residual_std, raw_slope=slope, ic_t=3.0,
                             shrinkage=8 / 9, drift=intercept, n_days=20, probability_quantiles=[0.3, 0.5, 0.7])


def _live_kinds(data, members) -> dict[str, object]:
    """The live line's algorithms (LightGBM, the ridge) and their ensembles, the ridge first
    or last among the trees."""
    X, y = data
    pair = {a: members[a] for a in ("lightgbm", "linear")}
    val = pd.DataFrame({"trade_date": np.repeat(pd.date_range("2026-01-01", periods=16), 50), "y": y[2200:]})
    stacked = fit_stacking_ensemble(pair, X[2200:], y[2200:])
    return {
        "lightgbm": members["lightgbm"],
        "linear": members["linear"],
        "stacking": EnsembleModel(STACKING, pair, stacked.scales, {"lightgbm": 0.45, "linear": 0.55}, 0.02),
        "ridge_first": EnsembleModel(STACKING, {"linear": members["linear"], "lightgbm": members["lightgbm"]}, stacked.scales,
                                     {"linear": 0.7, "lightgbm": 0.3}, -0.01),
        "rankic": fit_rank_ic_ensemble(pair, X[2200:], val, recent_days=10, label="y"),
    }


def _rows(X: np.ndarray) -> pd.DataFrame:
    """Session rows: some inputs infinite, some far outside the training range (the ridge's
    output clip binds on those)."""
    rng = np.random.default_rng(12)
    X = X.copy()
    X[rng.random(X.shape) < 0.02] = np.inf
    X[rng.random(X.shape) < 0.02] = -np.inf
    X[rng.random(X.shape) < 0.02] *= 30
    frame = pd.DataFrame(X, columns=NAMES)
    frame.insert(0, "symbol", [f"S{i:04d}" for i in range(len(frame))])
    frame["quality_score"], frame["close"] = 0.9, 100.0
    return frame


@pytest.mark.parametrize("kind", ["lightgbm", "linear", "stacking", "ridge_first", "rankic"])
@pytest.mark.parametrize("slope", [0.004, -0.003, 0.0])
def test_scores_from_the_files_equal_the_published_model(kind, slope, data, members, tmp_path):
    model = ServingModel("1w", kind, _live_kinds(data, members)[kind], _calibration(slope=slope))
    folder = live_model.write_live_model(tmp_path, "vfr-live-1w", "3", model, [f"vfr_live_{n}" for n in NAMES], run_id=RUN)
    scorer = live_scoring.load_scorer(folder, RUN)
    assert scorer is not None
    frame = _rows(data[0])
    expected = model.predict_frame(frame)
    got = scorer.predict_frame(frame)
    if "linear" in kind or "ridge" in kind or kind == "stacking":
        binds = live_trees.ridge_clip_binds(model.estimator, frame[NAMES].to_numpy())
        assert binds > 20 or slope == 0.0 or kind == "rankic", f"the ridge's clip binds on some rows ({binds})"
    np.testing.assert_allclose(got["expected_return"], expected["expected_return"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-13)
    # the rows published from them (rounded as VFR's tables and payloads hold them) are the same
    prices = frame[["symbol", "close"]]
    kwargs = {"feature_names": NAMES, "thresholds": payloads.DirectionThresholds(), "as_of": date(2026, 11, 20),
              "horizon": "1w", "model_name": "vfr-live-1w", "model_version": "3", "predicted_at": datetime(2026, 11, 20, 22, tzinfo=UTC)}
    published = [prediction_rows(frame, prices, out["expected_return"].to_numpy(), probabilities=out["probability"].to_numpy(), **kwargs)
                 for out in (expected, got)]
    columns = [c for c in published[0].columns if c not in ("expected_return", "probability")]
    pd.testing.assert_frame_equal(published[1][columns], published[0][columns])


def test_the_clip_is_put_back_only_where_it_binds(data, members, tmp_path):
    """Without the clip the text model gives the unclipped ridge on the outlying rows; the
    scorer gives the clipped (published) one there and the same as the text model elsewhere."""
    model = ServingModel("1w", "linear", members["linear"], _calibration())
    folder = live_model.write_live_model(tmp_path, "m", "1", model, NAMES, run_id=RUN)
    scorer = live_scoring.load_scorer(folder, RUN)
    frame = _rows(data[0])
    X = live_scoring.live_input_matrix(frame[NAMES].to_numpy(), list(frame["symbol"]), NAMES, "test")
    raw, clipped = scorer.booster.predict(X, raw_score=True), scorer.margin(X)
    binds = np.array([live_trees.ridge_clip_binds(model.estimator, x.reshape(1, -1)) == 1 for x in frame[NAMES].to_numpy()])
    assert binds.sum() > 20
    assert np.all(np.abs(raw - clipped)[binds] > 1e-9) and np.array_equal(raw[~binds], clipped[~binds])


def test_files_that_do_not_belong_are_not_used(data, members, tmp_path):
    model = ServingModel("1w", "lightgbm", members["lightgbm"], _calibration())
    folder = live_model.write_live_model(tmp_path, "m", "1", model, NAMES, run_id=RUN)
    assert live_scoring.load_scorer(folder, RUN) is not None
    assert live_scoring.load_scorer(folder, "another-run") is None
    assert live_scoring.load_scorer(tmp_path / "nothing", RUN) is None
    text = (folder / live_model.MODEL_FILE).read_text()
    (folder / live_model.MODEL_FILE).write_text(text.replace("shrinkage=1", "shrinkage=1\n", 1))
    assert live_scoring.load_scorer(folder, RUN) is None, "a model.txt the scoring file does not describe"
    # XGBoost sums its leaves in float32: such a model is scored through MLflow, never from the file
    xgb = ServingModel("1w", "xgboost", members["xgboost"], _calibration())
    folder = live_model.write_live_model(tmp_path, "x", "1", xgb, NAMES, run_id=RUN)
    assert not (folder / live_scoring.SCORING_FILE).exists() and live_scoring.load_scorer(folder, RUN) is None
