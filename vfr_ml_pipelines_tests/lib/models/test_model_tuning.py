"""Optuna tuning on validation folds only: deterministic for a seed, never worse than the
defaults, no skill found where the validation labels are noise."""

from __future__ import annotations

import inspect
from datetime import date, timedelta

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.models.algorithms import default_params, fit_regressor
from vfr_ml_pipelines.lib.models.tuning import TuningFold, search_space, tune

NAMES = ["momentum", "value", "quality", "noise_a", "noise_b"]
N_SYMBOLS = 30
THREADS = 1  # see test_model_algorithms: one OpenMP thread keeps small fits fast on a busy box


def _panel(first_day: int, n_days: int, seed: int, signal: bool = True) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """n_days x N_SYMBOLS rows: the forward return depends on three features (one of them
    nonlinearly) when `signal`, else it is pure noise."""
    rng = np.random.default_rng(seed)
    n = n_days * N_SYMBOLS
    X = rng.normal(size=(n, len(NAMES)))
    noise = rng.normal(size=n)
    forward = (0.4 * X[:, 0] - 0.3 * np.abs(X[:, 1]) + 0.2 * X[:, 2] + noise) if signal else noise
    forward = 0.02 * forward
    days = [date(2020, 1, 1) + timedelta(days=first_day + i) for i in range(n_days)]
    frame = pd.DataFrame({"trade_date": np.repeat(days, N_SYMBOLS), "symbol": np.tile([f"S{i}" for i in range(N_SYMBOLS)], n_days),
                          "forward_return": forward})
    y = frame.groupby("trade_date")["forward_return"].transform(lambda s: (s - s.mean()) / s.std(ddof=0)).to_numpy()
    return X, y, frame


def _fold(start: int, seed: int, val_signal: bool = True) -> TuningFold:
    X_train, y_train, _ = _panel(start, 120, seed)
    X_val, y_val, val_frame = _panel(start + 130, 40, seed + 1, signal=val_signal)
    return TuningFold(X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val, val_frame=val_frame)


@pytest.fixture(scope="module")
def folds() -> list[TuningFold]:
    return [_fold(0, 10), _fold(200, 20)]


def _scipy_rank_ic(prediction: np.ndarray, frame: pd.DataFrame) -> float:
    """Mean per-date Spearman correlation, one scipy call per date (the reference)."""
    scored = frame.assign(prediction=prediction)
    return float(np.mean([stats.spearmanr(day["prediction"], day["forward_return"]).statistic
                          for _, day in scored.groupby("trade_date")]))


def _defaults_value(algorithm: str, folds: list[TuningFold], seed: int) -> float:
    values = []
    for fold in folds:
        model = fit_regressor(algorithm, fold.X_train, fold.y_train, fold.X_val, fold.y_val, feature_names=NAMES,
                              seed=seed, num_threads=THREADS)
        values.append(_scipy_rank_ic(model.predict(fold.X_val), fold.val_frame))
    return float(np.mean(values))


def test_tuning_is_deterministic_for_a_seed_and_starts_from_the_defaults(folds):
    first = tune("lightgbm", folds, feature_names=NAMES, n_trials=3, timeout_seconds=None, seed=5, num_threads=THREADS)
    second = tune("lightgbm", folds, feature_names=NAMES, n_trials=3, timeout_seconds=None, seed=5, num_threads=THREADS)
    assert first == second
    assert (first.algorithm, first.n_trials, first.stopped_by) == ("lightgbm", 3, "trials")
    assert [t["number"] for t in first.trials] == [0, 1, 2]
    assert all(t["state"] == "COMPLETE" for t in first.trials)
    defaults = default_params("lightgbm")
    assert first.trials[0]["params"] == {name: defaults[name] for name in first.trials[0]["params"]}
    # the objective is the mean validation Rank IC, as scipy computes it
    assert first.trials[0]["value"] == pytest.approx(_defaults_value("lightgbm", folds, seed=5), abs=1e-12)
    assert first.best_value == max(t["value"] for t in first.trials)
    best = next(t for t in first.trials if t["value"] == first.best_value)
    assert first.best_params == best["params"]


