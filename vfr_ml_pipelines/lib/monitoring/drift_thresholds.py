"""The calibrated levels of the drift rule (`drift.py`'s docstring states the rule): per-feature
thresholds and exceedance scales from the reference's own windows, the breadth trigger's
threshold (leave-neighbours-out), and `Calibration`, what a calibration computed, storable as
JSON so a champion's is computed once (`champion_drift.py`).

`null` arrays are windows x features x (psi, ks, wasserstein): the measures of the reference's
own windows (`drift._null_measures`).

`CALIBRATION_VERSION` names what a stored calibration means; a stored one of another version
is not read (the champion's calibration key includes it, and `Calibration.from_json` refuses
it), so a change of the calibration's definition recomputes every champion's."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # drift.py imports this module
    from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig


# 1: per-feature thresholds, full-window breadth; 2: + the short windows' breadth, and the
# breadth quantile corrected for the number of windows tested (`breadth_quantile_per_window`);
# 3: the breadth scales never below `breadth_scale_floor` x the global thresholds
CALIBRATION_VERSION = 3


@dataclass(frozen=True)
class ShortWindow:
    """The breadth calibration of the last `length` sessions of the current window."""

    length: int
    scales: np.ndarray  # features x 3, as `Calibration.scales`
    threshold: float | None


@dataclass(frozen=True)
class Calibration:
    """A reference's calibrated thresholds (the costly part of a profile), storable as JSON."""

    features: tuple[str, ...]
    thresholds: np.ndarray  # features x (psi, ks, wasserstein)
    scales: np.ndarray  # features x (psi, ks, wasserstein): the exceedance denominators
    breadth_threshold: float | None
    windows: int
    short_windows: tuple[ShortWindow, ...] = ()

    def to_json(self) -> str:
        short = [{"length": w.length, "scales": w.scales.tolist(), "threshold": w.threshold} for w in self.short_windows]
        return json.dumps({"version": CALIBRATION_VERSION, "features": list(self.features), "thresholds": self.thresholds.tolist(),
                           "scales": self.scales.tolist(), "breadth_threshold": self.breadth_threshold, "windows": self.windows,
                           "short_windows": short})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """ValueError for a calibration of another `CALIBRATION_VERSION` (its numbers mean something else)."""
        data = json.loads(text)
        if data.get("version", 1) != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {data.get('version', 1)}, this code reads {CALIBRATION_VERSION}")
        shape = (len(data["features"]), 3)
        thresholds = np.array(data["thresholds"], dtype=np.float64).reshape(shape)
        scales = np.array(data["scales"], dtype=np.float64).reshape(shape)
        short = tuple(ShortWindow(int(w["length"]), np.array(w["scales"], dtype=np.float64).reshape(shape), w["threshold"])
                      for w in data["short_windows"])
        return cls(tuple(data["features"]), thresholds, scales, data["breadth_threshold"], int(data["windows"]), short)


def _levels(null: np.ndarray, config: DriftConfig) -> np.ndarray:
    """features x 3: the `calibration_quantile` of each null measure times the margin (0 for a
    measure no window could give: no finite value in any window)."""
    finite = np.where(np.isfinite(null), null, -np.inf)
    level = np.quantile(finite, config.calibration_quantile, axis=0)
    return np.where(np.isfinite(level), level * config.calibration_margin, 0.0)


def _global(config: DriftConfig) -> np.ndarray:
    return np.array([config.psi_drift, config.ks_statistic, config.wasserstein])


def calibrated_thresholds(null: np.ndarray, config: DriftConfig) -> np.ndarray:
    """features x (psi, ks, wasserstein): the `calibration_quantile` of each null measure
    (`_null_measures`) times `calibration_margin`, at least the global threshold."""
    if null.shape[0] == 0:
        return np.tile(_global(config), (null.shape[1], 1))
    return np.fmax(_levels(null, config), _global(config))


def exceedance_scales(null: np.ndarray, config: DriftConfig) -> np.ndarray:
    """features x 3: the exceedance denominators, the calibrated levels with the lower floor
    `breadth_relative_floor` x the global thresholds (module docstring)."""
    floor = _global(config) * config.breadth_relative_floor
    return np.tile(floor, (null.shape[1], 1)) if null.shape[0] == 0 else np.fmax(_levels(null, config), floor)


