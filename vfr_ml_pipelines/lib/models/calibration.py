"""From a model's score to VFR's fields, through ONE calibrated model of the forward return.

A model's score ranks stocks on a day; its scale is arbitrary (a predicted z-score, a
ranking objective's output, an ensemble's unit-scale blend). VFR wants an
``expectedReturn`` (a fraction over the horizon), a ``probability`` = P(return > 0) (the
ABSOLUTE forward return, the market's drift included: what VFR's outcome tracker scores)
and a direction that agrees with both. ``ReturnCalibration`` derives all of them from one
linear model of the realized forward return ``r`` of a row with score ``s``:

    r = intercept + slope * s + e,        e with std residual_std, P(e > -x) = F(x)

* **slope** (the model's measured skill, in return per unit of score): the within-day
  (cross-sectional) least-squares slope of ``r`` on ``s`` over the VALIDATION rows, i.e.
  ``sum_d sum_i (s - s_d)(r - r_d) / sum_d sum_i (s - s_d)^2`` with ``s_d``, ``r_d`` the
  day means. It equals ``corr x std(r) / std(s)`` across stocks, so the cross-sectional
  spread of the expected return is ``slope x std(s)`` = IC x the realized spread: a model
  with IC 0.04 predicts a spread 4 % of the realized one, whatever the score's scale.
  It is then shrunk by the positive-part James-Stein factor ``max(0, 1 - 1/t^2)``, where
  ``t`` is the t-statistic of the daily Pearson ICs of the score (mean / std x sqrt(n_eff),
  ``n_eff = n_days / horizon_days`` independent labels, as in the promotion gate): a skill
  measured within one standard error of zero gives no spread at all.
* **intercept**: ``drift - slope x mean validation score``, so the average row's expected
  return is the drift, the average forward return per day (each day weighing the same).
  The caller passes the drift measured on every labelled row before the test period
  (training and validation, a longer and steadier window than validation alone); without
  it the validation days' average is used.
* **residual_std**: the root mean square of ``r - intercept - slope * s`` on the
  validation rows (market moves included: they are part of what decides P(r > 0)).

Then ``expectedReturn = intercept + slope * s`` and ``probability = F(expectedReturn)`` with
``F(x) = sigmoid(1.702 * x / residual_std)``: the standard logistic approximation of the
normal distribution function ``Phi(x / residual_std)`` (within 0.01 everywhere), with a
little more weight in the tails, which suits returns. It is used rather than ``Phi`` itself
because ``logit(probability) = a * s + b`` is then exactly linear in the score
(``logit_coefficients``): that is what a LightGBM binary model computes, so VFR's live
ensemble runs the very same probability (`serving.live_model`). ``F`` is increasing with
``F(0) = 1/2``, so probability > 1/2 exactly
when expectedReturn > 0 (an expected return whose probability rounds to exactly 1/2 is
set to 0, so the equivalence holds in floating point too), and any direction rule on the
probability with thresholds around 1/2 (BUY at p >= 0.55 > 1/2, SELL at p <= 0.45) gives
BUY only with a positive and SELL only with a negative expected return.

Fit on VALIDATION predictions only (out-of-sample scores of rows the model did not train
on); never on test rows. Choosing those rows is the caller's job. The calibration also
keeps quantiles of the probabilities it gives its own validation rows, so a served day's
BUY / SELL / HOLD shares can be compared with the validation period's
(``direction_shares``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from vfr_ml_pipelines.lib.dates import MISSING_DAY, day_numbers

# probabilities are kept this far inside (0, 1): VFR shows them as confidences, and 0 or 1
# would claim certainty no model of returns has
PROBABILITY_EPSILON = 1e-6
# sigmoid(1.702 x) approximates the normal distribution function Phi(x) within 0.01
LOGISTIC_NORMAL_FACTOR = 1.702
# a day needs this many rows with a finite score and label to measure skill on it
MIN_ROWS_PER_DAY = 3
# quantiles of the validation probabilities kept for the direction-share comparison
PROBABILITY_QUANTILES = 101


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


def daily_mean_return(frame: pd.DataFrame, label: str = "forward_return") -> float:
    """The drift: the average over days of the day's mean `label` (each day with a finite
    label weighs the same)."""
    for column in ("trade_date", label):
        if column not in frame.columns:
            raise ValueError(f"daily_mean_return: the frame has no column {column!r}")
    days = day_numbers(frame["trade_date"])
    x = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x) & (days != MISSING_DAY)
    if not ok.any():
        raise ValueError(f"daily_mean_return: no row has a finite {label!r} and a trade_date")
    return float(pd.Series(x[ok]).groupby(days[ok]).mean().mean())


def _agreeing(expected: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(expected_return, probability) with the probability kept off 0 and 1 and a probability
    of exactly 0.5 given an expected return of 0, so the two never point opposite ways."""
    probability = np.clip(probability, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
    return np.where(probability == 0.5, 0.0, expected), probability


@dataclass
class ReturnCalibration:
    """expectedReturn = intercept + slope * score; probability = sigmoid(expectedReturn / logistic_scale)."""

    slope: float  # shrunk within-day slope (return per unit of score)
    intercept: float
    residual_std: float
    raw_slope: float  # before shrinkage
    ic_t: float  # t-statistic of the daily ICs (the shrinkage's input)
    shrinkage: float  # max(0, 1 - 1/ic_t^2)
    drift: float
    n_days: int
    probability_quantiles: list[float] = field(default_factory=list)  # of the validation rows

    @classmethod
    def fit(
        cls, scores: Any, returns: Any, trade_dates: Any, *, horizon_days: int, drift: float | None = None
    ) -> ReturnCalibration:
        """Fit on validation rows (see the module docstring). Rows with a non-finite score,
        return or date are ignored; fewer than 2 days with MIN_ROWS_PER_DAY usable rows and
        a varying score is an error (skill cannot be measured)."""
        if horizon_days < 1:
            raise ValueError(f"ReturnCalibration.fit: horizon_days must be >= 1, got {horizon_days}")
        s = np.asarray(scores, dtype=np.float64)
        r = np.asarray(returns, dtype=np.float64)
        days = day_numbers(pd.Series(trade_dates))
        if not len(s) == len(r) == len(days):
            raise ValueError(f"ReturnCalibration.fit: {len(s)} scores, {len(r)} returns and {len(days)} dates")
        ok = np.isfinite(s) & np.isfinite(r) & (days != MISSING_DAY)
        frame = pd.DataFrame({"day": days[ok], "s": s[ok], "r": r[ok]})
        grouped = frame.groupby("day")
        frame["sc"] = frame["s"] - grouped["s"].transform("mean")
        frame["rc"] = frame["r"] - grouped["r"].transform("mean")
        per_day = frame.assign(sr=frame["sc"] * frame["rc"], ss=frame["sc"] ** 2, rr=frame["rc"] ** 2).groupby("day").agg(
            n=("s", "size"), sr=("sr", "sum"), ss=("ss", "sum"), rr=("rr", "sum")
        )
        usable = per_day[(per_day["n"] >= MIN_ROWS_PER_DAY) & (per_day["ss"] > 0) & (per_day["rr"] > 0)]
        if len(usable) < 2:
            raise ValueError(
                f"ReturnCalibration.fit: {len(usable)} day(s) with >= {MIN_ROWS_PER_DAY} rows and varying score and "
                "return; skill needs at least 2"
            )
        raw_slope = float(usable["sr"].sum() / usable["ss"].sum())
        ics = (usable["sr"] / np.sqrt(usable["ss"] * usable["rr"])).to_numpy()
        spread = float(np.std(ics, ddof=1))
        n_eff = max(1.0, len(ics) / horizon_days)
        mean_ic = float(np.mean(ics))
        ic_t = mean_ic / spread * math.sqrt(n_eff) if spread > 0 else math.copysign(math.inf, mean_ic or 1.0)
        shrinkage = max(0.0, 1.0 - 1.0 / ic_t**2) if ic_t != 0 else 0.0
        slope = shrinkage * raw_slope
        used = frame[frame["day"].isin(usable.index)]
        if drift is None:
            drift = float(used.groupby("day")["r"].mean().mean())
        drift = _finite_float(drift, "ReturnCalibration.fit drift")
        intercept = drift - slope * float(used["s"].mean())
        residual = used["r"].to_numpy() - intercept - slope * used["s"].to_numpy()
        residual_std = float(np.sqrt(np.mean(residual**2)))
        if not residual_std > 0:
            raise ValueError("ReturnCalibration.fit: the forward returns fit the score exactly; residual std is 0")
        calibration = cls(
            slope=slope, intercept=intercept, residual_std=residual_std, raw_slope=raw_slope,
            ic_t=ic_t if math.isfinite(ic_t) else math.copysign(1e12, ic_t), shrinkage=shrinkage, drift=drift,
            n_days=len(usable),
        )
        _, probability = calibration.predict(used["s"].to_numpy())
        calibration.probability_quantiles = [float(q) for q in np.quantile(probability, np.linspace(0, 1, PROBABILITY_QUANTILES))]
        return calibration

    def predict(self, score: Any) -> tuple[np.ndarray, np.ndarray]:
        """(expected_return, probability) of each score; raises on a non-finite score.
        probability > 0.5 exactly when expected_return > 0 (see the module docstring)."""
        score = _finite_array(np.atleast_1d(score), "ReturnCalibration.predict score")
        expected = self.intercept + self.slope * score
        return _agreeing(expected, expit(expected / self.logistic_scale))

    def predict_margin(self, margin: Any) -> tuple[np.ndarray, np.ndarray]:
        """`predict` of the scores whose logit `a * score + b` (`logit_coefficients`) is
        `margin`: what a model with the calibration folded in (VFR's live files) outputs
        before its sigmoid. The same numbers up to float rounding, without the score."""
        margin = _finite_array(np.atleast_1d(margin), "ReturnCalibration.predict_margin margin")
        return _agreeing(margin * self.logistic_scale, expit(margin))

    @property
    def logistic_scale(self) -> float:
        """The logistic scale whose sigmoid approximates Phi(x / residual_std)."""
        return self.residual_std / LOGISTIC_NORMAL_FACTOR

    def logit_coefficients(self) -> tuple[float, float]:
        """(a, b) with logit(probability) = a * score + b (before the epsilon clip)."""
        return self.slope / self.logistic_scale, self.intercept / self.logistic_scale

    def direction_shares(self, buy: float, sell: float) -> dict[str, float]:
        """Shares of BUY (p >= buy), SELL (p <= sell) and HOLD on the validation rows, read
        from the kept probability quantiles (within 1 % of the exact shares)."""
        q = np.asarray(self.probability_quantiles, dtype=np.float64)
        if q.size == 0:
            raise ValueError("this calibration kept no validation probabilities")
        # share of rows at or above / below a threshold from the empirical quantile function
        buy_share = float(np.mean(q >= buy))
        sell_share = float(np.mean(q <= sell))
        return {"BUY": buy_share, "SELL": sell_share, "HOLD": max(0.0, 1.0 - buy_share - sell_share)}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReturnCalibration:
        try:
            numbers = {
                name: _finite_float(values[name], f"ReturnCalibration.{name}")
                for name in ("slope", "intercept", "residual_std", "raw_slope", "ic_t", "shrinkage", "drift")
            }
            quantiles = [_finite_float(q, "ReturnCalibration.probability_quantiles") for q in values["probability_quantiles"]]
            n_days = int(values["n_days"])
        except KeyError as exc:
            raise ValueError(f"ReturnCalibration.from_dict: missing key {exc.args[0]!r}") from None
        if not numbers["residual_std"] > 0:
            raise ValueError(f"ReturnCalibration.residual_std must be > 0, got {numbers['residual_std']}")
        return cls(**numbers, n_days=n_days, probability_quantiles=quantiles)
