"""Per-session training settings of the trees (issue 13's study): Rank IC early stopping,
LightGBM's and XGBoost's ranking objectives with one query group per session, relevance grades, leaf size as
a share of the training rows; each checked against an independent computation."""

from __future__ import annotations

from datetime import date

import lightgbm as lgb
import numpy as np
import xgboost as xgb
import pandas as pd
import pytest
from scipy.stats import spearmanr

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_oracle, generate_prices

from vfr_ml_pipelines.lib.models.algorithms import Regressor, default_params, fit_regressor
from vfr_ml_pipelines.lib.models.dataset import join_features_labels
from vfr_ml_pipelines.lib.models.sessions import SessionRankIC, relevance_grades
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig, session_sizes, train_horizon
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig

THREADS = 1
NAMES = ["signal", "curve", "noise_a", "noise_b"]


def _sessions(n_sessions: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sessions of 20-40 rows; y = 0.3 x0 + 0.3 sin(2 x1) + a per-session level + noise."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 41, size=n_sessions)
    n = int(sizes.sum())
    X = rng.normal(size=(n, len(NAMES)))
    level = np.repeat(rng.normal(scale=3.0, size=n_sessions), sizes)  # ranking within a day ignores it
    y = 0.3 * X[:, 0] + 0.3 * np.sin(2 * X[:, 1]) + level + rng.normal(size=n)
    return X, y, sizes


def _reference_rank_ic(predictions: np.ndarray, y: np.ndarray, sizes: np.ndarray) -> float:
    out, start = [], 0
    for size in sizes:
        p, t = predictions[start:start + size], y[start:start + size]
        start += size
        out.append(0.0 if np.ptp(p) == 0 or np.ptp(t) == 0 else spearmanr(p, t).statistic)
    return float(np.mean(out))


@pytest.fixture(scope="module")
def data():
    train, val, test = _sessions(150, 1), _sessions(60, 2), _sessions(80, 3)
    return {"train": train, "val": val, "test": test}


def _fit(data, algorithm: str, params: dict) -> Regressor:
    (X, y, g), (Xv, yv, gv) = data["train"], data["val"]
    return fit_regressor(algorithm, X, y, Xv, yv, feature_names=NAMES, params=params, num_threads=THREADS,
                         train_groups=g, val_groups=gv)


def test_session_rank_ic_is_the_mean_of_per_session_spearman_with_ties():
    rng = np.random.default_rng(5)
    sizes = np.array([7, 12, 3, 9])
    y = rng.normal(size=sizes.sum())
    predictions = np.round(rng.normal(size=sizes.sum()), 1)  # ties inside sessions
    predictions[7:19] = 0.25  # one session all tied: no ranking, counts as 0
    assert SessionRankIC(y, sizes)(predictions) == pytest.approx(_reference_rank_ic(predictions, y, sizes), abs=1e-12)


def test_relevance_grades_are_equal_count_bins_of_the_session_rank():
    rng = np.random.default_rng(6)
    sizes = np.array([50, 13, 5])
    y = rng.normal(size=sizes.sum())
    grades = relevance_grades(y, sizes)
    start = 0
    for size in sizes:
        session, got = y[start:start + size], grades[start:start + size]
        start += size
        order = np.argsort(session)
        expected = np.empty(size, dtype=int)
        expected[order] = np.arange(size) * 5 // size
        assert (got == expected).all()
    assert np.bincount(grades[:50]).tolist() == [10, 10, 10, 10, 10]


def test_rank_ic_stopping_keeps_the_round_of_the_best_validation_rank_ic(data):
    overrides = {"early_stopping_metric": "rank_ic", "num_boost_round": 120, "early_stopping_rounds": 120}
    model = _fit(data, "lightgbm", overrides)
    # every round grown without stopping, by LightGBM directly with the same settings
    params = {**default_params("lightgbm"), "seed": 7, "num_threads": THREADS}
    for key in ("num_boost_round", "early_stopping_rounds"):
        params.pop(key)
    (X, y, _), (Xv, yv, gv) = data["train"], data["val"]
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=120)
    by_round = [_reference_rank_ic(booster.predict(Xv, num_iteration=i), yv, gv) for i in range(1, 121)]
    assert model.best_iteration == int(np.argmax(by_round)) + 1
    assert np.allclose(model.predict(Xv), booster.predict(Xv, num_iteration=model.best_iteration))


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_rank_ic_stopping_and_leaf_fraction_learn_and_round_trip(data, algorithm):
    model = _fit(data, algorithm, {"early_stopping_metric": "rank_ic", "min_leaf_fraction": 0.02})
    key = "min_data_in_leaf" if algorithm == "lightgbm" else "min_child_weight"
    assert model.params[key] == round(0.02 * len(data["train"][0])) and "min_leaf_fraction" not in model.params
    Xt, yt, gt = data["test"]
    # the planted within-session signal: a perfect model has a per-session Rank IC of about 0.35
    assert _reference_rank_ic(model.predict(Xt), yt, gt) > 0.2
    assert (Regressor.from_bytes(model.to_bytes()).predict(Xt) == model.predict(Xt)).all()


