"""The live track record of a served horizon: how the predictions VFR was served did once
their outcomes were known (rows of `store.live_outcomes`).

* `days_with_outcomes`: sessions with at least one realized outcome.
* Rank IC per session: Spearman correlation of the served expected return with the realized
  forward return across symbols (NaN with fewer than two symbols or a constant side). The
  forward returns of consecutive sessions overlap for `1w` / `1m` (h sessions each), so the
  mean and its t statistic are taken over **non-overlapping** sessions: the first session
  with outcomes and every h-th one after it (in the sessions with outcomes), so each
  realized move counts once. t = mean / (std / sqrt(n)), ddof 1.
* `direction_accuracy`: the share of directional calls (UP / DOWN: `direction_correct` not
  NULL, VFR's rule) that were right, over every row (a share is not biased by overlap).
* `topk_return`: the mean realized forward return of the top `topk` served names (by
  expected return), equal weight, long only, over the non-overlapping sessions; only with
  at least `min_periods` such sessions, else None and `days_missing` says how many more
  sessions with outcomes are needed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.horizons import horizon_days

MIN_PERIODS = 10


@dataclass(frozen=True)
class LiveTrackRecord:
    horizon: str
    days_with_outcomes: int
    sampled_days: int
    rank_ic_mean: float
    rank_ic_t: float
    direction_accuracy: float
    topk_return: float | None
    days_missing: int

    def row(self) -> dict:
        return asdict(self)


def _rank_ic(day: pd.DataFrame) -> float:
    if len(day) < 2 or day["expected_return"].nunique() < 2 or day["actual_return"].nunique() < 2:
        return math.nan
    return float(day["expected_return"].rank().corr(day["actual_return"].rank()))


def _t_statistic(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std(ddof=1) == 0:
        return math.nan
    return float(values.mean() / (values.std(ddof=1) / math.sqrt(len(values))))


def live_track_record(rows: pd.DataFrame, horizon: str, *, topk: int = BacktestConfig.topk, min_periods: int = MIN_PERIODS) -> LiveTrackRecord:
    """The record of `horizon` from `rows` (horizon, as_of_date, symbol, expected_return,
    actual_return, direction_correct); see the module docstring."""
    rows = rows[rows["horizon"] == horizon]
    step = horizon_days(horizon)
    days = sorted(rows["as_of_date"].unique())
    sampled = days[::step]
    by_day = {day: group for day, group in rows[rows["as_of_date"].isin(sampled)].groupby("as_of_date")}
    ics = np.array([_rank_ic(by_day[day]) for day in sampled], dtype=float)
    calls = rows["direction_correct"].dropna().astype(bool)
    needed = (min_periods - 1) * step + 1
    topk_return = None
    if len(sampled) >= min_periods:
        tops = [by_day[day].nlargest(min(topk, len(by_day[day])), "expected_return")["actual_return"].mean() for day in sampled]
        topk_return = float(np.mean(tops))
    return LiveTrackRecord(
        horizon=horizon,
        days_with_outcomes=len(days),
        sampled_days=len(sampled),
        rank_ic_mean=float(np.nanmean(ics)) if np.isfinite(ics).any() else math.nan,
        rank_ic_t=_t_statistic(ics),
        direction_accuracy=float(calls.mean()) if len(calls) else math.nan,
        topk_return=topk_return,
        days_missing=max(0, needed - len(days)),
    )


def records_table(records: list[LiveTrackRecord]) -> pd.DataFrame:
    """horizon x figure."""
    return pd.DataFrame([r.row() for r in records]).set_index("horizon")
