"""Serving health, the pure parts: coverage of universe x horizons in Redis, the served
prediction distribution against the validation period, and model age. The asset reads the
keys' TTLs from Redis (one pipelined TTL per key) and the registry's timestamps, then calls
these functions; envelope validity stays with `serving.vfr_codec.validate_entry`.

* Coverage: a (symbol, horizon) is covered when its prediction key exists and does not expire
  before the next scheduled publish (plus `margin_seconds`): an entry that will be gone before
  it is replaced is a hole VFR will see, so it counts as missing now. TTLs follow Redis: -2 (or
  absent from the mapping) is a missing key, -1 (or None) a key without expiry (covered).
* Distribution: the share of BUY / HOLD / SELL against the validation period's shares with
  a chi-square goodness-of-fit test (scipy.stats.chisquare). The reference shares are smoothed
  by half a count per class so a class never seen in validation cannot make the statistic
  infinite. With thousands of predictions the test flags tiny moves, so the distribution is
  "shifted" only when the test is significant AND some share moved by at least
  `min_share_gap` (an effect size, as the drift rule does with KS).
* Served day vs validation record (`served_distribution`): the champion's validation record
  (`models.validation_record`, an MLflow tag written at training) gives the validation
  period's BUY / HOLD / SELL counts at the served thresholds; the served day's directions are
  recomputed from its stored probabilities with the same thresholds, so both sides use one
  rule. Tested only from `min_predictions` served rows (below 50, a 10-point share gap is
  five rows: noise, and chi-square's expected counts get too small). The expected-return
  spread across stocks is compared as a ratio to the validation spread (the measured skill
  in return units): outside [1 / max_spread_ratio, max_spread_ratio] the score's scale moved.
  A champion registered before the record existed is "no validation record", not an error.
* Model age: days since the champion was trained; stale beyond `max_model_age_days` (the
  weekly retraining plus a missed week's margin).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

from vfr_ml_pipelines.lib.models.validation_record import ValidationRecord
from vfr_ml_pipelines.lib.serving.payloads import DEFAULT_MODEL_ID, DirectionThresholds, direction_for
from vfr_ml_pipelines.lib.serving.ttl import next_publish_after
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key

DIRECTIONS = ("BUY", "HOLD", "SELL")
REDIS_NO_KEY, REDIS_NO_EXPIRY = -2, -1


@dataclass(frozen=True)
class ServingHealthConfig:
    coverage_target: float = 1.0
    margin_seconds: int = 0
    distribution_alpha: float = 0.01
    min_share_gap: float = 0.10
    max_model_age_days: float = 10.0
    min_predictions: int = 50
    max_spread_ratio: float = 2.0
    buy_threshold: float = DirectionThresholds.buy
    sell_threshold: float = DirectionThresholds.sell


def seconds_to_next_publish(now: datetime) -> float:
    """Seconds from `now` (timezone-aware) to the next scheduled publish (`serving.ttl`)."""
    return (next_publish_after(now) - now).total_seconds()


@dataclass(frozen=True)
class CoverageReport:
    expected: int
    covered: int
    missing: tuple[tuple[str, str], ...]
    expiring: tuple[tuple[str, str], ...]  # present but gone before the next publish
    per_horizon: pd.DataFrame

    @property
    def coverage(self) -> float:
        return self.covered / self.expected if self.expected else float("nan")

    def table(self) -> pd.DataFrame:
        return self.per_horizon.copy()


def coverage(
    universe: Sequence[str],
    horizons: Sequence[str],
    key_ttls: Mapping[str, int | None],
    *,
    seconds_to_publish: float,
    margin_seconds: int = 0,
    key_for: Callable[[str, str], str] = lambda symbol, horizon: prediction_key(symbol, horizon, DEFAULT_MODEL_ID),
) -> CoverageReport:
    missing, expiring, rows = [], [], []
    for horizon in horizons:
        gone = early = 0
        for symbol in universe:
            ttl = key_ttls.get(key_for(symbol, horizon), REDIS_NO_KEY)
            if ttl is not None and ttl == REDIS_NO_KEY:
                missing.append((symbol, horizon))
                gone += 1
            elif ttl is not None and ttl != REDIS_NO_EXPIRY and ttl < seconds_to_publish + margin_seconds:
                expiring.append((symbol, horizon))
                early += 1
        covered = len(universe) - gone - early
        rows.append({"horizon": horizon, "expected": len(universe), "covered": covered, "missing": gone,
                     "expiring_early": early, "coverage": covered / len(universe) if universe else np.nan})
    per_horizon = pd.DataFrame(rows, columns=["horizon", "expected", "covered", "missing", "expiring_early", "coverage"])
    expected = len(universe) * len(horizons)
    return CoverageReport(expected, expected - len(missing) - len(expiring), tuple(missing), tuple(expiring), per_horizon)


@dataclass(frozen=True)
class DistributionCheck:
    counts: dict[str, int]
    current_shares: dict[str, float]
    reference_shares: dict[str, float]
    mean_probability: float
    reference_mean_probability: float | None
    chi2: float
    pvalue: float
    max_share_gap: float
    shifted: bool

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"direction": DIRECTIONS, "count": [self.counts[d] for d in DIRECTIONS],
                             "share": [self.current_shares[d] for d in DIRECTIONS],
                             "validation_share": [self.reference_shares[d] for d in DIRECTIONS]})


def direction_counts(directions: Sequence[str]) -> dict[str, int]:
    values = pd.Series(list(directions), dtype=object)
    unknown = sorted(set(values) - set(DIRECTIONS))
    if unknown:
        raise ValueError(f"unknown direction(s) {unknown}; expected {DIRECTIONS}")
    return {d: int((values == d).sum()) for d in DIRECTIONS}


def prediction_distribution(
    directions: Sequence[str],
    probabilities: Sequence[float],
    reference_counts: Mapping[str, int],
    *,
    reference_mean_probability: float | None = None,
    config: ServingHealthConfig = ServingHealthConfig(),
) -> DistributionCheck:
    counts = direction_counts(directions)
    n = sum(counts.values())
    if n == 0:
        raise ValueError("prediction_distribution: no predictions")
    smoothed = np.array([reference_counts.get(d, 0) + 0.5 for d in DIRECTIONS], dtype=np.float64)
    reference = smoothed / smoothed.sum()
    observed = np.array([counts[d] for d in DIRECTIONS], dtype=np.float64)
    chi2, pvalue = stats.chisquare(observed, reference * n)
    current = observed / n
    gap = float(np.max(np.abs(current - reference)))
    return DistributionCheck(
        counts, dict(zip(DIRECTIONS, current.tolist())), dict(zip(DIRECTIONS, reference.tolist())),
        float(np.mean(probabilities)) if len(probabilities) else float("nan"), reference_mean_probability,
        float(chi2), float(pvalue), gap, bool(pvalue < config.distribution_alpha and gap >= config.min_share_gap),
    )


@dataclass(frozen=True)
class ModelAge:
    days: float
    stale: bool


def model_age(trained_at: datetime, now: datetime, config: ServingHealthConfig = ServingHealthConfig()) -> ModelAge:
    if trained_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("model_age needs timezone-aware datetimes")
    days = (now - trained_at).total_seconds() / 86_400
    return ModelAge(days, days > config.max_model_age_days)


NO_RECORD, TOO_FEW, MATCHES, SHIFTED = "no validation record", "too few predictions", "matches validation", "shifted"


@dataclass(frozen=True)
class ServedDistribution:
    status: str  # NO_RECORD, TOO_FEW, MATCHES or SHIFTED
    predictions: int
    check: DistributionCheck | None  # None without a record or with too few predictions
    spread: float  # cross-sectional std of the served expected returns
    validation_spread: float | None
    spread_ratio: float | None

    @property
    def flagged(self) -> bool:
        return self.status == SHIFTED

    def summary(self) -> dict:
        out = {"status": self.status, "predictions": self.predictions, "spread": _rounded(self.spread),
               "validation_spread": _rounded(self.validation_spread), "spread_ratio": _rounded(self.spread_ratio)}
        if self.check is not None:
            out.update({"shares": {d: round(v, 4) for d, v in self.check.current_shares.items()},
                        "validation_shares": {d: round(v, 4) for d, v in self.check.reference_shares.items()},
                        "chi2": _rounded(self.check.chi2), "pvalue": _rounded(self.check.pvalue, 6),
                        "max_share_gap": _rounded(self.check.max_share_gap),
                        "mean_probability": _rounded(self.check.mean_probability),
                        "validation_mean_probability": _rounded(self.check.reference_mean_probability)})
        return out


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def served_distribution(
    record: ValidationRecord | None,
    probabilities: Sequence[float],
    expected_returns: Sequence[float],
    config: ServingHealthConfig = ServingHealthConfig(),
) -> ServedDistribution:
    """One served session of a champion (its stored probabilities and expected returns)
    against the champion's validation record."""
    p = np.asarray(probabilities, dtype=np.float64)
    spread = float(np.std(np.asarray(expected_returns, dtype=np.float64))) if len(expected_returns) else float("nan")
    if record is None:
        return ServedDistribution(NO_RECORD, len(p), None, spread, None, None)
    ratio = spread / record.expected_return_spread if record.expected_return_spread > 0 else float("nan")
    if len(p) < config.min_predictions:
        return ServedDistribution(TOO_FEW, len(p), None, spread, record.expected_return_spread, ratio)
    thresholds = DirectionThresholds(buy=config.buy_threshold, sell=config.sell_threshold)
    check = prediction_distribution(
        [direction_for(float(x), thresholds) for x in p], p,
        record.direction_counts(thresholds.buy, thresholds.sell),
        reference_mean_probability=record.probability_mean, config=config,
    )
    scale_moved = np.isfinite(ratio) and not 1 / config.max_spread_ratio <= ratio <= config.max_spread_ratio
    status = SHIFTED if check.shifted or scale_moved else MATCHES
    return ServedDistribution(status, len(p), check, spread, record.expected_return_spread, ratio)


def inference_latency(publish_metadata: Mapping[str, object], horizons: Sequence[str]) -> dict[str, dict]:
    """Per horizon, the champion's scoring time and symbols in the last publish, read from the
    `predictions` step's metadata (plain values; `{h}_champion_score_seconds`,
    `{h}_champion_symbols`, written by `serving.session_predictions`). A horizon the run did not
    time (a run older than the record, or no champion) is left out."""
    out = {}
    for horizon in horizons:
        seconds = publish_metadata.get(f"{horizon}_champion_score_seconds")
        if seconds is not None:
            symbols = publish_metadata.get(f"{horizon}_champion_symbols")
            out[horizon] = {"seconds": float(seconds), "symbols": None if symbols is None else int(symbols)}
    return out
