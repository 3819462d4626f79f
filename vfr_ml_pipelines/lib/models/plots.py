"""Model plots for MLflow artifacts, returned as PNG bytes: feature importance, a SHAP-style
summary and the Rank IC over time.

Figures are built with matplotlib's object API (`Figure` + the Agg canvas) rather than
pyplot: nothing is registered in pyplot's global figure list, so nothing has to be closed,
no window can ever open whatever backend the process selected, and each figure is freed
as soon as the function returns (no memory growth across calls). The process-wide backend
is left alone on purpose: switching it with `matplotlib.use` from a library would change
the backend of whoever imports us (a notebook, for example).

Sizes are fixed per call (`figsize` x `DPI`, with a height that grows with the number of
rows shown), and the layout engine fits long feature names inside that size. The PNG
metadata carries no timestamp or version, so equal inputs give equal bytes.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vfr_ml_pipelines.lib.figures import new_figure, png_bytes

WIDTH_INCHES = 9.0
# Height of a bar chart / beeswarm: a fixed part for title and axis plus a part per row.
BASE_HEIGHT_INCHES = 1.6
ROW_HEIGHT_INCHES = 0.32
IC_HEIGHT_INCHES = 4.5
SEGMENT_COLOURS = {"val": "#f2d27a", "test": "#9cc9e8"}
OTHER_SEGMENT_COLOUR = "#cccccc"



def _rows_height(rows: int) -> float:
    return BASE_HEIGHT_INCHES + ROW_HEIGHT_INCHES * rows


def _check_top(top: int, where: str) -> None:
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"{where}: top must be a positive integer, got {top!r}")


# ----------------------------------------------------------------------------- importance


def importance_order(importance: dict[str, float], *, top: int = 25) -> list[str]:
    """The features `feature_importance_png` shows, most important first: sorted by
    importance descending (ties by name, so the order is deterministic), at most `top`.
    Raises ValueError for an empty mapping or a non-finite or negative importance."""
    _check_top(top, "feature importance plot")
    if not importance:
        raise ValueError("feature importance plot: the importance mapping is empty")
    values = {str(name): float(value) for name, value in importance.items()}
    bad = {name: value for name, value in values.items() if not np.isfinite(value) or value < 0}
    if bad:
        name = next(iter(bad))
        raise ValueError(
            f"feature importance plot: importance must be finite and >= 0; {len(bad)} feature(s) are not, e.g. {name!r}={bad[name]}"
        )
    return sorted(values, key=lambda name: (-values[name], name))[:top]


def feature_importance_png(importance: dict[str, float], *, top: int = 25, title: str) -> bytes:
    """A horizontal bar chart of the `top` most important features, the most important at
    the top; the x axis is each feature's share of the total importance."""
    order = importance_order(importance, top=top)
    total = float(sum(float(v) for v in importance.values()))
    shares = [float(importance[name]) / total if total > 0 else 0.0 for name in order]
    figure = new_figure(WIDTH_INCHES, _rows_height(len(order)))
    axes = figure.add_subplot()
    positions = np.arange(len(order))[::-1]  # first (most important) at the top
    axes.barh(positions, shares, color="#4c72b0")
    axes.set_yticks(positions, labels=order)
    axes.set_xlabel("share of total importance")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    if total <= 0:
        axes.text(0.5, 0.5, "all importances are zero", transform=axes.transAxes, ha="center", va="center")
    return png_bytes(figure)


# ----------------------------------------------------------------------------- SHAP summary


