"""Leakage canaries: the statistics on hand-built frames, and real LightGBM pipelines on the
synthetic market (shuffled labels give no skill; a leaked label beats the oracle)."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_oracle, generate_prices
from vfr_ml_pipelines.lib.models.algorithms import fit_regressor
from vfr_ml_pipelines.lib.models.canaries import (
    ORACLE_CEILING,
    SHUFFLED_LABELS,
    oracle_ceiling_canary,
    oracle_daily_rank_ic,
    shuffle_labels_within_days,
    shuffled_label_canary,
)
from vfr_ml_pipelines.lib.models.dataset import date_split, join_features_labels, normalized_target
from vfr_ml_pipelines.lib.models.metrics import daily_ic

CONFIG = SyntheticMarketConfig(as_of=date(2025, 6, 27), start=date(2023, 1, 2), n_symbols=40)
HORIZON = "1w"


# ----------------------------------------------------------------------------- hand-built frames


def _days_frame(n_days: int = 30, n_symbols: int = 25, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=n_days).date
    frame = pd.DataFrame(
        {
            "trade_date": np.repeat(days, n_symbols),
            "symbol": np.tile([f"S{i:02d}" for i in range(n_symbols)], n_days),
            "feature": rng.normal(size=n_days * n_symbols),
        }
    )
    frame["forward_return"] = frame["feature"] * 0.01 + rng.normal(scale=0.001, size=len(frame))
    frame["excess_return"] = frame["forward_return"] - frame.groupby("trade_date")["forward_return"].transform("mean")
    return frame


def test_shuffle_keeps_each_days_labels_and_pairs_but_breaks_the_link_to_features():
    frame = _days_frame()
    shuffled = shuffle_labels_within_days(frame, ["forward_return", "excess_return"], seed=4)
    pd.testing.assert_frame_equal(shuffled[["trade_date", "symbol", "feature"]], frame[["trade_date", "symbol", "feature"]])
    for day, rows in frame.groupby("trade_date"):
        after = shuffled[shuffled["trade_date"] == day]
        assert sorted(after["forward_return"]) == sorted(rows["forward_return"])
    # one permutation for both columns: each row's excess return still belongs to its return
    by_return = dict(zip(frame["forward_return"], frame["excess_return"]))
    assert all(by_return[r] == e for r, e in zip(shuffled["forward_return"], shuffled["excess_return"]))
    assert (shuffled["forward_return"] != frame["forward_return"]).mean() > 0.9
    # the label was a function of the feature; after shuffling it is not
    assert daily_ic(frame, "feature", "forward_return")["rank_ic"].mean() > 0.9
    assert abs(daily_ic(shuffled, "feature", "forward_return")["rank_ic"].mean()) < 0.06
    # the input is untouched
    assert daily_ic(frame, "feature", "forward_return")["rank_ic"].mean() > 0.9


def test_shuffle_is_deterministic_for_a_seed_and_handles_unsorted_rows():
    frame = _days_frame().sample(frac=1.0, random_state=1)
    a = shuffle_labels_within_days(frame, ["forward_return"], seed=9)
    b = shuffle_labels_within_days(frame, ["forward_return"], seed=9)
    c = shuffle_labels_within_days(frame, ["forward_return"], seed=10)
    pd.testing.assert_frame_equal(a, b)
    assert not a["forward_return"].equals(c["forward_return"])
    assert a.index.equals(frame.index)
    for day, rows in frame.groupby("trade_date"):
        assert sorted(a.loc[rows.index, "forward_return"]) == sorted(rows["forward_return"])


@pytest.mark.parametrize(
    ("columns", "by", "match"),
    [([], "trade_date", "no label columns"), (["nope"], "trade_date", r"missing column\(s\) \['nope'\]"), (["forward_return"], "day", "'day'")],
)
def test_shuffle_bad_input(columns, by, match):
    with pytest.raises(ValueError, match=match):
        shuffle_labels_within_days(_days_frame(), columns, seed=1, by=by)


def _score_feature(shuffled: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A pipeline without leakage: it scores with a fixed feature (no fitting at all)."""
    return shuffled.assign(score=shuffled["feature"])[["trade_date", "symbol", "score", "forward_return"]]


