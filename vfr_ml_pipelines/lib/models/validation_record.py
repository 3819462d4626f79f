"""What a model predicted over its validation period, recorded with the registered version
(MLflow tag `validation_distribution`) so that serving health can compare a served day with it.

The record keeps the validation predictions' probabilities as counts in 100 bins of width 0.01
(bin k holds 0.01k <= p < 0.01(k+1); p = 1 falls in the last bin) rather than BUY / HOLD /
SELL counts: the direction thresholds belong to serving (`serving.payloads.DirectionThresholds`,
configurable per run), which the models domain does not import. Any thresholds on the 0.01 grid
(the defaults 0.55 / 0.45 are) give the exact BUY / HOLD / SELL counts of the validation rows
(`direction_counts`). It also keeps the mean probability and the spread of the expected return
across stocks (the per-day cross-sectional standard deviation, averaged over the days), which
is the model's measured skill in return units (`calibration.py`): a served day whose spread is
far from it means the score's scale moved.

Versions registered before this record existed have no tag: `from_tags` returns None and the
caller reports "no validation record"."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

VALIDATION_RECORD_TAG = "validation_distribution"
PROBABILITY_BINS = 100  # bins of width 0.01 over [0, 1]
_EDGES = np.round(np.arange(PROBABILITY_BINS + 1) / PROBABILITY_BINS, 2)  # the same doubles as the literals 0.55, 0.45


@dataclass(frozen=True)
class ValidationRecord:
    rows: int
    days: int
    probability_counts: tuple[int, ...]  # PROBABILITY_BINS counts
    probability_mean: float
    expected_return_spread: float  # mean over days of the cross-sectional std of expected_return

    def direction_counts(self, buy: float, sell: float) -> dict[str, int]:
        """BUY (p >= buy), SELL (p <= sell) and HOLD counts of the validation rows. Exact for
        thresholds on the 0.01 grid; ValueError otherwise (the bins cannot split there)."""
        counts = np.asarray(self.probability_counts, dtype=np.int64)
        buy_bin, sell_bin = _grid_index(buy, "buy"), _grid_index(sell, "sell")
        buy_count = int(counts[buy_bin:].sum())
        # p <= sell: the bins below sell, plus rows exactly at sell (in bin `sell_bin`): the
        # record cannot tell p == sell from sell < p < sell + 0.01, so p == sell counts as HOLD
        sell_count = int(counts[:sell_bin].sum())
        return {"BUY": buy_count, "HOLD": self.rows - buy_count - sell_count, "SELL": sell_count}

    def to_tag(self) -> str:
        return json.dumps({**asdict(self), "probability_counts": list(self.probability_counts)}, separators=(",", ":"))

    @classmethod
    def from_tag(cls, text: str) -> ValidationRecord:
        try:
            values = json.loads(text)
            record = cls(int(values["rows"]), int(values["days"]), tuple(int(c) for c in values["probability_counts"]),
                         float(values["probability_mean"]), float(values["expected_return_spread"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"tag {VALIDATION_RECORD_TAG!r} is not a validation record ({exc}): {text[:200]!r}") from None
        if len(record.probability_counts) != PROBABILITY_BINS or sum(record.probability_counts) != record.rows:
            raise ValueError(f"tag {VALIDATION_RECORD_TAG!r}: {len(record.probability_counts)} bins summing to "
                             f"{sum(record.probability_counts)}, expected {PROBABILITY_BINS} summing to rows={record.rows}")
        return record


def _grid_index(threshold: float, name: str) -> int:
    index = int(np.searchsorted(_EDGES, threshold))
    if index > PROBABILITY_BINS or _EDGES[index] != threshold:
        raise ValueError(f"direction threshold {name}={threshold} is not on the validation record's 0.01 grid")
    return index


def probability_bins(probabilities: np.ndarray) -> np.ndarray:
    """Bin index of each probability (0.01k <= p < 0.01(k+1); 1.0 in the last bin)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must be finite and within [0, 1]")
    return np.minimum(np.searchsorted(_EDGES, p, side="right") - 1, PROBABILITY_BINS - 1)


def cross_sectional_spread(frame: pd.DataFrame, column: str = "expected_return") -> float:
    """Mean over trade dates of the cross-sectional (ddof=0) standard deviation of `column`."""
    per_day = frame.groupby("trade_date")[column].std(ddof=0)
    return float(per_day.mean()) if len(per_day) else math.nan


def validation_record(predictions: pd.DataFrame) -> ValidationRecord:
    """The record of a candidate's out-of-sample predictions (`pipeline.Candidate.predictions`:
    trade_date, expected_return, probability, segment): its validation segments (every fold)."""
    missing = [c for c in ("trade_date", "expected_return", "probability", "segment") if c not in predictions.columns]
    if missing:
        raise ValueError(f"validation_record: predictions lack column(s) {missing}")
    val = predictions[predictions["segment"] == "val"]
    if val.empty:
        raise ValueError("validation_record: no validation rows (segment 'val') in the predictions")
    counts = np.bincount(probability_bins(val["probability"].to_numpy()), minlength=PROBABILITY_BINS)
    return ValidationRecord(len(val), int(val["trade_date"].nunique()), tuple(int(c) for c in counts),
                            float(val["probability"].mean()), cross_sectional_spread(val))


def from_tags(tags: Mapping[str, str]) -> ValidationRecord | None:
    """The record of a registered version's tags; None for a version registered without one."""
    text = tags.get(VALIDATION_RECORD_TAG)
    return None if text is None else ValidationRecord.from_tag(text)