def _check_contributions(contributions: np.ndarray, X: np.ndarray, feature_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    contributions = np.asarray(contributions, dtype="float64")
    X = np.asarray(X, dtype="float64")
    if contributions.ndim != 2:
        raise ValueError(f"SHAP summary: contributions must be 2-D (rows, features), got shape {contributions.shape}")
    if X.shape != contributions.shape:
        raise ValueError(f"SHAP summary: X has shape {X.shape} but contributions have shape {contributions.shape}")
    if contributions.shape[1] != len(feature_names):
        raise ValueError(
            f"SHAP summary: {len(feature_names)} feature names for {contributions.shape[1]} contribution columns"
        )
    if contributions.shape[0] == 0 or contributions.shape[1] == 0:
        raise ValueError(f"SHAP summary: no rows or no features (shape {contributions.shape})")
    if not np.isfinite(contributions).all():
        raise ValueError(f"SHAP summary: {int((~np.isfinite(contributions)).sum())} contribution(s) are not finite")
    return contributions, X


def shap_feature_order(contributions: np.ndarray, feature_names: list[str], *, top: int = 20) -> list[str]:
    """The features `shap_summary_png` shows, top row first: by mean |contribution|
    descending (ties by name), at most `top`."""
    _check_top(top, "SHAP summary")
    contributions = np.asarray(contributions, dtype="float64")
    if contributions.ndim != 2 or contributions.shape[1] != len(feature_names) or contributions.shape[0] == 0:
        raise ValueError(
            f"SHAP summary: contributions of shape {contributions.shape} do not match {len(feature_names)} feature names"
        )
    mean_abs = np.abs(contributions).mean(axis=0)
    ranked = sorted(range(len(feature_names)), key=lambda j: (-mean_abs[j], feature_names[j]))
    return [feature_names[j] for j in ranked[:top]]


def _value_colour_position(values: np.ndarray) -> np.ndarray:
    """Each value's within-feature percentile rank in [0, 1] (ties averaged); NaN stays NaN."""
    ranks = pd.Series(values).rank(method="average", pct=False).to_numpy()
    valid = np.isfinite(values)
    n = int(valid.sum())
    if n <= 1:
        return np.where(valid, 0.5, np.nan)
    return (ranks - 1.0) / (n - 1.0)


def shap_summary_png(
    contributions: np.ndarray,
    X: np.ndarray,
    feature_names: list[str],
    *,
    top: int = 20,
    title: str,
    max_points: int = 5000,
    seed: int = 0,
) -> bytes:
    """A beeswarm-style SHAP summary: one row per feature (ordered by mean |contribution|,
    the largest on top), one point per sampled sample at x = its contribution, jittered
    vertically; the colour is the feature value's rank within that feature (blue = low,
    red = high, grey = missing). At most `max_points` rows are drawn, sampled without
    replacement with `seed`, so the picture is deterministic for a seed."""
    contributions, X = _check_contributions(contributions, X, feature_names)
    if max_points < 1:
        raise ValueError(f"SHAP summary: max_points must be positive, got {max_points}")
    order = shap_feature_order(contributions, list(feature_names), top=top)
    rng = np.random.default_rng(seed)
    n = contributions.shape[0]
    rows = np.sort(rng.choice(n, size=max_points, replace=False)) if n > max_points else np.arange(n)
    index = {name: j for j, name in enumerate(feature_names)}

    figure = new_figure(WIDTH_INCHES, _rows_height(len(order)))
    axes = figure.add_subplot()
    colour_map = "coolwarm"
    scatter = None
    for position, name in zip(range(len(order) - 1, -1, -1), order):
        j = index[name]
        x = contributions[rows, j]
        y = position + rng.uniform(-0.35, 0.35, size=len(rows))
        colour = _value_colour_position(X[rows, j])
        missing = ~np.isfinite(colour)
        if missing.any():
            axes.scatter(x[missing], y[missing], s=6, c="#999999", alpha=0.6, linewidths=0, rasterized=True)
        scatter = axes.scatter(
            x[~missing], y[~missing], s=6, c=colour[~missing], cmap=colour_map, vmin=0.0, vmax=1.0,
            alpha=0.8, linewidths=0, rasterized=True,
        )
    axes.axvline(0.0, color="#555555", linewidth=0.8)
    axes.set_yticks(np.arange(len(order))[::-1], labels=order)
    axes.set_ylim(-0.6, len(order) - 0.4)
    axes.set_xlabel("contribution to the prediction (SHAP value)")
    axes.set_title(title)
    if scatter is not None:
        bar = figure.colorbar(scatter, ax=axes, ticks=[0.0, 1.0], aspect=40)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value (rank)")
    return png_bytes(figure)


# ----------------------------------------------------------------------------- IC over time


def _check_daily(daily: pd.DataFrame, window: int) -> pd.DataFrame:
    missing = [c for c in ("trade_date", "rank_ic") if c not in daily.columns]
    if missing:
        raise ValueError(f"IC over time plot: daily frame has no column(s) {missing}")
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"IC over time plot: window must be a positive integer, got {window!r}")
    frame = daily.copy()
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    frame["rank_ic"] = pd.to_numeric(frame["rank_ic"], errors="coerce")
    frame = frame[frame["rank_ic"].notna() & frame["trade_date"].notna()]
    if frame.empty:
        raise ValueError("IC over time plot: no date with a finite rank_ic")
    if "segment" in frame.columns:
        # Walk-forward folds overlap: a fold's validation window lies in the previous fold's
        # test period. A date in several segments is shown once, as its test value (the
        # out-of-sample record), else the first segment in row order.
        priority = (frame["segment"].astype(str) != "test").astype(int)
        frame = frame.assign(_priority=priority).sort_values("_priority", kind="stable")
        frame = frame.drop_duplicates("trade_date").drop(columns="_priority")
    if frame["trade_date"].duplicated().any():
        raise ValueError(f"IC over time plot: {int(frame['trade_date'].duplicated().sum())} duplicated trade_date(s)")
    return frame.sort_values("trade_date").reset_index(drop=True)


