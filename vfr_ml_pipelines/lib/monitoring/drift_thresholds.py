"""The calibrated levels of the drift rule (`drift.py`'s docstring states the rule): per-feature
thresholds and exceedance scales from the reference's own windows, the breadth trigger's
threshold (leave-neighbours-out), and `Calibration`, what a calibration computed, storable as
JSON so a champion's is computed once (`champion_drift.py`).

`null` arrays are windows x features x (psi, ks, wasserstein): the measures of the reference's
own windows (`drift._null_measures`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # drift.py imports this module
    from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig


@dataclass(frozen=True)
class Calibration:
    """A reference's calibrated thresholds (the costly part of a profile), storable as JSON."""

    features: tuple[str, ...]
    thresholds: np.ndarray  # features x (psi, ks, wasserstein)
    scales: np.ndarray  # features x (psi, ks, wasserstein): the exceedance denominators
    breadth_threshold: float | None
    windows: int

    def to_json(self) -> str:
        return json.dumps({"features": list(self.features), "thresholds": self.thresholds.tolist(), "scales": self.scales.tolist(),
                           "breadth_threshold": self.breadth_threshold, "windows": self.windows})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        shape = (len(data["features"]), 3)
        thresholds = np.array(data["thresholds"], dtype=np.float64).reshape(shape)
        scales = np.array(data["scales"], dtype=np.float64).reshape(shape)
        return cls(tuple(data["features"]), thresholds, scales, data["breadth_threshold"], int(data["windows"]))


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


def breadth_null(null: np.ndarray, config: DriftConfig, scored: np.ndarray) -> np.ndarray:
    """Per reference window (`_null_measures`), the breadth statistic against scales
    calibrated on the windows that share no session with it."""
    n_windows = null.shape[0]
    # windows w' with |w - w'| < overlap share sessions with w
    overlap = int(np.ceil(config.calibration_window / config.calibration_stride))
    out = np.full(n_windows, np.nan)
    for w in range(n_windows):
        others = np.r_[0:max(w - overlap + 1, 0), min(w + overlap, n_windows):n_windows]
        if len(others):
            out[w] = kth_largest(exceedance(null[w], exceedance_scales(null[others], config))[scored], config.breadth_features)
    return out


def calibrated_breadth(null_breadth: np.ndarray, config: DriftConfig) -> float | None:
    """The breadth trigger's threshold from `breadth_null` (module docstring); None when no
    reference window could be measured (too short a reference, or fewer scored features
    than `breadth_features`)."""
    values = null_breadth[~np.isnan(null_breadth)]
    if not len(values):
        return None
    return float(max(np.quantile(values, config.breadth_quantile) * config.breadth_margin, config.breadth_floor))
