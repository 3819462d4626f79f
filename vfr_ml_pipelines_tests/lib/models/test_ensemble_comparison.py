"""The paired champion comparison of an ensemble challenger: its weights are fitted on the final
validation window, the window it is compared on, so it is scored there cross-fitted (each half
by ensembles fitted on the other half, purged), as its validation metrics are."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models.comparison import SEEN_UNTIL_TAG, compare_with_champion
from vfr_ml_pipelines.lib.models.ensemble import fit_rank_ic_ensemble, fit_stacking_ensemble
from vfr_ml_pipelines.lib.models.pipeline import (
    CHALLENGER_SCORE,
    ENSEMBLES,
    challenger_validation_rows,
    train_horizon,
)
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
# the realistic price-only market's training setup: lightgbm + ridge members, no search
from vfr_ml_pipelines_tests.lib.models.test_model_realistic import CONFIG, HORIZON, price_only_dataset, price_only_market


@pytest.fixture(scope="module")
def no_signal():
    """A small market with no planted signal at all, trained as the pipeline trains it."""
    market = dataclasses.replace(price_only_market(seed=4, signal=0.0), n_symbols=20, start=date(2025, 6, 2))
    dataset, names, _ = price_only_dataset(market)
    return dataset, train_horizon(dataset, names, CONFIG)


def _window(dataset: pd.DataFrame, result) -> pd.DataFrame:
    """The final validation window, found here from the fold's dates (not the pipeline's
    helper): the production fold has no test segment after it, so nothing is purged."""
    final = result.final
    rows = dataset[(dataset["trade_date"] >= final.val_start) & (dataset["trade_date"] <= final.val_end)]
    return rows.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def test_an_ensembles_scores_are_cross_fitted_on_the_halves_of_the_window(no_signal):
    dataset, result = no_signal
    rows = challenger_validation_rows(dataset, result, "ensemble-stacking")
    window = _window(dataset, result)
    assert list(zip(rows["trade_date"], rows["symbol"])) == list(zip(window["trade_date"], window["symbol"]))

    # by hand: split the window's sessions in two; the first half is scored by a stack fitted
    # on the second half's rows after every first-half label is known, the second half by a
    # stack fitted on the first half's rows whose labels are known before it starts
    days = np.sort(window["trade_date"].unique())
    middle = days[len(days) // 2]
    first = (window["trade_date"] < middle).to_numpy()
    fit_on_first = first & (window["known_date"] < middle).to_numpy()
    fit_on_second = ~first & (window["trade_date"] > window.loc[first, "known_date"].max()).to_numpy()
    members = {a: result.candidates[a].model.estimator for a in CONFIG.algorithms}
    names = result.feature_names
    X = window[names].to_numpy(dtype=np.float64)
    target = rows["target"].to_numpy()  # the pipeline's normalized target of these same rows
    expected = np.empty(len(window))
    for fit, scored in ((fit_on_first, ~first), (fit_on_second, first)):
        expected[scored] = fit_stacking_ensemble(members, X[fit], target[fit]).predict(X[scored])
    np.testing.assert_allclose(rows[CHALLENGER_SCORE].to_numpy(), expected, rtol=1e-12, atol=1e-12)
    # the production ensemble, fitted on the whole window, scores it differently (in sample)
    in_sample = result.candidates["ensemble-stacking"].model.predict_frame(window)["score"].to_numpy()
    assert not np.allclose(in_sample, expected)


def test_a_single_models_score_is_its_production_models_score(no_signal):
    dataset, result = no_signal
    rows = challenger_validation_rows(dataset, result, "linear")
    window = _window(dataset, result)
    expected = result.candidates["linear"].model.estimator.predict(window[result.feature_names].to_numpy(dtype=np.float64))
    np.testing.assert_allclose(rows[CHALLENGER_SCORE].to_numpy(), expected)


class _Column:
    """A member that scores by one feature (or its opposite; missing values as 0): no skill
    on this market."""

    algorithm = "column"

    def __init__(self, names: list[str], column: str, sign: float) -> None:
        self.feature_names, self.params = list(names), {}
        self._j, self._sign = names.index(column), sign

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._sign * np.nan_to_num(np.asarray(X, dtype=np.float64)[:, self._j])


def _beats(rows: pd.DataFrame, challenger, champion: ServingModel) -> bool:
    """The challenger's mean daily Rank IC is above the champion's on the window."""
    tags = {SEEN_UNTIL_TAG: (rows["trade_date"].min() - timedelta(days=1)).isoformat()}
    comparison = compare_with_champion(rows, challenger, champion, champion_id="vfr-1d.v1",
                                       champion_tags=tags, horizon_days=1)
    assert comparison.refused is None, comparison.refused
    return comparison.mean_difference > 0


def test_on_no_signal_an_ensemble_beats_the_champion_no_more_often_than_chance(no_signal):
    """Members are a feature and its opposite: whichever ranks the window's returns gets the
    weight, so fitted on the window and scored on it the ensemble looks skilled. The champion
    scores by another feature. With no signal, a fair comparison has the challenger ahead
    half of the time: over every usable feature the cross-fitted challenger stays within two
    binomial standard deviations of that; the in-sample one (the old scoring: 41 of 57) is
    above it."""
    dataset, result = no_signal
    window = _window(dataset, result)
    names = result.feature_names
    usable = [c for c in names if window[c].notna().mean() > 0.9 and window.groupby("trade_date")[c].nunique().min() > 5]
    assert len(usable) >= 30
    calibration = result.candidates["linear"].model.calibration
    X = window[names].to_numpy(dtype=np.float64)
    fair, in_sample = 0, 0
    for j, column in enumerate(usable):
        members = {"lightgbm": _Column(names, column, 1.0), "linear": _Column(names, column, -1.0)}
        candidates = {a: dataclasses.replace(result.candidates[a], model=ServingModel(HORIZON, a, m, calibration))
                      for a, m in members.items()}
        for name in ENSEMBLES:
            candidates[name] = result.candidates[name]  # their calibration; the weights are refitted
        trial = dataclasses.replace(result, candidates=candidates)
        champion = ServingModel(HORIZON, "champion", _Column(names, usable[(j + 1) % len(usable)], 1.0), calibration)
        rows = challenger_validation_rows(dataset, trial, "ensemble-rankic")
        fair += _beats(rows, CHALLENGER_SCORE, champion)
        old = fit_rank_ic_ensemble(members, X, window, recent_days=CONFIG.ensemble_recent_days)
        in_sample += _beats(rows.assign(old=old.predict(X)), "old", champion)
    n = len(usable)
    bound = n / 2 + 2 * np.sqrt(n) / 2
    assert abs(fair - n / 2) <= 2 * np.sqrt(n) / 2, (fair, in_sample, n)
    assert in_sample > bound, (fair, in_sample, n)  # the test would catch the in-sample scoring
