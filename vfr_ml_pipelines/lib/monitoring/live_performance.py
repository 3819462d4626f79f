"""Live skill of a served model from its realized outcomes (concept drift / decay).

Input: one row per (trade_date, symbol, horizon, model) with the served `score`, `probability`
(P(up)) and the `realized_return` once known. For one model and horizon, over the trailing
`trailing_sessions` dates that have outcomes:

* Rank IC per date (Spearman of score and realized return, `models.metrics.daily_ic`), its mean
  and a standard error that counts overlapping labels once. An h-session label observed daily
  overlaps its h-1 neighbours, so consecutive daily ICs are correlated and the naive
  std / sqrt(n) is too small by about sqrt(h). ``ic_method="newey_west"`` (default) keeps every
  date and uses the Newey-West (Bartlett) long-run variance with h-1 lags;
  ``"non_overlapping"`` keeps every h-th date counting back from the latest (fewer dates, no
  correlation by construction). Both agree with the plain t for h = 1. The interval and tests
  use Student's t with n_effective - 1 degrees of freedom (n_effective = dates / h).
* Direction accuracy: share of rows where probability > 0.5 agrees with realized_return > 0
  (as `models.metrics.evaluate`), with a Wilson interval on n_effective = rows / h trials: the
  overlap correction only. Symbols of one date also move together, so even that interval is
  optimistic; read it as a lower bound on the uncertainty.
* Brier score of probability against up, and a reliability table of `reliability_bins`
  equal-width bins (the last closed).
* Decay: live mean Rank IC significantly below the validated level: the one-sided test
  t = (live - validated) / se < -t_crit(1 - alpha), with at least `min_dates` dates.
* Shadow against champion: the paired daily difference of Rank IC on their common dates, with
  the same standard error; the shadow beats the champion when t > t_crit(1 - alpha).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vfr_ml_pipelines.lib.horizons import horizon_days
from vfr_ml_pipelines.lib.models.metrics import daily_ic
from vfr_ml_pipelines.lib.monitoring.plots import reliability_png

IC_METHODS = ("newey_west", "non_overlapping")
OUTCOME_COLUMNS = ("trade_date", "symbol", "horizon", "model", "score", "probability", "realized_return")


@dataclass(frozen=True)
class LivePerformanceConfig:
    trailing_sessions: int = 60  # about three months: enough dates for a 1m label's n_effective
    alpha: float = 0.05
    ic_method: str = "newey_west"
    reliability_bins: int = 10
    min_dates: int = 10

    def __post_init__(self) -> None:
        if self.ic_method not in IC_METHODS:
            raise ValueError(f"ic_method must be one of {IC_METHODS}, got {self.ic_method!r}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")


@dataclass(frozen=True)
class MeanEstimate:
    mean: float
    se: float
    n: int  # values used
    n_effective: float

    def t_against(self, level: float = 0.0) -> float:
        return (self.mean - level) / self.se if self.se > 0 else float("nan")

    def interval(self, alpha: float) -> tuple[float, float]:
        if not self.se > 0 or self.n_effective < 2:
            return float("nan"), float("nan")
        half = stats.t.ppf(1 - alpha / 2, self.n_effective - 1) * self.se
        return self.mean - half, self.mean + half


def overlap_adjusted_mean(values: Sequence[float], horizon_sessions: int, method: str = "newey_west") -> MeanEstimate:
    """Mean of a daily series of h-session-label statistics, in date order, and its standard
    error with overlapping labels counted once (module docstring)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    h = int(horizon_sessions)
    if method == "non_overlapping":
        x = x[::-1][::h]
    if len(x) < 2:
        return MeanEstimate(float(x.mean()) if len(x) else float("nan"), float("nan"), len(x), float(len(x)))
    if method == "non_overlapping":
        return MeanEstimate(float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))), len(x), float(len(x)))
    centred = x - x.mean()
    n = len(x)
    long_run = centred @ centred / n
    for lag in range(1, min(h, n)):
        long_run += 2.0 * (1.0 - lag / h) * (centred[lag:] @ centred[:-lag]) / n
    # ddof=1 on the plain variance keeps h = 1 equal to the textbook std / sqrt(n)
    se = math.sqrt(max(long_run, 0.0) * n / (n - 1) / n)
    return MeanEstimate(float(x.mean()), se, n, n / h)


