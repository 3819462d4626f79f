"""Monitoring plots as PNG bytes (matplotlib's object API on the Agg canvas, so no pyplot
state and no backend switch, lib/figures.py): the importance-weighted drift bars and
the reliability diagram."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.figures import new_figure, png_bytes

DRIFTED_COLOUR = "#d1495b"
STABLE_COLOUR = "#8fb8de"



def drift_bars_png(table: pd.DataFrame, *, top: int = 25, title: str = "Feature drift") -> bytes:
    """Horizontal bars of PSI for the `top` features by importance-weighted PSI, red when the
    feature counts as drifted. `table` is `DriftReport.table()`."""
    if table.empty:
        raise ValueError("drift_bars_png: the drift table is empty")
    shown = table.assign(_weighted=table["psi"].fillna(0.0) * table["weight"])
    shown = shown.sort_values(["_weighted", "feature"], ascending=[False, True]).head(top).iloc[::-1]
    figure = new_figure(9.0, 1.6 + 0.3 * len(shown))
    axes = figure.add_subplot()
    colours = np.where(shown["drifted"].to_numpy(dtype=bool), DRIFTED_COLOUR, STABLE_COLOUR)
    labels = [f"{name} (w={weight:.2f})" for name, weight in zip(shown["feature"], shown["weight"])]
    axes.barh(labels, shown["psi"].fillna(0.0).clip(upper=5.0), color=colours)
    axes.set_xlabel("PSI (capped at 5)")
    axes.set_title(title)
    return png_bytes(figure)


def reliability_png(reliability: pd.DataFrame, *, title: str = "Reliability") -> bytes:
    """Observed up-rate against mean predicted probability per bin, with the diagonal of a
    perfectly calibrated model. `reliability` is `live_performance.reliability_table(...)`."""
    figure = new_figure(5.5, 5.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1)
    filled = reliability[reliability["count"] > 0]
    axes.plot(filled["mean_probability"], filled["observed_rate"], marker="o", color="#2e86ab")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean predicted probability")
    axes.set_ylabel("observed share of up moves")
    axes.set_title(title)
    return png_bytes(figure)
