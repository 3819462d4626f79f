from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.monitoring import live_performance as lp
from vfr_ml_pipelines.lib.monitoring.live_performance import LivePerformanceConfig, compare_shadow, live_performance


def _outcomes(skills: dict[str, float], *, horizon: str = "1d", n_dates: int = 80, n_symbols: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2026-01-05", periods=n_dates).date
    frames = []
    signal = rng.normal(size=(n_dates, n_symbols))
    realized = 0.01 * (0.3 * signal + rng.normal(size=(n_dates, n_symbols)))
    for model, skill in skills.items():
        score = skill * signal + rng.normal(size=(n_dates, n_symbols))
        probability = 1 / (1 + np.exp(-2 * score))
        frames.append(pd.DataFrame({
            "trade_date": np.repeat(dates, n_symbols), "symbol": np.tile([f"S{i}" for i in range(n_symbols)], n_dates),
            "horizon": horizon, "model": model, "score": score.ravel(), "probability": probability.ravel(),
            "realized_return": realized.ravel(),
        }))
    return pd.concat(frames, ignore_index=True)


def test_plain_t_for_one_day_labels_and_every_hth_date_when_non_overlapping() -> None:
    x = np.random.default_rng(1).normal(size=50)
    for method in lp.IC_METHODS:
        estimate = lp.overlap_adjusted_mean(x, 1, method)
        assert estimate.se == pytest.approx(x.std(ddof=1) / math.sqrt(50), rel=1e-12)
    sampled = lp.overlap_adjusted_mean(np.arange(10.0), 3, "non_overlapping")
    assert sampled.n == 4 and sampled.mean == pytest.approx(np.mean([9, 6, 3, 0]))


@pytest.mark.parametrize("method", lp.IC_METHODS)
def test_overlap_adjusted_interval_covers_where_the_naive_one_does_not(method: str) -> None:
    # a daily statistic of 5-session labels: a moving sum of 5 independent daily shocks
    rng = np.random.default_rng(7)
    h, n, hits_adjusted, hits_naive = 5, 250, 0, 0
    for _ in range(300):
        series = np.convolve(rng.normal(size=n + h - 1), np.ones(h), mode="valid")
        estimate = lp.overlap_adjusted_mean(series, h, method)
        low, high = estimate.interval(0.05)
        hits_adjusted += low <= 0 <= high
        naive = 1.97 * series.std(ddof=1) / math.sqrt(n)
        hits_naive += abs(series.mean()) <= naive
    assert 0.88 <= hits_adjusted / 300 <= 0.99
    assert hits_naive / 300 < 0.8


def test_wilson_interval_known_values() -> None:
    low, high = lp.wilson_interval(8, 10, 0.05)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert lp.wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in lp.wilson_interval(0, 0))


def test_reliability_table_bins() -> None:
    table = lp.reliability_table(np.array([0.05, 0.15, 0.15, 1.0]), np.array([0, 1, 0, 1]), bins=10)
    assert table["count"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert table.loc[1, "observed_rate"] == 0.5 and table.loc[1, "mean_probability"] == pytest.approx(0.15)
    assert math.isnan(table.loc[2, "observed_rate"])


def test_skilled_model_is_not_decayed_and_a_dead_one_is() -> None:
    outcomes = _outcomes({"champion": 1.0, "dead": 0.0}, n_dates=60)
    good = live_performance(outcomes, model="champion", horizon="1d", validated_rank_ic=0.2)
    assert good.rank_ic.mean > 0.15 and not good.decayed
    assert good.rank_ic_interval[0] < good.rank_ic.mean < good.rank_ic_interval[1]
    assert 0.5 < good.direction_accuracy < 1 and good.accuracy_interval[0] < good.direction_accuracy
    rows = outcomes[outcomes["model"] == "champion"]
    assert good.brier == pytest.approx(np.mean((rows["probability"] - (rows["realized_return"] > 0)) ** 2))
    assert good.reliability["count"].sum() == good.n_rows
    dead = live_performance(outcomes, model="dead", horizon="1d", validated_rank_ic=0.2)
    assert dead.decayed and dead.decay_t < -3
    table = lp.performance_table([good, dead])
    assert table["decayed"].tolist() == [False, True]
    assert good.reliability_png().startswith(b"\x89PNG")


def test_trailing_window_and_min_dates() -> None:
    outcomes = _outcomes({"m": 0.0}, n_dates=30)
    result = live_performance(outcomes, model="m", horizon="1d", validated_rank_ic=0.5,
                              config=LivePerformanceConfig(trailing_sessions=8))
    assert result.n_dates == 8 and not result.decayed  # fewer than min_dates: no verdict
    with pytest.raises(ValueError, match="missing column"):
        live_performance(outcomes.drop(columns="score"), model="m", horizon="1d")


def test_overlapping_week_labels_widen_the_interval() -> None:
    outcomes = _outcomes({"m": 0.5}, horizon="1w")
    week = live_performance(outcomes, model="m", horizon="1w")
    day = live_performance(outcomes.assign(horizon="1d"), model="m", horizon="1d")
    assert week.rank_ic.mean == pytest.approx(day.rank_ic.mean)
    assert week.rank_ic.n_effective == pytest.approx(day.rank_ic.n_effective / 5)


def test_shadow_beats_champion_only_when_significantly_better() -> None:
    outcomes = _outcomes({"champion": 0.3, "strong": 1.5, "twin": 0.3}, n_dates=60)
    assert compare_shadow(outcomes, champion="champion", shadow="strong", horizon="1d").shadow_beats_champion
    twin = compare_shadow(outcomes, champion="champion", shadow="twin", horizon="1d")
    assert not twin.shadow_beats_champion and abs(twin.t) < 3