def wilson_interval(successes: float, trials: float, alpha: float = 0.05) -> tuple[float, float]:
    if trials <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(1 - alpha / 2)
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_table(probability: np.ndarray, up: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per equal-width probability bin: count, mean probability, observed up-rate (NaN when empty)."""
    probability = np.asarray(probability, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    which = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_probability = np.bincount(which, weights=probability, minlength=bins) / count
        observed = np.bincount(which, weights=up, minlength=bins) / count
    edges = np.arange(bins + 1) / bins
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count,
                         "mean_probability": mean_probability, "observed_rate": observed})


def _model_rows(outcomes: pd.DataFrame, model: str, horizon: str, trailing_sessions: int) -> pd.DataFrame:
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"outcomes: missing column(s) {missing}")
    rows = outcomes[(outcomes["model"] == model) & (outcomes["horizon"] == horizon)]
    rows = rows[np.isfinite(pd.to_numeric(rows["realized_return"], errors="coerce"))]
    dates = np.sort(rows["trade_date"].unique())[-trailing_sessions:]
    return rows[rows["trade_date"].isin(dates)]


@dataclass(frozen=True)
class LivePerformance:
    model: str
    horizon: str
    n_dates: int
    n_rows: int
    rank_ic: MeanEstimate
    rank_ic_interval: tuple[float, float]
    direction_accuracy: float
    accuracy_interval: tuple[float, float]
    brier: float
    reliability: pd.DataFrame
    daily: pd.DataFrame  # trade_date, ic, rank_ic
    validated_rank_ic: float | None
    decay_t: float
    decayed: bool

    def row(self) -> dict[str, object]:
        return {
            "model": self.model, "horizon": self.horizon, "dates": self.n_dates, "rows": self.n_rows,
            "rank_ic": self.rank_ic.mean, "rank_ic_low": self.rank_ic_interval[0], "rank_ic_high": self.rank_ic_interval[1],
            "rank_ic_t": self.rank_ic.t_against(0.0), "n_effective": self.rank_ic.n_effective,
            "direction_accuracy": self.direction_accuracy, "accuracy_low": self.accuracy_interval[0],
            "accuracy_high": self.accuracy_interval[1], "brier": self.brier,
            "validated_rank_ic": self.validated_rank_ic, "decay_t": self.decay_t, "decayed": self.decayed,
        }

    def reliability_png(self) -> bytes:
        return reliability_png(self.reliability, title=f"{self.model} {self.horizon}: reliability")


def performance_table(results: Sequence[LivePerformance]) -> pd.DataFrame:
    return pd.DataFrame([result.row() for result in results])


def live_performance(
    outcomes: pd.DataFrame,
    *,
    model: str,
    horizon: str,
    validated_rank_ic: float | None = None,
    config: LivePerformanceConfig = LivePerformanceConfig(),
) -> LivePerformance:
    h = horizon_days(horizon)
    rows = _model_rows(outcomes, model, horizon, config.trailing_sessions)
    daily = daily_ic(rows, "score", "realized_return")
    estimate = overlap_adjusted_mean(daily["rank_ic"].to_numpy(), h, config.ic_method)
    probability = pd.to_numeric(rows["probability"], errors="coerce").to_numpy(dtype=np.float64)
    realized = rows["realized_return"].to_numpy(dtype=np.float64)
    scored = np.isfinite(probability)
    up = (realized[scored] > 0).astype(np.float64)
    hits = float(np.mean((probability[scored] > 0.5) == (up > 0))) if scored.any() else float("nan")
    trials = scored.sum() / h
    accuracy_interval = wilson_interval(hits * trials, trials, config.alpha) if scored.any() else (float("nan"), float("nan"))
    decay_t = estimate.t_against(validated_rank_ic) if validated_rank_ic is not None else float("nan")
    critical = stats.t.ppf(1 - config.alpha, estimate.n_effective - 1) if estimate.n_effective > 1 else float("inf")
    decayed = bool(len(daily) >= config.min_dates and np.isfinite(decay_t) and decay_t < -critical)
    return LivePerformance(
        model, horizon, len(daily), len(rows), estimate, estimate.interval(config.alpha), hits, accuracy_interval,
        float(np.mean((probability[scored] - up) ** 2)) if scored.any() else float("nan"),
        reliability_table(probability[scored], up, config.reliability_bins), daily.reset_index(drop=True),
        validated_rank_ic, float(decay_t), decayed,
    )


@dataclass(frozen=True)
class ShadowComparison:
    champion: str
    shadow: str
    horizon: str
    difference: MeanEstimate  # shadow minus champion daily Rank IC, on common dates
    t: float
    shadow_beats_champion: bool


def compare_shadow(
    outcomes: pd.DataFrame, *, champion: str, shadow: str, horizon: str,
    config: LivePerformanceConfig = LivePerformanceConfig(),
) -> ShadowComparison:
    """Paired test on daily Rank IC: does the shadow beat the champion live?"""
    h = horizon_days(horizon)
    per_model = [
        daily_ic(_model_rows(outcomes, name, horizon, config.trailing_sessions), "score", "realized_return").set_index("trade_date")["rank_ic"]
        for name in (champion, shadow)
    ]
    paired = pd.concat(per_model, axis=1, keys=["champion", "shadow"], join="inner").sort_index()
    difference = overlap_adjusted_mean((paired["shadow"] - paired["champion"]).to_numpy(), h, config.ic_method)
    t = difference.t_against(0.0)
    critical = stats.t.ppf(1 - config.alpha, difference.n_effective - 1) if difference.n_effective > 1 else float("inf")
    beats = bool(len(paired) >= config.min_dates and np.isfinite(t) and t > critical)
    return ShadowComparison(champion, shadow, horizon, difference, float(t), beats)
