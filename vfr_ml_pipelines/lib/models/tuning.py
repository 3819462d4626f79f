"""Bounded hyperparameter search with Optuna, on validation folds only.

``tune`` sees nothing but ``TuningFold``s (train and validation rows, never test rows), so
the test folds stay an honest out-of-sample estimate. The objective of a trial is the mean
over folds of the validation Rank IC (per-date Spearman of prediction vs forward return,
averaged over dates) of ``fit_regressor`` trained on the fold's train rows and
early-stopped on its validation rows.

* Trial 0 is always the algorithm's default params (enqueued), and it always runs, even
  past the timeout: the best value is never worse than the defaults' on the same folds,
  and a result always exists.
* TPE with a fixed seed, one trial at a time: with the same folds and seed, the same trials
  run and the result is identical, as long as the trial bound (``n_trials``) binds before
  the timeout. The timeout is checked between trials (a running trial is not cut short).
* The linear model tunes only ``alpha`` (log scale).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from vfr_ml_pipelines.lib.models.algorithms import ALGORITHMS, DEFAULT_SEED, default_params, fit_regressor
from vfr_ml_pipelines.lib.models.metrics import daily_ic

log = logging.getLogger(__name__)


@dataclass
class TuningResult:
    algorithm: str
    best_params: dict[str, Any]
    best_value: float  # mean validation Rank IC of the best trial
    n_trials: int  # trials completed
    trials: list[dict[str, Any]] = field(repr=False)  # number, params, value, state
    stopped_by: str  # "trials" | "timeout"


@dataclass
class TuningFold:
    """One fold's data for tuning: NO test rows ever."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    val_frame: pd.DataFrame  # trade_date, symbol, forward_return of the validation rows (aligned with X_val)

    def check(self, position: int, n_features: int) -> None:
        where = f"tuning fold {position}"
        for name in ("X_train", "X_val"):
            matrix = getattr(self, name)
            if np.ndim(matrix) != 2 or np.shape(matrix)[1] != n_features:
                raise ValueError(f"{where}: {name} has shape {np.shape(matrix)}, expected (rows, {n_features})")
        if len(self.y_train) != len(self.X_train) or len(self.y_val) != len(self.X_val):
            raise ValueError(f"{where}: y_train/y_val lengths ({len(self.y_train)}, {len(self.y_val)}) do not "
                             f"match X_train/X_val rows ({len(self.X_train)}, {len(self.X_val)})")
        if len(self.val_frame) != len(self.X_val):
            raise ValueError(f"{where}: val_frame has {len(self.val_frame)} rows but X_val has {len(self.X_val)}")
        missing = [c for c in ("trade_date", "forward_return") if c not in self.val_frame.columns]
        if missing:
            raise ValueError(f"{where}: val_frame has no column(s) {missing}")


def search_space(algorithm: str, trial: optuna.Trial) -> dict[str, Any]:
    """The params a trial tries; every algorithm's defaults lie inside its space."""
    if algorithm == "lightgbm":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 2000, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 0.01, 100.0, log=True),
        }
    if algorithm == "xgboost":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "min_child_weight": trial.suggest_float("min_child_weight", 20.0, 2000.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.01, 100.0, log=True),
        }
    if algorithm == "linear":
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e5, log=True)}
    raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def _default_trial_params(algorithm: str) -> dict[str, Any]:
    """The defaults, restricted to the search space's names (the first, enqueued trial)."""
    return search_space(algorithm, optuna.trial.FixedTrial(default_params(algorithm)))


def validation_rank_ic(predictions: np.ndarray, val_frame: pd.DataFrame) -> float:
    """Mean over dates of the Spearman correlation of predictions and forward_return
    (NaN when no date has one)."""
    frame = pd.DataFrame({"trade_date": val_frame["trade_date"].to_numpy(), "prediction": predictions,
                          "forward_return": val_frame["forward_return"].to_numpy()})
    per_day = daily_ic(frame, "prediction", "forward_return")
    return float(per_day["rank_ic"].mean()) if len(per_day) else float("nan")


def _json_value(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def tune(
    algorithm: str,
    folds: list[TuningFold],
    *,
    feature_names: list[str],
    n_trials: int = 10,
    timeout_seconds: float | None = 120.0,
    seed: int = DEFAULT_SEED,
    num_threads: int = 2,
) -> TuningResult:
    """Search `algorithm`'s params (`search_space`) for the best mean validation Rank IC
    over `folds`; at most `n_trials` trials and about `timeout_seconds`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    if not folds:
        raise ValueError("tune: no tuning folds")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValueError(f"tune: n_trials must be an integer >= 1, got {n_trials!r}")
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError(f"tune: timeout_seconds must be > 0 or None, got {timeout_seconds!r}")
    for position, fold in enumerate(folds):
        fold.check(position, len(feature_names))

    def objective(trial: optuna.Trial) -> float:
        params = search_space(algorithm, trial)
        values = []
        for fold in folds:
            model = fit_regressor(algorithm, fold.X_train, fold.y_train, fold.X_val, fold.y_val,
                                  feature_names=feature_names, params=params, seed=seed, num_threads=num_threads)
            values.append(validation_rank_ic(model.predict(fold.X_val), fold.val_frame))
        # a fold without any defined Rank IC makes the trial fail (NaN) rather than be averaged away
        return float(np.mean(values))

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = len(study.trials)
        if done == n_trials or done % max(1, n_trials // 4) == 0:
            best = study.best_value if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) else float("nan")
            log.info("tuning %s: trial %d of at most %d, best validation Rank IC so far %.4f", algorithm, done, n_trials, best)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial(_default_trial_params(algorithm))
        # the defaults' trial always runs, whatever the timeout: a result is never empty
        started = time.monotonic()
        study.optimize(objective, n_trials=1, callbacks=[progress])
        remaining = None if timeout_seconds is None else timeout_seconds - (time.monotonic() - started)
        if n_trials > 1 and (remaining is None or remaining > 0):
            study.optimize(objective, n_trials=n_trials - 1, timeout=remaining, callbacks=[progress])
    finally:
        optuna.logging.set_verbosity(verbosity)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"tune {algorithm}: no trial gave a validation Rank IC (every fold needs dates with "
                         f"3+ rows and varying labels)")
    best = study.best_trial
    return TuningResult(
        algorithm=algorithm,
        best_params=dict(best.params),
        best_value=float(best.value),
        n_trials=len(complete),
        trials=[{"number": t.number, "params": dict(t.params), "value": _json_value(t.value), "state": t.state.name}
                for t in study.trials],
        stopped_by="trials" if len(study.trials) >= n_trials else "timeout",
    )
