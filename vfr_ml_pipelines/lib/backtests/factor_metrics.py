"""Factor figures in the style of alphalens, on a (dates x symbols) score array and the panel.

* Forward return of horizon h at session t: close t -> close t + h on the adjusted series (the
  definition of the project's labels); NaN for the last h sessions.
* Quantiles: each session, the scored names with a bar are split into `n_quantiles` equal
  groups by score rank (1 = lowest). `quantile_returns` is the mean over sessions of each
  group's mean forward return (per period of h sessions, not annualized); the long-short spread
  is the top group minus the bottom one.
* `ic_decay`: for lag = 1..max_lag, the mean over sessions of the Spearman correlation of the
  score at t with the one-session return of session t + lag (lag 1 is the next session's):
  how long the signal keeps its edge. Ranks are taken within each session's scored names.
* `quantile_turnover`: the share of the names of a quantile at t that were not in it at t - 1,
  averaged over sessions (alphalens' quantile_turnover), for the top and bottom quantiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.backtests.panel import MarketPanel


def forward_returns(panel: MarketPanel, horizon: int = 1) -> np.ndarray:
    growth = np.cumprod(1.0 + panel.close_return, axis=0)
    forward = np.full(panel.shape, np.nan)
    forward[:-horizon] = growth[horizon:] / growth[:-horizon] - 1.0
    forward[~panel.has_bar] = np.nan
    return forward


def _row_ranks(values: np.ndarray) -> np.ndarray:
    return pd.DataFrame(values).rank(axis=1).to_numpy()


def _row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of a and b over the entries finite in both."""
    mask = np.isfinite(a) & np.isfinite(b)
    count = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(mask, a, 0.0)
        b = np.where(mask, b, 0.0)
        da = np.where(mask, a - (a.sum(axis=1) / count)[:, None], 0.0)
        db = np.where(mask, b - (b.sum(axis=1) / count)[:, None], 0.0)
        corr = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    corr[count < 3] = np.nan
    return corr


def quantile_labels(scores: np.ndarray, valid: np.ndarray, n_quantiles: int = 5) -> np.ndarray:
    """1..n_quantiles per scored valid entry (0 elsewhere), by rank within each session."""
    masked = np.where(valid & np.isfinite(scores), scores, np.nan)
    pct = pd.DataFrame(masked).rank(axis=1, pct=True, method="first").to_numpy()
    return np.where(np.isfinite(pct), np.ceil(pct * n_quantiles), 0).astype(int)


def quantile_returns(panel: MarketPanel, scores: np.ndarray, *, horizon: int = 1, n_quantiles: int = 5) -> pd.Series:
    forward = forward_returns(panel, horizon)
    labels = quantile_labels(scores, panel.has_bar & np.isfinite(forward), n_quantiles)
    means = {}
    for q in range(1, n_quantiles + 1):
        member = labels == q
        count = member.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_session = np.where(member, forward, 0.0).sum(axis=1) / count
        means[q] = float(np.nanmean(per_session[count > 0])) if (count > 0).any() else np.nan
    return pd.Series(means, name=f"mean_forward_return_{horizon}").rename_axis("quantile")


def ic_decay(panel: MarketPanel, scores: np.ndarray, *, max_lag: int = 20) -> pd.Series:
    score_ranks = _row_ranks(np.where(panel.has_bar, scores, np.nan))
    returns = np.where(panel.has_bar, panel.close_return, np.nan)
    returns[0] = np.nan
    return_ranks = _row_ranks(returns)
    decay = {}
    for lag in range(1, max_lag + 1):
        if lag >= panel.shape[0]:
            decay[lag] = np.nan
            continue
        ic = _row_correlation(score_ranks[:-lag], return_ranks[lag:])
        decay[lag] = float(np.nanmean(ic)) if np.isfinite(ic).any() else np.nan
    return pd.Series(decay, name="rank_ic").rename_axis("lag")


def quantile_turnover(panel: MarketPanel, scores: np.ndarray, *, n_quantiles: int = 5) -> dict[str, float]:
    labels = quantile_labels(scores, panel.has_bar, n_quantiles)
    result = {}
    for name, q in (("top", n_quantiles), ("bottom", 1)):
        member = labels == q
        now = member[1:].sum(axis=1)
        new = (member[1:] & ~member[:-1]).sum(axis=1)
        valid = (now > 0) & (member[:-1].sum(axis=1) > 0)
        result[f"{name}_quantile_turnover"] = float((new[valid] / now[valid]).mean()) if valid.any() else np.nan
    return result


def factor_summary(
    panel: MarketPanel,
    scores: np.ndarray,
    *,
    horizon: int = 1,
    n_quantiles: int = 5,
    quantiles: pd.Series | None = None,
    decay: pd.Series | None = None,
) -> dict[str, float]:
    """One row of factor figures: mean forward return per quantile, the long-short spread,
    the rank IC at lag 1 and 5, and the quantile turnovers. `quantiles` / `decay` already
    computed (by `quantile_returns` / `ic_decay` for the plots) are reused, not recomputed."""
    if quantiles is None:
        quantiles = quantile_returns(panel, scores, horizon=horizon, n_quantiles=n_quantiles)
    if decay is None:
        decay = ic_decay(panel, scores, max_lag=5)
    row = {f"q{q}_mean_return": value for q, value in quantiles.items()}
    row["long_short_spread"] = float(quantiles.iloc[-1] - quantiles.iloc[0])
    row["rank_ic_lag1"] = float(decay.get(1, np.nan))
    row["rank_ic_lag5"] = float(decay.get(5, np.nan))
    row.update(quantile_turnover(panel, scores, n_quantiles=n_quantiles))
    return row