def _score_label(shuffled: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A broken pipeline: its score is the very label it is evaluated on."""
    return shuffled.assign(score=shuffled["forward_return"])[["trade_date", "symbol", "score", "forward_return"]]


def test_shuffled_canary_statistics_match_an_independent_computation():
    frame = _days_frame(n_days=40)
    result = shuffled_label_canary(_score_feature, frame, label_columns=["forward_return", "excess_return"], seeds=(1, 2))
    assert result.name == SHUFFLED_LABELS
    expected = []
    for seed in (1, 2):
        shuffled = shuffle_labels_within_days(frame, ["forward_return", "excess_return"], seed=seed)
        per_day = [stats.spearmanr(g["feature"], g["forward_return"]).statistic for _, g in shuffled.groupby("trade_date")]
        expected.append(np.mean(per_day))
        assert result.detail[f"seed_{seed}_rank_ic"] == pytest.approx(np.mean(per_day), abs=1e-12)
        assert result.detail[f"seed_{seed}_rank_ic_se"] == pytest.approx(np.std(per_day, ddof=1) / math.sqrt(40), abs=1e-12)
        assert result.detail[f"seed_{seed}_n_days"] == 40
    assert result.statistic == pytest.approx(np.mean(expected), abs=1e-12)
    assert result.passed is (abs(result.statistic) <= 0.02)
    json.dumps(result.as_dict())  # loggable as is


def test_shuffled_canary_fails_a_pipeline_whose_score_is_its_label():
    result = shuffled_label_canary(_score_label, _days_frame(), label_columns=["forward_return"], seeds=(1, 2, 3))
    assert not result.passed
    assert result.statistic == pytest.approx(1.0)
    assert "beyond the 0.02 noise bound" in result.message


def test_shuffled_canary_bad_runs_and_arguments():
    frame = _days_frame()
    with pytest.raises(ValueError, match="no seeds"):
        shuffled_label_canary(_score_feature, frame, label_columns=["forward_return"], seeds=())
    with pytest.raises(ValueError, match=r"missing column\(s\) \['score'\]"):
        shuffled_label_canary(lambda f, s: f, frame, label_columns=["forward_return"])
    constant = shuffled_label_canary(
        lambda f, s: f.assign(score=1.0), frame, label_columns=["forward_return"], seeds=(1,)
    )
    assert not constant.passed and "could not measure" in constant.message


def _daily(values: list[float], start: int = 0) -> pd.DataFrame:
    days = pd.bdate_range("2024-01-01", periods=start + len(values)).date[start:]
    return pd.DataFrame({"trade_date": days, "ic": values, "rank_ic": values})


def test_oracle_canary_fails_a_model_beyond_the_oracle_with_hand_computed_statistics():
    oracle = _daily([0.10, 0.10, 0.10, 0.10])
    model = _daily([0.20, 0.40, 0.30, 0.50])
    # differences 0.1, 0.3, 0.2, 0.4: mean 0.25, sd sqrt(0.05/3), se sd/2 -> z 3.873
    result = oracle_ceiling_canary(model, oracle, z=3.0)
    se = math.sqrt(0.05 / 3) / 2
    assert result.name == ORACLE_CEILING
    assert not result.passed
    assert result.statistic == pytest.approx(0.25)
    assert result.threshold == pytest.approx(3.0 * se)
    assert result.detail["z_score"] == pytest.approx(0.25 / se)
    assert result.detail["n_days"] == 4
    assert result.message == (
        "model Rank IC 0.350 is above the oracle's 0.100 by 0.250 (3.9 standard errors > 3): "
        "the model has seen the future; check the features for leaked labels"
    )
    # the same gap with a looser bar is within noise
    assert oracle_ceiling_canary(model, oracle, z=4.0).passed
    json.dumps(result.as_dict())


def test_oracle_canary_pairs_dates_and_passes_honest_models():
    oracle = _daily([0.10, 0.12, 0.08, 0.11, 0.09, 0.10])
    model = _daily([0.02, 0.05, -0.01, 0.04, 0.03, 0.99], start=0)
    # the last model day has no oracle partner once the oracle loses it: it must not count
    result = oracle_ceiling_canary(model, oracle.iloc[:5])
    assert result.passed
    assert result.detail["n_days"] == 5
    assert result.detail["model_rank_ic"] == pytest.approx(np.mean([0.02, 0.05, -0.01, 0.04, 0.03]))
    assert result.statistic < 0
    assert "below the oracle's" in result.message


def test_oracle_canary_degenerate_input():
    with pytest.raises(ValueError, match="at least 2 dates"):
        oracle_ceiling_canary(_daily([0.1]), _daily([0.1]))
    with pytest.raises(ValueError, match="rank_ic"):
        oracle_ceiling_canary(_daily([0.1, 0.2]).drop(columns="rank_ic"), _daily([0.1, 0.2]))
    # identical daily gaps: a certain excess, no standard error to hide behind
    certain = oracle_ceiling_canary(_daily([0.5, 0.75]), _daily([0.25, 0.5]))
    assert not certain.passed and math.isinf(certain.detail["z_score"])


def test_oracle_daily_rank_ic_uses_the_prediction_rows():
    frame = _days_frame(n_days=5, n_symbols=6)
    oracle = frame[["trade_date", "symbol"]].assign(expected_return=frame["forward_return"] * 3 + 1)
    oracle.loc[oracle.index[::4], "expected_return"] *= -1  # break a few ranks
    predictions = frame.iloc[:-2]  # the last two rows of the last day have no prediction
    daily = oracle_daily_rank_ic(predictions, oracle)
    merged = predictions.merge(oracle, on=["trade_date", "symbol"])
    expected = [stats.spearmanr(g["expected_return"], g["forward_return"]).statistic for _, g in merged.groupby("trade_date")]
    np.testing.assert_allclose(daily["rank_ic"], expected, atol=1e-12)


def test_oracle_daily_rank_ic_bad_input():
    frame = _days_frame(n_days=3, n_symbols=5)
    oracle = frame[["trade_date", "symbol"]].assign(expected_return=frame["forward_return"])
    with pytest.raises(ValueError, match="no oracle expected return"):
        oracle_daily_rank_ic(frame, oracle.iloc[1:])
    with pytest.raises(ValueError, match="several horizons"):
        oracle_daily_rank_ic(frame, pd.concat([oracle.assign(horizon="1d"), oracle.assign(horizon="1w")]))
    with pytest.raises(ValueError, match="duplicated"):
        oracle_daily_rank_ic(frame, pd.concat([oracle, oracle]))


# ----------------------------------------------------------------------------- real pipelines


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    prices = generate_prices(CONFIG)
    features = compute_technical_features(prices)
    dataset = join_features_labels(features, compute_labels(prices, HORIZON), list(FEATURE_NAMES))
    oracle = generate_oracle(CONFIG)
    oracle = oracle[oracle["horizon"] == HORIZON].drop(columns="horizon")
    return dataset, oracle


def _lightgbm_pipeline(frame: pd.DataFrame, seed: int, *, leak: bool = False) -> pd.DataFrame:
    """Train/validation/test by date with purging, LightGBM early-stopped on validation,
    out-of-sample test predictions. `leak=True` plants the classic bug: the label joined
    into the features."""
    frame = frame.copy()
    frame["target"] = normalized_target(frame, "forward_return")
    names = list(FEATURE_NAMES)
    if leak:
        frame["leaked_label"] = frame["forward_return"]
        names.append("leaked_label")
    before_test, test, _ = date_split(frame, 0.3)
    train, val, _ = date_split(before_test, 0.2)
    model = fit_regressor(
        "lightgbm",
        train[names].to_numpy(dtype="float64"), train["target"].to_numpy(),
        val[names].to_numpy(dtype="float64"), val["target"].to_numpy(),
        feature_names=names, seed=seed, params={"num_boost_round": 300},
        num_threads=1,  # OpenMP threads spin badly when the 2-core test machine is busy
    )
    out = test[["trade_date", "symbol", "forward_return"]].copy()
    out["score"] = model.predict(test[names].to_numpy(dtype="float64"))
    return out.reset_index(drop=True)


def test_lightgbm_on_shuffled_labels_passes_the_canary(market):
    dataset, _ = market
    result = shuffled_label_canary(_lightgbm_pipeline, dataset, label_columns=["forward_return", "excess_return"])
    assert result.passed, result.message
    assert abs(result.statistic) <= 0.02
    assert {f"seed_{s}_rank_ic" for s in (11, 12, 13)} <= set(result.detail)
    assert all(result.detail[f"seed_{s}_n_days"] > 100 for s in (11, 12, 13))


def test_label_in_the_features_fails_the_oracle_canary_and_an_honest_model_passes(market):
    dataset, oracle = market
    honest = _lightgbm_pipeline(dataset, 7)
    leaky = _lightgbm_pipeline(dataset, 7, leak=True)
    oracle_daily = oracle_daily_rank_ic(honest, oracle)
    assert oracle_daily["rank_ic"].mean() > 0.05  # the planted signals are there to be found

    honest_result = oracle_ceiling_canary(daily_ic(honest, "score", "forward_return"), oracle_daily)
    assert honest_result.passed, honest_result.message
    assert honest_result.detail["model_rank_ic"] > 0.0  # an honest model has some skill, below the oracle

    leaky_result = oracle_ceiling_canary(daily_ic(leaky, "score", "forward_return"), oracle_daily_rank_ic(leaky, oracle))
    assert not leaky_result.passed
    assert leaky_result.detail["model_rank_ic"] > 0.8
    assert "the model has seen the future; check the features for leaked labels" in leaky_result.message


def test_a_leaky_pipeline_also_fails_the_shuffled_canary(market):
    # a pipeline that joins the (shuffled) label into its features finds "skill" even in
    # shuffled labels: exactly what the canary is there to catch
    dataset, _ = market
    result = shuffled_label_canary(
        lambda frame, seed: _lightgbm_pipeline(frame, seed, leak=True), dataset,
        label_columns=["forward_return", "excess_return"], seeds=(11,),
    )
    assert not result.passed
    assert result.statistic > 0.5


def test_oracle_ceiling_counts_overlapping_labels_once():
    """With 1m labels consecutive daily Rank ICs share 20 of 21 returns: a gap that is a few
    plain standard errors is noise once the overlap is counted (Newey-West, lag 21), and a
    honest model is not called a leak."""
    rng = np.random.default_rng(5)
    days = 300
    # daily differences with the moving-average dependence of 21-session overlapping labels
    shocks = rng.normal(0.0, 0.05, days + 20)
    difference = np.convolve(shocks, np.ones(21) / 21, mode="valid")
    difference = difference - difference.mean() + 0.006  # a small positive gap, as by chance
    oracle = _daily(np.zeros(days))
    model = _daily(difference)
    plain = oracle_ceiling_canary(model, oracle, z=3.0)
    robust = oracle_ceiling_canary(model, oracle, z=3.0, lag=21)
    assert not plain.passed  # the plain standard error is far too small for such a series
    assert robust.passed, robust.message
    assert robust.detail["gap_se"] > 3 * plain.detail["gap_se"] and robust.detail["lag"] == 21
