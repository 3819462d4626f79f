"""Per-date cross-sectional metrics, reported as Qlib does: IC, ICIR, Rank IC, Rank ICIR."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def daily_ic(frame: pd.DataFrame, prediction: str, label: str, by: str = "trade_date") -> pd.DataFrame:
    """Pearson IC and Spearman Rank IC of prediction vs label for each date."""
    rows = []
    for day, group in frame.groupby(by, sort=True):
        if len(group) < 3 or group[prediction].nunique() < 2 or group[label].nunique() < 2:
            continue
        ic = stats.pearsonr(group[prediction], group[label]).statistic
        rank_ic = stats.spearmanr(group[prediction], group[label]).statistic
        rows.append({by: day, "ic": float(ic), "rank_ic": float(rank_ic)})
    return pd.DataFrame(rows, columns=[by, "ic", "rank_ic"])


def _ir(series: pd.Series) -> float:
    std = series.std(ddof=1)
    return float(series.mean() / std) if len(series) > 1 and std > 0 else float("nan")


def summarize(frame: pd.DataFrame, prediction: str, label: str) -> dict[str, float]:
    per_day = daily_ic(frame, prediction, label)
    hits = np.sign(frame[prediction]) == np.sign(frame[label])
    return {
        "ic": float(per_day["ic"].mean()),
        "icir": _ir(per_day["ic"]),
        "rank_ic": float(per_day["rank_ic"].mean()),
        "rank_icir": _ir(per_day["rank_ic"]),
        "direction_accuracy": float(hits.mean()),
        "rmse": float(np.sqrt(np.mean((frame[prediction] - frame[label]) ** 2))),
        "n_days": float(len(per_day)),
    }