def exceedance(measures: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """... x features: the largest measure / scale over (psi, ks, wasserstein); +inf where a
    window had no finite value of the feature (all three NaN)."""
    ratio = np.nan_to_num(measures, nan=0.0) / scales
    return np.where(np.isnan(measures).all(axis=-1), np.inf, ratio.max(axis=-1))


def kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values` (NaN when there are fewer than k)."""
    return float(np.sort(values)[-k]) if len(values) >= k else float("nan")


def _apart(w: int, n_windows: int, overlap: int) -> np.ndarray:
    """The windows that share no session with window w (w' with |w - w'| >= overlap)."""
    return np.r_[0:max(w - overlap + 1, 0), min(w + overlap, n_windows):n_windows]


def lno_exceedances(null: np.ndarray, config: DriftConfig, length: int | None = None) -> np.ndarray:
    """windows x features: each reference window's exceedance (`_null_measures`, windows of
    `length` sessions, default `calibration_window`) against scales calibrated on the windows
    that share no session with it (leave-neighbours-out: against scales that include a
    window, that window can never exceed them); NaN for a window every other overlaps."""
    n_windows = null.shape[0]
    overlap = int(np.ceil((length or config.calibration_window) / config.calibration_stride))
    out = np.full(null.shape[:2], np.nan)
    for w in range(n_windows):
        others = _apart(w, n_windows, overlap)
        if len(others):
            out[w] = exceedance(null[w], exceedance_scales(null[others], config))
    return out


def typical_exceedance(lno: np.ndarray, config: DriftConfig) -> np.ndarray:
    """features: how far a feature's unshifted windows usually go beyond scales calibrated
    without them, the `breadth_typical_quantile` of its `lno_exceedances`, at least
    `breadth_typical_floor` (all ones when `breadth_typical_quantile` is None). A feature
    that wanders (valuation ratios on the market's level, year-over-year fundamentals) has a
    large one, a stationary feature a small one, so dividing by it puts their exceedances on
    one footing."""
    if config.breadth_typical_quantile is None or not lno.shape[0]:
        return np.ones(lno.shape[1])
    finite = np.where(np.isfinite(lno), lno, np.nan)
    with warnings.catch_warnings():  # a feature with no finite value in any window: the floor
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanquantile(finite, config.breadth_typical_quantile, axis=0)
    return np.fmax(typical, config.breadth_typical_floor)


def _final_floor(config: DriftConfig) -> np.ndarray:
    """(psi, ks, wasserstein): the least breadth scale, `breadth_scale_floor` x the global
    thresholds (no floor when None)."""
    return _global(config) * (config.breadth_scale_floor or 0.0)


def breadth_scales(null: np.ndarray, config: DriftConfig, length: int | None = None) -> np.ndarray:
    """features x 3: the breadth's exceedance denominators, `exceedance_scales` times each
    feature's `typical_exceedance`, at least `breadth_scale_floor` x the global thresholds
    (a feature that never moves, such as a daily rank, sits at both lower floors, 1/16 of the
    global thresholds without this one: a single symbol's value going from missing to present
    then reads as an exceedance of 5 in a 50-symbol universe)."""
    scales = exceedance_scales(null, config)
    if not null.shape[0]:
        return scales
    return np.fmax(scales * typical_exceedance(lno_exceedances(null, config, length), config)[:, None], _final_floor(config))


def breadth_null(null: np.ndarray, config: DriftConfig, scored: np.ndarray, length: int | None = None) -> np.ndarray:
    """Per reference window (windows of `length` sessions), the breadth statistic with
    everything it is divided by calibrated on the windows that share no session with it:
    its exceedances against those windows' scales times their typical exceedances (at least
    the final floor, as `breadth_scales`)."""
    lno = lno_exceedances(null, config, length)
    n_windows = null.shape[0]
    overlap = int(np.ceil((length or config.calibration_window) / config.calibration_stride))
    floor = _final_floor(config)
    out = np.full(n_windows, np.nan)
    for w in range(n_windows):
        others = _apart(w, n_windows, overlap)
        if len(others):
            typical = typical_exceedance(lno[others], config)
            scales = np.fmax(exceedance_scales(null[others], config) * typical[:, None], floor)
            out[w] = kth_largest(exceedance(null[w], scales)[scored], config.breadth_features)
    return out


def breadth_quantile_per_window(config: DriftConfig, n_windows: int) -> float:
    """The quantile each of `n_windows` tested window lengths is held to: Bonferroni, so the
    share of reference windows beyond the threshold of any length stays within
    1 - `breadth_quantile` (the lengths' statistics are positively dependent, so this is
    conservative)."""
    return 1.0 - (1.0 - config.breadth_quantile) / max(n_windows, 1)


def calibrated_breadth(null_breadth: np.ndarray, config: DriftConfig, n_windows: int = 1) -> float | None:
    """The breadth trigger's threshold from `breadth_null` (module docstring) when
    `n_windows` window lengths are tested; None when no reference window could be measured
    (too short a reference, or fewer scored features than `breadth_features`)."""
    values = null_breadth[~np.isnan(null_breadth)]
    if not len(values):
        return None
    level = np.quantile(values, breadth_quantile_per_window(config, n_windows))
    return float(max(level * config.breadth_margin, config.breadth_floor))
