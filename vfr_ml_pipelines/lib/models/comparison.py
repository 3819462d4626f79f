"""The champion scored on the challenger's validation window: a paired, honest comparison.

Comparing a challenger's validation Rank IC with the figure the champion got on its own,
older validation window compares two different periods: a calm quarter flatters whoever
was validated on it. Here both models score the SAME rows, the challenger's most recent
validation window (the final fold's: the production challenger was trained before it), and
the gate reads the daily Rank IC differences.

* **Never on data the champion saw.** Each model version records `seen_until`: the last
  session whose label its production fit used (training rows, and the validation rows of
  early stopping and calibration). Only the window's sessions strictly after it are
  compared, and `assert_unseen` refuses (raises `ChampionHasSeenWindow`) a window that
  starts on or before it. A champion that records no `seen_until` is not compared at all.
* **Overlapping labels counted once.** A 1w label spans 5 sessions, so consecutive daily
  Rank ICs share most of their returns and are strongly autocorrelated; the plain standard
  error of their mean would be far too small. The mean difference's standard error is
  Newey-West (Bartlett kernel) with lag = the horizon in sessions (1, 5, 21), which covers
  the moving-average dependence that overlap creates.
* **Too few unseen sessions, no verdict.** Below `min_days` unseen sessions (default: twice
  the horizon plus 20) the comparison is refused and says why; the gate then keeps the
  champion until enough unseen sessions exist.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models.metrics import daily_ic
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

COMPARISON_TAG = "champion_comparison"
SEEN_UNTIL_TAG = "seen_until"


class ChampionHasSeenWindow(ValueError):
    """The champion trained (or early-stopped, or calibrated) on a session of the window."""


def default_min_days(horizon_days: int) -> int:
    """Unseen sessions needed before a paired comparison is made: 2 x horizon + 20
    (1d 22, 1w 30, 1m 62): at least a few independent labels and 20 daily values."""
    return 2 * int(horizon_days) + 20


def newey_west_standard_error(values: np.ndarray, lag: int) -> float:
    """Standard error of the mean of `values` (a daily series, in order) robust to
    autocorrelation up to `lag`: sqrt((g0 + 2 sum_k (1 - k/(lag+1)) g_k) / n), g_k the
    lag-k autocovariance (divided by n). NaN with fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n < 2:
        return math.nan
    if lag < 0:
        raise ValueError(f"newey_west_standard_error: lag must be >= 0, got {lag}")
    d = x - x.mean()
    long_run = float(d @ d) / n
    for k in range(1, min(int(lag), n - 1) + 1):
        long_run += 2.0 * (1.0 - k / (lag + 1.0)) * float(d[k:] @ d[:-k]) / n
    return math.sqrt(max(long_run, 0.0) / n)


@dataclass(frozen=True)
class PairedComparison:
    """The outcome: figures when compared, `refused` (a reason) when no fair comparison
    could be made."""

    champion: str
    seen_until: str | None
    window_start: str | None = None
    window_end: str | None = None
    n_days: int = 0
    lag: int = 0
    challenger_rank_ic: float = math.nan
    champion_rank_ic: float = math.nan
    mean_difference: float = math.nan
    standard_error: float = math.nan
    t: float = math.nan
    refused: str | None = None

    def describe(self) -> str:
        if self.refused:
            return f"no fair comparison with {self.champion}: {self.refused}"
        return (
            f"on {self.n_days} sessions {self.window_start}..{self.window_end} that {self.champion} never saw "
            f"(it saw up to {self.seen_until}): challenger Rank IC {self.challenger_rank_ic:.4f} vs champion "
            f"{self.champion_rank_ic:.4f}, difference {self.mean_difference:+.4f} (Newey-West lag {self.lag} "
            f"s.e. {self.standard_error:.4f}, paired t = {self.t:.2f})"
        )

    def to_json(self) -> str:
        return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()})

    @classmethod
    def from_json(cls, text: str) -> PairedComparison:
        raw: dict[str, Any] = json.loads(text)
        floats = ("challenger_rank_ic", "champion_rank_ic", "mean_difference", "standard_error", "t")
        return cls(**{k: (math.nan if k in floats and v is None else v) for k, v in raw.items()})


def assert_unseen(window_start: date, seen_until: date, champion: str) -> None:
    """Refuse a comparison window that starts on or before the champion's `seen_until`."""
    if window_start <= seen_until:
        raise ChampionHasSeenWindow(
            f"{champion} saw labels up to {seen_until.isoformat()}, but the comparison window starts on "
            f"{window_start.isoformat()}: it would be scored on data it trained on"
        )


