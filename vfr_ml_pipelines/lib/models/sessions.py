"""The trees' per-session settings (`algorithms.fit_regressor`): rows stored session by session,
described by their session sizes (`pipeline.session_sizes`).

* `relevance_grades`: the labels of a ranking objective, one query group per session;
* `SessionRankIC`: the mean per-session Rank IC that early stopping can watch, the figure
  selection and the gate read (`metrics.daily_ic`'s ranks and correlation);
* `inner_stopping_split`: the last sessions of the training rows as the stopping rows, so the
  validation rows stay unseen by the fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models.metrics import grouped_pearson, grouped_ranks

# Objectives that rank within query groups (one group per session), LightGBM's and XGBoost's:
# their labels are per-session relevance grades (`relevance_grades`), not the continuous target
LIGHTGBM_RANKING_OBJECTIVES = ("rank_xendcg", "lambdarank")
XGBOOST_RANKING_OBJECTIVES = ("rank:pairwise", "rank:ndcg")
RANKING_OBJECTIVES = LIGHTGBM_RANKING_OBJECTIVES + XGBOOST_RANKING_OBJECTIVES
RELEVANCE_GRADES = 5


def session_ids(groups: Sequence[int] | None, n_rows: int, what: str) -> np.ndarray:
    """Row -> session index for rows stored session by session in `groups` sizes."""
    if groups is None:
        raise ValueError(f"{what}: session group sizes are required (a ranking objective or Rank IC early stopping)")
    sizes = np.asarray(groups, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 1).any() or sizes.sum() != n_rows:
        raise ValueError(f"{what}: group sizes must be positive and sum to the {n_rows} rows, got {int(sizes.sum())}")
    return np.repeat(np.arange(len(sizes)), sizes)


def relevance_grades(y: np.ndarray, groups: Sequence[int], n_grades: int = RELEVANCE_GRADES) -> np.ndarray:
    """Integer grades 0..n_grades-1 from each row's rank of `y` within its session (equal-count
    bins: the top fifth of a session gets n_grades-1)."""
    ids = session_ids(groups, len(y), "relevance_grades")
    ranks = pd.Series(y).groupby(ids).rank(method="first").to_numpy() - 1  # 0 .. n-1
    sizes = np.bincount(ids)[ids] if len(y) else np.zeros(0)
    return np.floor(ranks * n_grades / np.maximum(sizes, 1)).astype(np.int32)


class SessionRankIC:
    """Mean per-session Spearman correlation of predictions with `y`, computed every boosting
    round: the ranks of `y` once, then the predictions' ranks and the grouped Pearson of
    `metrics.daily_ic`. Unlike `daily_ic`, a session whose predictions (or labels) are all tied
    counts as 0 rather than dropping out, so the first, constant rounds score 0."""

    def __init__(self, y: np.ndarray, groups: Sequence[int]) -> None:
        self.ids = session_ids(groups, len(y), "SessionRankIC")
        self.n = np.bincount(self.ids).astype(np.float64)
        self.y, self.y_varies = grouped_ranks(self.ids, np.asarray(y, dtype=np.float64), len(self.n))

    def __call__(self, predictions: np.ndarray) -> float:
        ranks, varies = grouped_ranks(self.ids, np.asarray(predictions, dtype=np.float64), len(self.n))
        corr = grouped_pearson(self.ids, self.n, ranks, self.y)
        return float(np.where(varies & self.y_varies, corr, 0.0).mean())


def inner_stopping_split(X: np.ndarray, y: np.ndarray, groups: Sequence[int] | None, sessions: int, gap: int,
                         algorithm: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fit rows, stopping rows) cut from the training rows: the last `sessions` sessions stop
    the boosting, the `gap` sessions before them are dropped (their labels reach into the
    stopping rows: the horizon's sessions), the rest is fitted on."""
    ids = session_ids(groups, len(y), f"{algorithm} stopping_sessions")
    sizes = np.asarray(groups, dtype=np.int64)
    fit_sessions = len(sizes) - sessions - gap
    if sessions < 2 or gap < 0 or fit_sessions < 2:
        raise ValueError(f"{algorithm}: {len(sizes)} training sessions cannot hold {sessions} stopping sessions after "
                         f"a gap of {gap} with training sessions left")
    fit, stop = ids < fit_sessions, ids >= len(sizes) - sessions
    return X[fit], y[fit], sizes[:fit_sessions], X[stop], y[stop], sizes[-sessions:]
