"""The fair gate: the champion scored on the challenger's validation window, never on data it
saw, and a paired test of the daily Rank IC differences with overlapping labels counted once."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models.algorithms import fit_regressor
from vfr_ml_pipelines.lib.models.comparison import (
    SEEN_UNTIL_TAG,
    ChampionHasSeenWindow,
    PairedComparison,
    compare_daily,
    compare_with_champion,
    default_min_days,
    newey_west_standard_error,
)
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy, decide

PASSING_TAGS = {
    "validation_rank_ic": "0.05", "validation_rank_ic_t": "3.0",
    "canary_shuffled_passed": "true", "canary_oracle_passed": "true",
}
NAMES = ["signal", "noise"]


def test_newey_west_standard_error_against_hand_computed_values():
    x = np.array([1.0, 2.0, 4.0, 1.0])  # mean 2, deviations -1, 0, 2, -1
    # lag 0: population variance / n = (1 + 0 + 4 + 1) / 4 / 4
    assert newey_west_standard_error(x, 0) == pytest.approx(math.sqrt(6 / 4 / 4))
    # lag 1: g1 = (-1*0 + 0*2 + 2*-1) / 4 = -0.5, weight 1 - 1/2; long run = 1.5 + 2 * 0.5 * -0.5 = 1.0
    assert newey_west_standard_error(x, 1) == pytest.approx(math.sqrt(1.0 / 4))
    assert math.isnan(newey_west_standard_error(np.array([1.0]), 3))


def test_overlapping_labels_widen_the_standard_error():
    # a moving sum of 5 white-noise days, as overlapping 1w labels make the daily Rank IC
    rng = np.random.default_rng(1)
    overlapped = np.convolve(rng.normal(size=2005), np.ones(5), mode="valid")
    plain, robust = newey_west_standard_error(overlapped, 0), newey_west_standard_error(overlapped, 5)
    # the true s.e. of the mean of an MA(4) of 5 equal weights is sqrt(5) x the plain one
    assert robust / plain == pytest.approx(math.sqrt(5), rel=0.25)


def _daily(days, values) -> pd.DataFrame:
    return pd.DataFrame({"trade_date": days, "rank_ic": values})


def test_a_window_the_champion_saw_is_refused():
    days = list(pd.bdate_range("2026-01-05", periods=40).date)
    new, old = _daily(days, np.full(40, 0.05)), _daily(days, np.full(40, 0.01))
    with pytest.raises(ChampionHasSeenWindow, match="trained on"):
        compare_daily(new, old, champion="vfr-1w.v1", seen_until=days[10], horizon_days=5)
    ok = compare_daily(new, old, champion="vfr-1w.v1", seen_until=date(2026, 1, 2), horizon_days=5)
    assert ok.refused is None and ok.n_days == 40 and ok.mean_difference == pytest.approx(0.04)


def test_too_few_unseen_sessions_give_no_verdict():
    days = list(pd.bdate_range("2026-01-05", periods=default_min_days(5) - 1).date)
    result = compare_daily(_daily(days, np.ones(len(days))), _daily(days, np.zeros(len(days))),
                           champion="vfr-1w.v1", seen_until=date(2026, 1, 2), horizon_days=5)
    assert result.refused and "needed" in result.refused
    decision = decide(PASSING_TAGS, {}, load_seconds=0.1, size_bytes=10, policy=PromotionPolicy(),
                      comparison=result, champion_id="vfr-1w.v1")
    assert not decision.promote and any("no fair comparison" in f for f in decision.failed)


class _Scorer:
    """A fitted model with the `predict_frame` / `feature_names` of a serving model."""

    def __init__(self, feature: str, frame: pd.DataFrame) -> None:
        X = frame[NAMES].to_numpy()
        self.estimator = fit_regressor("linear", X, frame[feature].to_numpy(), None, None, feature_names=NAMES)
        self.feature_names = NAMES

    def predict_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": self.estimator.predict(rows[NAMES].to_numpy())})


@pytest.fixture(scope="module")
def window():
    """120 sessions x 40 symbols; `signal` predicts the forward return (weakly), `noise` does not."""
    rng = np.random.default_rng(3)
    days = np.repeat(pd.bdate_range("2026-01-05", periods=120).date, 40)
    signal, noise = rng.normal(size=len(days)), rng.normal(size=len(days))
    frame = pd.DataFrame({"trade_date": days, "symbol": np.tile([f"S{i}" for i in range(40)], 120),
                          "signal": signal, "noise": noise})
    frame["forward_return"] = 0.3 * signal + rng.normal(size=len(days))
    return frame


def _decide(challenger, champion, frame, seen_until: date | None):
    tags = {} if seen_until is None else {SEEN_UNTIL_TAG: seen_until.isoformat()}
    comparison = compare_with_champion(frame, challenger, champion, champion_id="vfr-1w.v3",
                                       champion_tags=tags, horizon_days=5)
    decision = decide(PASSING_TAGS, tags, load_seconds=0.1, size_bytes=10, policy=PromotionPolicy(),
                      comparison=comparison, champion_id="vfr-1w.v3")
    return comparison, decision


def test_a_genuinely_better_champion_is_kept(window):
    good, bad = _Scorer("signal", window), _Scorer("noise", window)
    comparison, decision = _decide(bad, good, window, date(2026, 1, 2))
    assert comparison.refused is None and comparison.n_days == 120
    assert comparison.champion_rank_ic > 0.2 and comparison.t < -2
    assert not decision.promote
    assert any("does not beat the champion" in f and "paired t" in f for f in decision.failed)


def test_a_better_challenger_is_promoted(window):
    good, bad = _Scorer("signal", window), _Scorer("noise", window)
    comparison, decision = _decide(good, bad, window, date(2026, 1, 2))
    assert comparison.mean_difference > 0.2 and comparison.t > 2
    assert decision.promote, decision.summary
    assert any("beats the champion" in p for p in decision.passed)


def test_only_sessions_after_what_the_champion_saw_are_compared(window):
    good, bad = _Scorer("signal", window), _Scorer("noise", window)
    seen_until = sorted(set(window["trade_date"]))[79]
    comparison, decision = _decide(good, bad, window, seen_until)
    assert comparison.n_days == 40 and date.fromisoformat(comparison.window_start) > seen_until
    assert decision.promote
    # a champion that trained on (almost) the whole window: refused, and the champion stays
    late = sorted(set(window["trade_date"]))[110]
    comparison, decision = _decide(good, bad, window, late)
    assert comparison.refused and comparison.n_days == 9
    assert not decision.promote


def test_a_champion_without_a_recorded_training_range_is_not_compared(window):
    good, bad = _Scorer("signal", window), _Scorer("noise", window)
    comparison, decision = _decide(good, bad, window, None)
    assert comparison.refused and SEEN_UNTIL_TAG in comparison.refused
    assert not decision.promote


def test_the_comparison_must_be_against_the_current_champion(window):
    good, bad = _Scorer("signal", window), _Scorer("noise", window)
    comparison, _ = _decide(good, bad, window, date(2026, 1, 2))
    restored = PairedComparison.from_json(comparison.to_json())
    assert restored == comparison
    decision = decide(PASSING_TAGS, {}, load_seconds=0.1, size_bytes=10, policy=PromotionPolicy(),
                      comparison=restored, champion_id="vfr-1w.v4")
    assert not decision.promote and any("champion is now vfr-1w.v4" in f for f in decision.failed)
    missing = decide(PASSING_TAGS, {}, load_seconds=0.1, size_bytes=10, policy=PromotionPolicy(), comparison=None)
    assert not missing.promote and any("not scored" in f for f in missing.failed)
    # without a champion the challenger's own significance decides, as before
    assert decide(PASSING_TAGS, None, load_seconds=0.1, size_bytes=10, policy=PromotionPolicy()).promote
