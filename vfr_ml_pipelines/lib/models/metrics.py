"""Per-date cross-sectional metrics, reported as Qlib does (IC, ICIR, Rank IC, Rank ICIR),
and the classification and calibration view VFR's BUY/SELL and probability fields need.

Definitions (`evaluate`)
------------------------
* ``ic`` / ``rank_ic``: per date, the Pearson / Spearman correlation of score and label
  (Spearman = Pearson of the within-day average ranks); then the mean over dates.
  ``ic_std`` / ``rank_ic_std``: their std over dates (ddof=1); ``icir`` / ``rank_icir`` =
  mean / std (Qlib's ICIR). A date enters only with at least 3 rows and a non-constant
  score and label.
* Classification: the positive class is ``label > 0`` ("up"); the prediction is "up" when
  ``probability > 0.5`` (with a probability column) or else ``score > 0``.
  ``direction_accuracy`` = share of rows where the two agree; ``precision``, ``recall``,
  ``f1`` of the up class, as sklearn.metrics defines them (f1 = 2 TP / (2 TP + FP + FN));
  NaN when a denominator is 0.
* ``auc``: ROC AUC of the probability (else the score) against up.
* ``brier``: mean squared error of the probability against up; ``ece``: expected
  calibration error over 10 equal-width probability bins [0, 0.1), ..., [0.9, 1.0]:
  sum over bins of (share of rows) * |mean probability - up rate|. Both NaN without a
  probability column.
* ``n_days``: dates with a defined IC; ``n_rows``: rows evaluated.

Rows whose score, label (or probability) is not finite are left out. Anything undefined
(one class only, fewer than 2 dates, no rows) is NaN, never an exception.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ECE_BINS = 10


def grouped_pearson(codes: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of a and b within each group (two passes over the rows: the
    group means first, then centred sums, so no cancellation error)."""
    n_groups = len(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = a - (np.bincount(codes, weights=a, minlength=n_groups) / n)[codes]
        db = b - (np.bincount(codes, weights=b, minlength=n_groups) / n)[codes]
        sab = np.bincount(codes, weights=da * db, minlength=n_groups)
        saa = np.bincount(codes, weights=da * da, minlength=n_groups)
        sbb = np.bincount(codes, weights=db * db, minlength=n_groups)
        return np.clip(sab / np.sqrt(saa * sbb), -1.0, 1.0)


def grouped_ranks(codes: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties averaged) of `values` within each group, and whether
    each group has at least two distinct values. Two argsorts, no groupby: pandas' grouped
    rank and numpy's lexsort are several times slower at a million rows."""
    n = len(values)
    # sort by (group, value) through one int64 key: the value's position in a global sort
    # (equal values get adjacent positions, so they stay adjacent within their group)
    position = np.empty(n, dtype=np.int64)
    position[np.argsort(values)] = np.arange(n, dtype=np.int64)
    order = np.argsort(codes * np.int64(n) + position)
    sorted_codes, sorted_values = codes[order], values[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=new_group[1:])
    # a run is a block of equal values inside one group: its members share the average rank
    new_run = new_group.copy()
    new_run[1:] |= sorted_values[1:] != sorted_values[:-1]
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], n)
    group_start = np.flatnonzero(new_group)
    run_group_start = group_start[np.cumsum(new_group)[run_start] - 1]
    run_rank = (run_start + run_end - 1) / 2.0 - run_group_start + 1.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, run_end - run_start)
    runs_per_group = np.bincount(sorted_codes[run_start], minlength=n_groups)
    return ranks, runs_per_group >= 2


