"""The normalized target and the evaluation metrics, against hand-computed values and scipy
references (the return calibration: test_return_calibration.py)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score, roc_auc_score

from vfr_ml_pipelines.lib.models.dataset import normalized_target
from vfr_ml_pipelines.lib.models.metrics import daily_ic, evaluate, expected_calibration_error

D1, D2, D3, D4 = (date(2024, 3, 4) + timedelta(days=i) for i in range(4))


# ------------------------------------------------------------------ normalized target


def test_normalized_target_against_hand_computed_values():
    # rows of the days interleaved and a non-default index: the result must follow the index
    frame = pd.DataFrame(
        {
            "trade_date": [D1, D2, D1, D3, D1, D3, D1, D3, D4, D4, D4],
            "forward_return": [1.0, 5.0, 2.0, 0.1, 3.0, 0.1, 6.0, 0.1, 1.0, np.nan, 3.0],
        },
        index=[10, 3, 7, 1, 0, 5, 2, 9, 4, 8, 6],
    )
    z = normalized_target(frame, clip=1.5)
    # D1: [1, 2, 3, 6], mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5)
    s = math.sqrt(3.5)
    expected = pd.Series(
        [-2 / s, 0.0, -1 / s, 0.0, 0.0, 0.0, 1.5, 0.0, -1.0, np.nan, 1.0],  # 3 / s = 1.60 is clipped to 1.5
        index=frame.index, name="forward_return_z",
    )
    # D2 has one row, D3 three equal values (std 0), D4 [1, NaN, 3]: mean 2, std 1, NaN kept
    pd.testing.assert_series_equal(z, expected, rtol=1e-12)


def test_normalized_target_matches_a_groupby_reference():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"trade_date": rng.choice(pd.date_range("2024-01-01", periods=30).date, 2000),
                          "excess_return": rng.standard_t(3, 2000) * 0.02})
    reference = frame.groupby("trade_date")["excess_return"].transform(lambda s: (s - s.mean()) / s.std(ddof=0)).clip(-3, 3)
    z = normalized_target(frame, label="excess_return")
    np.testing.assert_allclose(z.to_numpy(), reference.to_numpy(), rtol=1e-10, atol=1e-12)
    assert z.abs().max() == 3.0  # fat tails reach the clip
    # unclipped days have mean 0 and unit population std
    unclipped = normalized_target(frame, label="excess_return", clip=1e9).groupby(frame["trade_date"])
    np.testing.assert_allclose(unclipped.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(unclipped.std(ddof=0), 1.0, rtol=1e-12)


def test_normalized_target_errors():
    frame = pd.DataFrame({"trade_date": [D1], "forward_return": [0.1]})
    with pytest.raises(ValueError, match="no column 'excess_return'"):
        normalized_target(frame, label="excess_return")
    with pytest.raises(ValueError, match="clip must be > 0"):
        normalized_target(frame, clip=0)


# ------------------------------------------------------------------ metrics


def _hand_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "trade_date": [D1] * 4 + [D2] * 4,
        "score": [1.0, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0, 1.0],
        "forward_return": [-0.02, 0.01, 0.00, 0.03, 0.02, -0.01, 0.01, -0.03],
        "probability": [0.3, 0.6, 0.7, 0.9, 0.8, 0.45, 0.55, 0.2],
    })


def test_evaluate_against_hand_computed_values():
    frame = _hand_frame()
    result = evaluate(frame)
    ic1 = np.corrcoef(frame["score"][:4], frame["forward_return"][:4])[0, 1]
    ic2 = np.corrcoef(frame["score"][4:], frame["forward_return"][4:])[0, 1]
    assert result["ic"] == pytest.approx((ic1 + ic2) / 2)
    assert result["ic_std"] == pytest.approx(abs(ic1 - ic2) / math.sqrt(2))
    assert result["icir"] == pytest.approx((ic1 + ic2) / 2 / (abs(ic1 - ic2) / math.sqrt(2)))
    # each day's ranks differ by one swap: Spearman 1 - 6 * 2 / (4 * 15) = 0.8 on both days
    assert result["rank_ic"] == pytest.approx(0.8)
    assert result["rank_ic_std"] == pytest.approx(0.0, abs=1e-12)
    # up = [F T F T | T F T F]; predicted up (p > 0.5) = [F T T T | T F T F]: one false positive
    assert result["direction_accuracy"] == pytest.approx(7 / 8)
    assert result["precision"] == pytest.approx(4 / 5)
    assert result["recall"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(2 * 0.8 / 1.8)
    # positives' p [0.6 0.9 0.8 0.55] vs negatives' [0.3 0.7 0.45 0.2]: 14 of 16 pairs ordered
    assert result["auc"] == pytest.approx(14 / 16)
    assert result["brier"] == pytest.approx((0.09 + 0.16 + 0.49 + 0.01 + 0.04 + 0.2025 + 0.2025 + 0.04) / 8)
    # one row per bin: ECE is the mean of |p - up|
    assert result["ece"] == pytest.approx((0.3 + 0.4 + 0.7 + 0.1 + 0.2 + 0.45 + 0.45 + 0.2) / 8)
    assert (result["n_days"], result["n_rows"]) == (2.0, 8.0)
    assert set(result) == {"ic", "ic_std", "icir", "rank_ic", "rank_ic_std", "rank_icir", "direction_accuracy",
                           "precision", "recall", "f1", "auc", "brier", "ece", "n_days", "n_rows"}


def test_rank_icir_is_nan_when_the_rank_ic_does_not_vary():
    assert math.isnan(evaluate(_hand_frame())["rank_icir"])


def test_evaluate_without_a_probability_uses_the_score():
    frame = _hand_frame().drop(columns="probability")
    frame["score"] = [-1.0, 0.5, -0.2, 2.0, 1.0, -0.3, 0.2, -2.0]
    result = evaluate(frame, probability=None)
    up = frame["forward_return"] > 0
    assert result["direction_accuracy"] == pytest.approx(((frame["score"] > 0) == up).mean())
    # the score orders every positive above every negative
    assert result["auc"] == pytest.approx(1.0)
    assert math.isnan(result["brier"]) and math.isnan(result["ece"])
    with pytest.raises(ValueError, match="no column 'probability'; pass probability=None"):
        evaluate(frame)


def test_expected_calibration_error_with_shared_bins_and_the_closed_last_bin():
    # bin [0.1, 0.2): mean p 0.15, up rate 0.5; last bin [0.9, 1.0]: mean p 0.975, rate 1
    assert expected_calibration_error(np.array([0.12, 0.18, 1.0, 0.95]), np.array([0, 1, 1, 1])) == pytest.approx(
        0.35 * 2 / 4 + 0.025 * 2 / 4)
    assert math.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_degenerate_inputs_give_nan_not_exceptions():
    frame = _hand_frame()
    one_class = frame.assign(forward_return=frame["forward_return"].abs() + 0.01)
    result = evaluate(one_class)
    # every row is up and 5 of 8 are predicted up
    assert math.isnan(result["auc"]) and math.isfinite(result["brier"])
    assert (result["precision"], result["recall"]) == (1.0, 5 / 8)
    one_day = evaluate(frame[frame["trade_date"] == D1])
    assert one_day["n_days"] == 1.0 and math.isnan(one_day["ic_std"]) and math.isnan(one_day["icir"])
    empty = evaluate(frame.iloc[:0])
    assert empty["n_rows"] == 0.0 and empty["n_days"] == 0.0
    assert all(math.isnan(v) for k, v in empty.items() if k not in ("n_rows", "n_days"))
    nan_scores = evaluate(frame.assign(score=np.nan))
    assert nan_scores["n_rows"] == 0.0 and math.isnan(nan_scores["rank_ic"])
    constant = evaluate(frame.assign(score=0.1, probability=0.4))  # no day has a varying score
    assert constant["n_days"] == 0.0 and math.isnan(constant["ic"]) and constant["auc"] == 0.5
    assert math.isnan(constant["precision"])  # nothing predicted up
    partial = frame.copy()
    partial.loc[0, "probability"] = np.nan
    assert evaluate(partial)["n_rows"] == 7.0
    with pytest.raises(ValueError, match=r"1 value\(s\) of 'probability' are outside \[0, 1\]"):
        evaluate(frame.assign(probability=[0.5] * 7 + [1.5]))


def test_daily_ic_equals_scipy_per_day():
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=40).date
    frame = pd.DataFrame({"trade_date": rng.choice(days, 3000)})
    frame["prediction"] = np.round(rng.normal(size=3000), 1)  # ties
    frame["label"] = 0.3 * frame["prediction"] + rng.normal(size=3000)
    frame.loc[rng.random(3000) < 0.05, "label"] = np.nan
    # a day of 2 rows, a day with a constant prediction and a day with a constant label: no IC
    extra = pd.DataFrame({
        "trade_date": [date(2025, 1, 1)] * 2 + [date(2025, 1, 2)] * 5 + [date(2025, 1, 3)] * 5,
        "prediction": [1.0, 2.0] + [0.7] * 5 + [1.0, 2.0, 3.0, 4.0, 5.0],
        "label": [1.0, 2.0] + [1.0, 2.0, 3.0, 4.0, 5.0] + [0.1] * 5,
    })
    frame = pd.concat([frame, extra], ignore_index=True).sample(frac=1.0, random_state=1)
    result = daily_ic(frame, "prediction", "label")
    assert list(result["trade_date"]) == sorted(days)
    for row in result.itertuples():
        day = frame[(frame["trade_date"] == row.trade_date) & frame["label"].notna()]
        assert row.ic == pytest.approx(stats.pearsonr(day["prediction"], day["label"]).statistic, abs=1e-12)
        assert row.rank_ic == pytest.approx(stats.spearmanr(day["prediction"], day["label"]).statistic, abs=1e-12)


def test_daily_ic_with_nothing_to_score():
    result = daily_ic(pd.DataFrame({"trade_date": [], "p": [], "y": []}), "p", "y")
    assert list(result.columns) == ["trade_date", "ic", "rank_ic"] and result.empty
    with pytest.raises(ValueError, match="no column 'q'"):
        daily_ic(pd.DataFrame({"trade_date": [D1], "p": [1.0], "y": [1.0]}), "q", "y")


@pytest.mark.parametrize("case", ["mixed", "never_up_predicted", "all_up", "by_score"])
def test_classification_metrics_equal_sklearn(case):
    rng = np.random.default_rng(8)
    n = 5000
    frame = pd.DataFrame({"trade_date": rng.choice(pd.date_range("2024-01-01", periods=20).date, n),
                          "score": rng.normal(size=n)})
    frame["forward_return"] = 0.3 * frame["score"] + rng.normal(size=n)
    frame["probability"] = expit(frame["score"] + rng.normal(scale=0.5, size=n))
    probability: str | None = "probability"
    if case == "never_up_predicted":
        frame["probability"] *= 0.5
    elif case == "all_up":
        frame["forward_return"] = frame["forward_return"].abs() + 1e-3
    elif case == "by_score":
        probability = None
    result = evaluate(frame, probability=probability)
    up = frame["forward_return"] > 0
    predicted_up = frame["probability"] > 0.5 if probability else frame["score"] > 0
    for name, metric in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        np.testing.assert_equal(result[name], metric(up, predicted_up, zero_division=np.nan))
    assert result["direction_accuracy"] == pytest.approx((up == predicted_up).mean())
    if case == "all_up":
        assert math.isnan(result["auc"])
    else:
        ranked = frame["probability"] if probability else frame["score"]
        assert result["auc"] == pytest.approx(roc_auc_score(up, ranked), abs=1e-12)
    if probability:
        assert result["brier"] == pytest.approx(brier_score_loss(up, frame["probability"]), abs=1e-12)