def test_tuning_on_planted_signal_finds_skill_at_least_as_good_as_the_defaults(folds):
    result = tune("linear", folds, feature_names=NAMES, n_trials=8, timeout_seconds=None, seed=1)
    assert result.best_value >= _defaults_value("linear", folds, seed=1) - 1e-12
    assert result.best_value > 0.15
    assert set(result.best_params) == {"alpha"}
    alphas = [t["params"]["alpha"] for t in result.trials]
    assert all(1e-3 <= a <= 1e5 for a in alphas) and len(set(alphas)) == 8
    again = tune("linear", folds, feature_names=NAMES, n_trials=8, timeout_seconds=None, seed=2)
    assert [t["params"] for t in again.trials][1:] != [t["params"] for t in result.trials][1:]  # the seed matters


def test_tuning_on_noise_validation_labels_finds_no_skill():
    # the training rows carry the signal, the validation labels do not: whatever tuning does,
    # its objective cannot beat chance, so it cannot be reading anything but validation rows
    noisy = [_fold(0, 30, val_signal=False), _fold(200, 40, val_signal=False)]
    result = tune("xgboost", noisy, feature_names=NAMES, n_trials=3, timeout_seconds=None, seed=3, num_threads=THREADS)
    # 80 validation days of 30 names: the Rank IC's standard error is about 0.02
    assert abs(result.best_value) < 0.06
    signal = tune("xgboost", [_fold(0, 30), _fold(200, 40)], feature_names=NAMES, n_trials=3, timeout_seconds=None,
                  seed=3, num_threads=THREADS)
    assert signal.best_value > 0.15


def test_timeout_stops_the_search_between_trials(folds):
    result = tune("linear", folds, feature_names=NAMES, n_trials=50, timeout_seconds=1e-6)
    assert result.stopped_by == "timeout"
    # the defaults' trial runs even when the time is up before it ends
    assert 1 <= result.n_trials < 50
    assert result.trials[0]["params"] == {"alpha": default_params("linear")["alpha"]}


def test_the_search_spaces():
    for algorithm in ("lightgbm", "xgboost", "linear"):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        trial = study.ask()
        params = search_space(algorithm, trial)
        assert set(params) == set(trial.params)
        assert set(params) <= set(default_params(algorithm))  # every tuned name is a real param
        # the defaults are a point of the space (tuning enqueues them as trial 0)
        assert search_space(algorithm, optuna.trial.FixedTrial(default_params(algorithm))) == {
            name: default_params(algorithm)[name] for name in params}
    assert set(search_space("linear", optuna.trial.FixedTrial({"alpha": 3.0}))) == {"alpha"}
    with pytest.raises(ValueError, match="unknown algorithm 'svm'"):
        search_space("svm", optuna.create_study().ask())


def test_the_api_takes_no_test_rows():
    assert not any("test" in name for name in inspect.signature(tune).parameters)
    assert not any("test" in name for name in TuningFold.__dataclass_fields__)


def test_bad_tuning_input(folds):
    with pytest.raises(ValueError, match="unknown algorithm 'svm'"):
        tune("svm", folds, feature_names=NAMES)
    with pytest.raises(ValueError, match="no tuning folds"):
        tune("linear", [], feature_names=NAMES)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        tune("linear", folds, feature_names=NAMES, n_trials=0)
    with pytest.raises(ValueError, match="timeout_seconds must be > 0"):
        tune("linear", folds, feature_names=NAMES, timeout_seconds=0)
    short = TuningFold(folds[0].X_train, folds[0].y_train, folds[0].X_val, folds[0].y_val, folds[0].val_frame.iloc[:-1])
    with pytest.raises(ValueError, match="tuning fold 1: val_frame has 1199 rows but X_val has 1200"):
        tune("linear", [folds[0], short], feature_names=NAMES)
    with pytest.raises(ValueError, match=r"tuning fold 0: X_train has shape \(3600, 5\), expected \(rows, 4\)"):
        tune("linear", folds, feature_names=NAMES[:4])
    no_label = TuningFold(folds[0].X_train, folds[0].y_train, folds[0].X_val, folds[0].y_val,
                          folds[0].val_frame.drop(columns="forward_return"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['forward_return'\]"):
        tune("linear", [no_label], feature_names=NAMES)
