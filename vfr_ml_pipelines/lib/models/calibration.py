"""From a normalized score (a predicted cross-sectional z-score) to VFR's fields.

The models predict ``normalized_target`` (a per-day z-score of the forward return), which
ranks stocks but is not a return. VFR wants ``expectedReturn`` (a fraction over the
horizon) and ``probability`` (P(return > 0)):

* ``ReturnScale`` maps a score back to a return with the training period's typical
  cross-section: ``mean_return + score * cross_sectional_std`` (the inverse of the z-score
  on a typical day). Stds are population stds (ddof=0), as in ``normalized_target``.
* ``ProbabilityCalibrator`` is Platt scaling: ``P(return > 0) = sigmoid(a * score + b)``,
  a logistic regression of ``1[return > 0]`` on the score. Fit it on VALIDATION
  predictions only (out-of-sample scores of rows the model did not train on): in-sample
  scores are over-confident and would give a too-steep ``a``. Choosing those rows is the
  caller's job.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from vfr_ml_pipelines.lib.features.transforms import MISSING_DAY, day_numbers

# probabilities are kept this far inside (0, 1): VFR shows them as confidences, and 0 or 1
# would claim certainty no model of returns has
PROBABILITY_EPSILON = 1e-6
# weak L2 (sklearn's C multiplies the summed log loss): negligible against thousands of
# rows, but it keeps the slope finite when the classes are perfectly separable
PLATT_C = 1e4


def _finite_array(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.sum())} non-finite value(s) (first at position {int(np.flatnonzero(bad)[0])})")
    return array


def _finite_float(value: Any, what: str) -> float:
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return result


@dataclass
class ReturnScale:
    """Maps a normalized score (predicted z) to an expected return fraction."""

    mean_return: float  # average over training days of the cross-sectional mean forward return
    cross_sectional_std: float  # median over training days of the cross-sectional std (ddof=0)

    @classmethod
    def fit(cls, frame: pd.DataFrame, label: str = "forward_return") -> ReturnScale:
        """From training rows (`trade_date` and `label`): every day with a finite label counts
        in the mean; days with at least 2 finite labels count in the median std."""
        for column in ("trade_date", label):
            if column not in frame.columns:
                raise ValueError(f"ReturnScale.fit: the frame has no column {column!r}")
        days = day_numbers(frame["trade_date"])
        x = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(x) & (days != MISSING_DAY)
        if not ok.any():
            raise ValueError(f"ReturnScale.fit: no row has a finite {label!r} and a trade_date")
        grouped = pd.Series(x[ok]).groupby(days[ok])
        per_day = pd.DataFrame({"mean": grouped.mean(), "count": grouped.count(), "std": grouped.std(ddof=0)})
        stds = per_day.loc[per_day["count"] >= 2, "std"]
        if stds.empty:
            raise ValueError(f"ReturnScale.fit: no day has 2 or more finite {label!r} values, the cross-sectional std is undefined")
        return cls(mean_return=float(per_day["mean"].mean()), cross_sectional_std=float(stds.median()))

    def expected_return(self, score: np.ndarray) -> np.ndarray:
        """``mean_return + score * cross_sectional_std`` (float64)."""
        return self.mean_return + np.asarray(score, dtype=np.float64) * self.cross_sectional_std

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReturnScale:
        try:
            return cls(mean_return=_finite_float(values["mean_return"], "ReturnScale.mean_return"),
                       cross_sectional_std=_finite_float(values["cross_sectional_std"], "ReturnScale.cross_sectional_std"))
        except KeyError as exc:
            raise ValueError(f"ReturnScale.from_dict: missing key {exc.args[0]!r}") from None


@dataclass
class ProbabilityCalibrator:
    """Platt scaling: P(return > 0) = sigmoid(a * score + b)."""

    a: float
    b: float

    @classmethod
    def fit(cls, scores: np.ndarray, returns: np.ndarray) -> ProbabilityCalibrator:
        """Logistic regression of 1[return > 0] on the score (weak L2, intercept free).

        Fit on VALIDATION predictions only (see the module docstring). When every return
        is on the same side of 0 the slope is undefined: then a = 0 and b is the logit of
        the smoothed up-rate (k + 0.5) / (n + 1)."""
        scores = _finite_array(scores, "ProbabilityCalibrator.fit scores")
        returns = _finite_array(returns, "ProbabilityCalibrator.fit returns")
        if len(scores) != len(returns):
            raise ValueError(f"ProbabilityCalibrator.fit: {len(scores)} scores but {len(returns)} returns")
        if len(scores) == 0:
            raise ValueError("ProbabilityCalibrator.fit: no rows")
        up = returns > 0
        n_up = int(up.sum())
        if n_up in (0, len(up)):
            rate = (n_up + 0.5) / (len(up) + 1.0)
            return cls(a=0.0, b=float(math.log(rate / (1.0 - rate))))
        model = LogisticRegression(C=PLATT_C, solver="lbfgs", max_iter=1000, tol=1e-10)
        model.fit(scores.reshape(-1, 1), up.astype(np.int8))
        return cls(a=float(model.coef_[0, 0]), b=float(model.intercept_[0]))

    def probability(self, score: np.ndarray) -> np.ndarray:
        """P(return > 0), strictly inside (0, 1) (clipped PROBABILITY_EPSILON away from the
        ends) and finite; raises on a non-finite score."""
        score = _finite_array(np.atleast_1d(score), "ProbabilityCalibrator.probability score")
        return np.clip(expit(self.a * score + self.b), PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProbabilityCalibrator:
        try:
            return cls(a=_finite_float(values["a"], "ProbabilityCalibrator.a"),
                       b=_finite_float(values["b"], "ProbabilityCalibrator.b"))
        except KeyError as exc:
            raise ValueError(f"ProbabilityCalibrator.from_dict: missing key {exc.args[0]!r}") from None