def _segment_runs(segment: pd.Series) -> list[tuple[str, int, int]]:
    """Contiguous runs of equal segment labels as (label, first row, last row)."""
    runs: list[tuple[str, int, int]] = []
    values = segment.astype(str).tolist()
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((values[start], start, i - 1))
            start = i
    return runs


def ic_over_time_png(daily: pd.DataFrame, *, title: str, window: int = 20) -> bytes:
    """Bars of the daily Rank IC, its rolling mean over `window` dates (a line), and the
    overall mean (dashed). With a `segment` column (e.g. "val"/"test") each contiguous
    segment is shaded and labelled in the legend; a date present in several segments
    (overlapping walk-forward folds) is shown once, as its "test" row. Without a segment
    column a duplicated date is an error."""
    frame = _check_daily(daily, window)
    dates = frame["trade_date"]
    rank_ic = frame["rank_ic"].to_numpy()
    rolling = frame["rank_ic"].rolling(window, min_periods=max(1, window // 2)).mean()
    overall = float(rank_ic.mean())

    figure = new_figure(WIDTH_INCHES * 1.3, IC_HEIGHT_INCHES)
    axes = figure.add_subplot()
    if "segment" in frame.columns:
        shaded: set[str] = set()
        half_day = pd.Timedelta(hours=12)
        for label, first, last in _segment_runs(frame["segment"]):
            axes.axvspan(
                dates.iloc[first] - half_day, dates.iloc[last] + half_day,
                color=SEGMENT_COLOURS.get(label, OTHER_SEGMENT_COLOUR), alpha=0.35, linewidth=0,
                label=None if label in shaded else label,
            )
            shaded.add(label)
    colours = np.where(rank_ic >= 0, "#4c72b0", "#c44e52")
    axes.bar(dates, rank_ic, width=1.0, color=colours, label="daily Rank IC")
    axes.plot(dates, rolling, color="black", linewidth=1.5, label=f"{window}-day rolling mean")
    axes.axhline(overall, color="#2ca02c", linestyle="--", linewidth=1.2, label=f"mean {overall:.3f}")
    axes.axhline(0.0, color="#555555", linewidth=0.6)
    axes.set_ylabel("Rank IC")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize=8, ncols=3)
    axes.grid(axis="y", alpha=0.3)
    figure.autofmt_xdate()
    return png_bytes(figure)