def test_xendcg_ranks_within_sessions_and_ignores_the_session_level(data):
    model = _fit(data, "lightgbm", {"objective": "rank_xendcg", "early_stopping_metric": "rank_ic"})
    Xt, yt, gt = data["test"]
    assert _reference_rank_ic(model.predict(Xt), yt, gt) > 0.2
    assert (Regressor.from_bytes(model.to_bytes()).predict(Xt) == model.predict(Xt)).all()


@pytest.mark.parametrize("objective", ["rank:pairwise", "rank:ndcg"])
def test_xgboost_ranking_objectives_fit_one_query_group_per_session(data, objective):
    params = {"objective": objective, "min_child_weight": 1.0, "num_boost_round": 200}
    model = _fit(data, "xgboost", params)
    assert model.params["objective"] == objective and model.params["eval_metric"] == "ndcg"
    # the same fit by XGBoost directly: quintile grades of each session's rank (by hand), one
    # query group per session, stopped on the validation sessions' NDCG
    (X, y, g), (Xv, yv, gv) = data["train"], data["val"]

    def grades(values, sizes):
        out, start = np.empty(len(values), dtype=int), 0
        for size in sizes:
            order = np.argsort(values[start:start + size], kind="stable")
            out[start + order] = np.arange(size) * 5 // size
            start += size
        return out

    xgb_params = {**default_params("xgboost"), "objective": objective, "eval_metric": "ndcg", "min_child_weight": 1.0,
                  "seed": 7, "nthread": THREADS}
    for key in ("num_boost_round", "early_stopping_rounds"):
        xgb_params.pop(key)
    train = xgb.QuantileDMatrix(X, label=grades(y, g), group=g, missing=np.nan, nthread=THREADS)
    val = xgb.QuantileDMatrix(Xv, label=grades(yv, gv), group=gv, missing=np.nan, nthread=THREADS, ref=train)
    booster = xgb.train(xgb_params, train, num_boost_round=200, evals=[(val, "val")], early_stopping_rounds=50,
                        verbose_eval=False)
    assert model.best_iteration == booster.best_iteration + 1
    Xt, yt, gt = data["test"]
    assert np.allclose(model.predict(Xt), booster[:model.best_iteration].inplace_predict(Xt, missing=np.nan))
    # it learns the within-session signal and ignores the session level, and round-trips
    assert _reference_rank_ic(model.predict(Xt), yt, gt) > 0.2
    assert (Regressor.from_bytes(model.to_bytes()).predict(Xt) == model.predict(Xt)).all()


def test_session_settings_need_their_groups_and_valid_values(data):
    (X, y, g), (Xv, yv, gv) = data["train"], data["val"]
    with pytest.raises(ValueError, match="session group sizes are required"):
        fit_regressor("lightgbm", X, y, Xv, yv, feature_names=NAMES, params={"objective": "rank_xendcg"})
    with pytest.raises(ValueError, match="session group sizes are required"):
        fit_regressor("xgboost", X, y, Xv, yv, feature_names=NAMES, params={"early_stopping_metric": "rank_ic"})
    with pytest.raises(ValueError, match="session group sizes are required"):
        fit_regressor("xgboost", X, y, Xv, yv, feature_names=NAMES, params={"objective": "rank:pairwise"})
    with pytest.raises(ValueError, match="sum to the"):
        fit_regressor("lightgbm", X, y, Xv, yv, feature_names=NAMES, params={"early_stopping_metric": "rank_ic"},
                      train_groups=g, val_groups=gv[:-1])
    with pytest.raises(ValueError, match="early_stopping_metric"):
        fit_regressor("lightgbm", X, y, Xv, yv, feature_names=NAMES, params={"early_stopping_metric": "ndcg"})
    with pytest.raises(ValueError, match="min_leaf_fraction"):
        fit_regressor("xgboost", X, y, Xv, yv, feature_names=NAMES, params={"min_leaf_fraction": 0.7})