def daily_ic(frame: pd.DataFrame, prediction: str, label: str, by: str = "trade_date") -> pd.DataFrame:
    """Pearson IC and Spearman Rank IC of prediction vs label for each date (sorted), as
    scipy's pearsonr / spearmanr would give them, without a Python loop over dates.

    Rows with a non-finite prediction or label are left out; a date with fewer than 3
    rows or a constant prediction or label has no IC and no row in the result."""
    for column in (by, prediction, label):
        if column not in frame.columns:
            raise ValueError(f"daily_ic: the frame has no column {column!r}")
    x = pd.to_numeric(frame[prediction], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    y = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    codes, days = pd.factorize(frame[by], sort=True)
    ok = np.isfinite(x) & np.isfinite(y) & (codes >= 0)
    if not ok.all():
        x, y, codes = x[ok], y[ok], codes[ok]
    if len(codes) == 0:
        return pd.DataFrame({by: pd.Series([], dtype=object), "ic": pd.Series([], dtype=float),
                             "rank_ic": pd.Series([], dtype=float)})
    codes = codes.astype(np.int64)
    n_days = len(days)
    n = np.bincount(codes, minlength=n_days).astype(np.float64)
    # a constant column is detected exactly (one run of equal values): centred sums of equal
    # values can be a rounding error away from 0 and would give a garbage correlation
    rank_x, x_varies = grouped_ranks(codes, x, n_days)
    rank_y, y_varies = grouped_ranks(codes, y, n_days)
    valid = (n >= 3) & x_varies & y_varies
    ic = grouped_pearson(codes, n, x, y)
    rank_ic = grouped_pearson(codes, n, rank_x, rank_y)
    return pd.DataFrame({by: np.asarray(days)[valid], "ic": ic[valid], "rank_ic": rank_ic[valid]})


def _ir(series: pd.Series) -> float:
    std = series.std(ddof=1)
    return float(series.mean() / std) if len(series) > 1 and std > 0 else float("nan")


def _std(series: pd.Series) -> float:
    return float(series.std(ddof=1)) if len(series) > 1 else float("nan")


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


def expected_calibration_error(probability: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over `bins` equal-width bins of [0, 1] (the last one closed) of the bin's share
    of rows times |mean probability - outcome rate|; NaN for no rows."""
    probability = np.asarray(probability, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    if len(probability) == 0:
        return float("nan")
    which = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=probability, minlength=bins) - np.bincount(which, weights=outcome, minlength=bins))
    # |sum p - sum y| / N per bin == (n_b / N) * |mean p - mean y|
    return float(gap[count > 0].sum() / len(probability))


def evaluate(
    frame: pd.DataFrame,
    *,
    score: str = "score",
    label: str = "forward_return",
    probability: str | None = "probability",
    by: str = "trade_date",
) -> dict[str, float]:
    """The full evaluation of scored rows (see the module docstring for the definitions).

    `probability=None` evaluates the score alone (no brier/ece; direction from score > 0).
    Raises ValueError for a missing column or a probability outside [0, 1]; degenerate but
    valid input (one class, one day, no rows) gives NaN metrics."""
    columns = [by, score, label] + ([probability] if probability is not None else [])
    for column in columns:
        if column not in frame.columns:
            hint = "; pass probability=None to evaluate the score alone" if column == probability else ""
            raise ValueError(f"evaluate: the frame has no column {column!r}{hint}")
    s = pd.to_numeric(frame[score], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    y = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(s) & np.isfinite(y) & frame[by].notna().to_numpy()
    p = None
    if probability is not None:
        p = pd.to_numeric(frame[probability], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok &= np.isfinite(p)
        outside = ok & ((p < 0) | (p > 1))
        if outside.any():
            raise ValueError(f"evaluate: {int(outside.sum())} value(s) of {probability!r} are outside [0, 1]")
        p = p[ok]
    rows = frame.loc[ok, [by, score, label]] if not ok.all() else frame[[by, score, label]]
    s, y = s[ok], y[ok]

    per_day = daily_ic(rows, score, label, by=by)
    nan = float("nan")
    result = {
        "ic": float(per_day["ic"].mean()) if len(per_day) else nan,
        "ic_std": _std(per_day["ic"]),
        "icir": _ir(per_day["ic"]),
        "rank_ic": float(per_day["rank_ic"].mean()) if len(per_day) else nan,
        "rank_ic_std": _std(per_day["rank_ic"]),
        "rank_icir": _ir(per_day["rank_ic"]),
    }

    up = y > 0
    predicted_up = p > 0.5 if p is not None else s > 0
    # confusion counts with numpy (sklearn's precision/recall/f1 re-validate and re-scan the
    # labels for each metric; the tests check these against sklearn)
    true_positive = int(np.count_nonzero(up & predicted_up))
    predicted_positive, actual_positive = int(np.count_nonzero(predicted_up)), int(np.count_nonzero(up))
    precision = true_positive / predicted_positive if predicted_positive else nan
    recall = true_positive / actual_positive if actual_positive else nan
    result["direction_accuracy"] = float(np.mean(predicted_up == up)) if len(y) else nan
    result["precision"] = precision
    result["recall"] = recall
    # sklearn's F1: 2 TP / (2 TP + FP + FN), undefined only when there is no positive at all
    result["f1"] = 2 * true_positive / (predicted_positive + actual_positive) if predicted_positive + actual_positive else nan
    both_classes = 0 < actual_positive < len(up)
    result["auc"] = float(roc_auc_score(up, p if p is not None else s)) if both_classes else nan
    if p is not None and len(p):
        result["brier"] = float(np.mean((p - up) ** 2))
        result["ece"] = expected_calibration_error(p, up)
    else:
        result.update(brier=nan, ece=nan)
    result["n_days"] = float(len(per_day))
    result["n_rows"] = float(len(y))
    return result
