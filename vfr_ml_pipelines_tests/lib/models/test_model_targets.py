"""The training targets: the per-day z-score and the rank-gauss transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from vfr_ml_pipelines.lib.models.dataset import rank_gauss_target, training_target


def test_rank_gauss_against_hand_computed_values():
    frame = pd.DataFrame({
        "trade_date": [1, 1, 1, 1, 2, 2, 3],
        "forward_return": [0.1, -0.2, 0.3, np.nan, 1.0, 1.0, 5.0],
    })
    g = rank_gauss_target(frame)
    # day 1: ranks 2, 1, 3 of 3 -> Phi^-1(0.5), Phi^-1(1/6), Phi^-1(5/6), scaled to unit RMS
    q = norm.ppf(5 / 6)
    assert g.iloc[0] == 0.0
    assert g.iloc[1] == pytest.approx(-q / np.sqrt(2 * q * q / 3))
    assert g.iloc[2] == pytest.approx(q / np.sqrt(2 * q * q / 3))
    assert np.isnan(g.iloc[3])
    # a day of equal labels and a day of one label carry no ranking
    assert g.iloc[4:].tolist() == [0.0, 0.0, 0.0]


def test_rank_gauss_keeps_only_the_order_and_ignores_outliers():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"trade_date": np.repeat([1, 2], 50), "forward_return": rng.normal(size=100)})
    base = rank_gauss_target(frame)
    extreme = frame.assign(forward_return=frame["forward_return"].where(frame.index != 7, 1e6))
    moved = rank_gauss_target(extreme)
    # the outlier takes the top rank of its day; no other row's value changes by more than one rank step
    assert moved.iloc[7] == moved.iloc[:50].max()
    assert np.allclose(base.iloc[50:], moved.iloc[50:])
    for day in (slice(0, 50), slice(50, 100)):
        assert np.mean(base.iloc[day] ** 2) == pytest.approx(1.0)
        assert (base.iloc[day].rank().to_numpy() == frame["forward_return"].iloc[day].rank().to_numpy()).all()


def test_training_target_dispatch_and_errors():
    frame = pd.DataFrame({"trade_date": [1, 1, 1], "forward_return": [0.1, 0.2, 0.4]})
    assert training_target(frame, "rank_gauss").name == "forward_return_rg"
    assert training_target(frame, "zscore").name == "forward_return_z"
    with pytest.raises(ValueError, match="unknown training target 'rank'"):
        training_target(frame, "rank")
    with pytest.raises(ValueError, match="'trade_date'"):
        rank_gauss_target(frame.drop(columns="trade_date"))