def test_session_sizes_and_the_config_of_algorithm_params():
    rows = pd.DataFrame({"trade_date": pd.to_datetime(["2024-01-02"] * 3 + ["2024-01-03"] * 2 + ["2024-01-05"])})
    assert session_sizes(rows).tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="sorted by trade_date"):
        session_sizes(rows.iloc[::-1])
    config = HorizonTrainingConfig("1w", tuning_trials=0, algorithm_params={"lightgbm": {"learning_rate": 0.02}})
    # tuning's choice wins over the configured params, which win over the defaults
    assert config.params({"lightgbm": {"learning_rate": 0.05, "num_leaves": 7}}) == {
        "lightgbm": {"learning_rate": 0.05, "num_leaves": 7}, "xgboost": {}, "linear": {}}
    assert config.params({})["lightgbm"] == {"learning_rate": 0.02}
    with pytest.raises(ValueError, match="cannot be tuned"):
        HorizonTrainingConfig("1w", tuning_trials=10, algorithm_params={"lightgbm": {"objective": "rank_xendcg"}})
    # the default run does not tune, so a ranking objective needs nothing more
    assert HorizonTrainingConfig("1w", algorithm_params={"lightgbm": {"objective": "rank_xendcg"}}).tuning_trials == 0
    with pytest.raises(ValueError, match="cannot be tuned"):
        HorizonTrainingConfig("1w", tuning_trials=10, algorithm_params={"xgboost": {"objective": "rank:ndcg"}})


def test_train_horizon_fits_the_configured_session_settings_on_each_fold():
    market = SyntheticMarketConfig(as_of=date(2025, 6, 27), start=date(2023, 6, 1), n_symbols=30)
    prices = generate_prices(market)
    dataset = join_features_labels(compute_technical_features(prices), compute_labels(prices, "1w"), list(FEATURE_NAMES))
    oracle = generate_oracle(market)
    oracle = oracle[oracle["horizon"] == "1w"][["trade_date", "symbol", "expected_return"]]
    settings = {"objective": "rank_xendcg", "early_stopping_metric": "rank_ic", "min_leaf_fraction": 0.02}
    config = HorizonTrainingConfig(
        # (one canary seed on 30 symbols is noise: -0.0216 at a standard error of 0.017 here)
        horizon="1w", algorithms=("lightgbm", "linear"), tuning_trials=0, canary_seeds=(11,),
        walk_forward=WalkForwardConfig(n_folds=2, val_days=30), algorithm_params={"lightgbm": settings},
    )
    result = train_horizon(dataset, list(FEATURE_NAMES), config, oracle=oracle)
    lightgbm = result.candidates["lightgbm"]
    assert lightgbm.params["objective"] == "rank_xendcg" and lightgbm.params["early_stopping_metric"] == "rank_ic"
    # the leaf size is a share of the production fit's own training rows
    final_train_rows = lightgbm.params["min_data_in_leaf"] / 0.02
    assert 0.9 * result.final.train_rows < final_train_rows < 1.1 * result.final.train_rows
    assert result.candidates["linear"].params == {"alpha": 10.0}
    # some of the planted signal, never more than the oracle (the wiring, not the objective's merit)
    assert 0 < lightgbm.test["rank_ic"] < lightgbm.test["oracle_rank_ic"] and lightgbm.oracle_canary.passed


@pytest.mark.parametrize("algorithm", ["lightgbm", "xgboost"])
def test_inner_stopping_fits_on_the_early_sessions_and_stops_on_the_last_ones(data, algorithm):
    (X, y, g), (Xv, yv, gv) = data["train"], data["val"]
    settings = {"early_stopping_metric": "rank_ic", "min_leaf_fraction": 0.02}
    model = fit_regressor(algorithm, X, y, Xv, yv, feature_names=NAMES, num_threads=THREADS, train_groups=g,
                          val_groups=gv, params={**settings, "stopping_sessions": 30, "stopping_gap_sessions": 5})
    # the same fit by hand: sessions 0..114 fitted on, 115..119 dropped, 120..149 stop it
    fit_rows, stop_start = int(g[:115].sum()), int(g[:120].sum())
    by_hand = fit_regressor(algorithm, X[:fit_rows], y[:fit_rows], X[stop_start:], y[stop_start:], feature_names=NAMES,
                            num_threads=THREADS, train_groups=g[:115], val_groups=g[120:], params=settings)
    assert model.best_iteration == by_hand.best_iteration
    assert (model.predict(Xv) == by_hand.predict(Xv)).all()
    assert model.params["stopping_sessions"] == 30 and model.params["min_data_in_leaf" if algorithm == "lightgbm"
                                                                       else "min_child_weight"] == round(0.02 * fit_rows)
    # the validation rows play no part
    shuffled = fit_regressor(algorithm, X, y, Xv, yv[::-1].copy(), feature_names=NAMES, num_threads=THREADS,
                             train_groups=g, val_groups=gv, params={**settings, "stopping_sessions": 30,
                                                                     "stopping_gap_sessions": 5})
    assert (shuffled.predict(Xv) == model.predict(Xv)).all()
    with pytest.raises(ValueError, match="cannot hold"):
        fit_regressor(algorithm, X, y, Xv, yv, feature_names=NAMES, train_groups=g, val_groups=gv,
                      params={"stopping_sessions": 148, "stopping_gap_sessions": 5})