def compare_daily(
    challenger_daily: pd.DataFrame, champion_daily: pd.DataFrame, *, champion: str, seen_until: date,
    horizon_days: int, min_days: int | None = None,
) -> PairedComparison:
    """The paired comparison of two daily Rank IC series (trade_date, rank_ic) on the
    sessions both have, all strictly after `seen_until` (else `ChampionHasSeenWindow`)."""
    both = challenger_daily[["trade_date", "rank_ic"]].merge(
        champion_daily[["trade_date", "rank_ic"]], on="trade_date", suffixes=("_new", "_old")
    ).dropna().sort_values("trade_date")
    need = default_min_days(horizon_days) if min_days is None else int(min_days)
    base = {"champion": champion, "seen_until": seen_until.isoformat(), "lag": int(horizon_days)}
    if len(both) < need:
        return PairedComparison(**base, n_days=len(both),
                                refused=f"only {len(both)} unseen session(s) in the challenger's validation window "
                                        f"(after {seen_until.isoformat()}); {need} needed")
    assert_unseen(both["trade_date"].iloc[0], seen_until, champion)
    diff = (both["rank_ic_new"] - both["rank_ic_old"]).to_numpy()
    se = newey_west_standard_error(diff, horizon_days)
    mean = float(diff.mean())
    return PairedComparison(
        **base, window_start=both["trade_date"].iloc[0].isoformat(), window_end=both["trade_date"].iloc[-1].isoformat(),
        n_days=len(both), challenger_rank_ic=float(both["rank_ic_new"].mean()),
        champion_rank_ic=float(both["rank_ic_old"].mean()), mean_difference=mean, standard_error=se,
        t=mean / se if se > 0 else math.nan,
    )


def _seen_until(tags: Mapping[str, str]) -> date | None:
    try:
        return date.fromisoformat(tags[SEEN_UNTIL_TAG])
    except (KeyError, ValueError):
        return None


def compare_with_champion(
    rows: pd.DataFrame, challenger: ServingModel | str, champion: ServingModel, *, champion_id: str,
    champion_tags: Mapping[str, str], horizon_days: int, label: str = "forward_return", min_days: int | None = None,
) -> PairedComparison:
    """Both models score `rows` (the challenger's final validation window: trade_date,
    symbol, the features, `label`) restricted to the sessions after the champion's
    recorded `seen_until`; then `compare_daily`. `challenger`: its model, or the column of
    `rows` that holds its scores (an ensemble's cross-fitted ones, whose weights were fitted
    on this window: `pipeline.challenger_validation_rows`)."""
    if isinstance(challenger, str) and challenger not in rows.columns:
        raise KeyError(f"compare_with_champion: the challenger's score column {challenger!r} is not in the rows")
    seen_until = _seen_until(champion_tags)
    if seen_until is None:
        return PairedComparison(champion=champion_id, seen_until=None,
                                refused=f"{champion_id} records no '{SEEN_UNTIL_TAG}' (the end of the data it trained on)")
    missing = [f for f in champion.feature_names if f not in rows.columns]
    if missing:
        return PairedComparison(champion=champion_id, seen_until=seen_until.isoformat(),
                                refused=f"{len(missing)} of its features are not in today's matrix (e.g. {missing[0]!r})")
    unseen = rows[pd.to_datetime(rows["trade_date"]).dt.date > seen_until].reset_index(drop=True)
    unseen = unseen.assign(trade_date=pd.to_datetime(unseen["trade_date"]).dt.date)

    def daily(model: ServingModel | str) -> pd.DataFrame:
        score = unseen[model] if isinstance(model, str) else model.predict_frame(unseen)["score"]
        scored = unseen[["trade_date", label]].assign(score=score.to_numpy())
        return daily_ic(scored, "score", label)

    if unseen.empty:
        return compare_daily(pd.DataFrame(columns=["trade_date", "rank_ic"]), pd.DataFrame(columns=["trade_date", "rank_ic"]),
                             champion=champion_id, seen_until=seen_until, horizon_days=horizon_days, min_days=min_days)
    return compare_daily(daily(challenger), daily(champion), champion=champion_id, seen_until=seen_until,
                         horizon_days=horizon_days, min_days=min_days)
