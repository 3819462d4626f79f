"""The blocking gate before predictions are published to VFR.

`check_predictions` reads the rows of `vfr_ml.predictions` that are about to be served
(columns as written by `predict.prediction_rows`) and reports every reason not to publish
them: too few universe symbols covered, duplicate or unknown symbols, NaN / Infinity, a
probability or confidence outside 0..1, a direction or confidence that contradicts the
probability, a probability and an expected return pointing opposite ways, an implausibly
large expected return, or a value that would not fit VFR's `ml_predictions` columns exactly
as `vfr_tables.write_ml_predictions` writes them. Each problem names the symbol, the field
and the value, so the failed check says what to fix. `direction_share_problems` compares a
served day's BUY / SELL / HOLD shares with those the model gave its validation period.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vfr_ml_pipelines.lib.serving.payloads import VFR_HORIZONS, DirectionThresholds, confidence_for, direction_for
from vfr_ml_pipelines.lib.serving.vfr_tables import ml_prediction_problems

# Largest plausible |expected return| per horizon (fractions). A forecast beyond these is
# far outside any daily-data model's range and almost surely a unit or scaling bug (a
# percentage published as a fraction, a price published as a return).
DEFAULT_MAX_ABS_EXPECTED_RETURN: dict[str, float] = {"1h": 0.1, "4h": 0.15, "1d": 0.2, "1w": 0.5, "1m": 1.0}
# confidence = |2p - 1| (payloads.confidence_for), computed in float
CONFIDENCE_TOLERANCE = 1e-9
# probabilities of rows ordered by expected_return may dip by float noise, not more
ORDERING_TOLERANCE = 1e-12
# problems listed in the result; the rest are counted in one "... and N more" entry
MAX_LISTED_PROBLEMS = 25
DIRECTIONS = ("BUY", "SELL", "HOLD")
# A served day's BUY / SELL / HOLD shares may differ from the validation period's by this
# total-variation distance (half the summed absolute share differences) at most. The
# calibration has no market-timing term, so a day's shares move only as far as its score
# distribution does; "all SELL" where validation had none is a distance of 1.
MAX_DIRECTION_SHARE_DISTANCE = 0.5
REQUIRED_COLUMNS = ("symbol", "horizon", "expected_return", "probability", "direction", "confidence", "current_price")


@dataclass(frozen=True)
class PredictionCheckResult:
    passed: bool
    coverage: float  # share of universe symbols with a prediction (the lowest over horizons)
    problems: list[str]  # each names the symbol, field and value; capped with "... and N more"
    metadata: dict[str, float | int | str] = field(default_factory=dict)


def _show(value: Any) -> str:
    """A value as a reader wants it in a message: 1.00001, not np.float64(1.00001)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return repr(value)


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None (missing, not a number, NaN or +-Infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON for JavaScript's JSON.parse")


def _feature_problems(label: str, features: Any) -> list[str]:
    """`features` must be a JSON object (or a dict, as read back from jsonb) of finite
    numbers: VFR reads them as numbers and JSON.parse refuses NaN / Infinity."""
    if isinstance(features, str):
        try:
            features = json.loads(features, parse_constant=_reject_constant)
        except ValueError as exc:
            return [f"{label}: features is not strict JSON ({exc})"]
    if not isinstance(features, Mapping):
        return [f"{label}: features is {type(features).__name__}, not a JSON object"]
    bad = [name for name, value in features.items() if _finite(value) is None or isinstance(value, str)]
    if bad:
        shown = ", ".join(f"{name}={_show(features[name])}" for name in bad[:5])
        return [f"{label}: features {shown} not finite numbers" + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")]
    return []


def _row_problems(
    row: Mapping[str, Any], label: str, bounds: Mapping[str, float], thresholds: DirectionThresholds | None,
    check_signs: bool = True,
) -> list[str]:
    problems: list[str] = []
    horizon = row["horizon"]
    if horizon not in VFR_HORIZONS:
        problems.append(f"{label}: horizon {horizon!r} is not one VFR reads ({', '.join(VFR_HORIZONS)})")

    numbers: dict[str, float | None] = {}
    for name in ("expected_return", "probability", "confidence", "current_price", "feature_completeness"):
        if name not in row:
            continue
        numbers[name] = _finite(row[name])
        if numbers[name] is None:
            problems.append(f"{label}: {name} {_show(row[name])} is not a finite number")
    for name in ("probability", "confidence", "feature_completeness"):
        value = numbers.get(name)
        if value is not None and not 0.0 <= value <= 1.0:
            problems.append(f"{label}: {name} {_show(value)} outside 0..1")
    price = numbers.get("current_price")
    if price is not None and price <= 0:
        problems.append(f"{label}: current_price {_show(price)} is not above 0")

    direction = row["direction"]
    probability, confidence, expected = numbers["probability"], numbers["confidence"], numbers["expected_return"]
    if direction not in DIRECTIONS:
        problems.append(f"{label}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    elif probability is not None and 0.0 <= probability <= 1.0:
        # any valid thresholds have sell < 0.5 < buy, so BUY needs p > 0.5 and SELL p < 0.5
        if thresholds is not None and direction != direction_for(probability, thresholds):
            problems.append(
                f"{label}: direction {direction} contradicts probability {_show(probability)} "
                f"(thresholds sell {thresholds.sell}, buy {thresholds.buy} give {direction_for(probability, thresholds)})"
            )
        elif (direction == "BUY" and probability <= 0.5) or (direction == "SELL" and probability >= 0.5):
            problems.append(f"{label}: direction {direction} contradicts probability {_show(probability)}")
    if probability is not None and confidence is not None and 0.0 <= probability <= 1.0:
        implied = confidence_for(probability)
        if abs(confidence - implied) > CONFIDENCE_TOLERANCE:
            problems.append(
                f"{label}: confidence {_show(confidence)} is not |2p - 1| = {_show(implied)} of probability {_show(probability)}"
            )
    if check_signs and expected is not None and probability is not None and 0.0 <= probability <= 1.0:
        # one calibrated model gives both (models.calibration): P(up) > 0.5 with a negative
        # expected return (or < 0.5 with a positive one) is shown to a user as a contradiction
        if (probability > 0.5 and expected < 0) or (probability < 0.5 and expected > 0):
            problems.append(
                f"{label}: probability {_show(probability)} and expected_return {_show(expected)} point opposite ways"
            )
    if expected is not None and horizon in bounds and abs(expected) > bounds[horizon]:
        problems.append(f"{label}: expected_return {_show(expected)} beyond the plausible +-{bounds[horizon]} for {horizon}")

    if "features" in row:
        problems.extend(_feature_problems(label, row["features"]))

    # fits VFR's ml_predictions exactly as the writer fits it (only for otherwise sane
    # numbers, so one NaN is reported once)
    sane = all(numbers.get(n) is not None for n in ("probability", "confidence", "current_price"))
    if sane and 0.0 <= probability <= 1.0 and direction in DIRECTIONS:  # type: ignore[operator]
        _, table_problems = ml_prediction_problems(row["symbol"], direction, probability, confidence, price)
        problems.extend(table_problems)
    return problems


def _ordering_problems(records: list[dict[str, Any]], several: bool) -> list[str]:
    """Within one horizon (and model), a higher expected_return must not come with a lower
    probability: the probability is an increasing function of the expected return
    (`models.calibration.ReturnCalibration`), so a reversal means the two fields were not
    computed from one model, and VFR would show a larger expected gain as less likely to be
    a gain."""
    groups: dict[tuple[Any, ...], list[tuple[float, float, str]]] = {}
    for r in records:
        expected, probability = _finite(r["expected_return"]), _finite(r["probability"])
        if expected is None or probability is None or not 0.0 <= probability <= 1.0:
            continue  # already reported
        key = (r["horizon"], r.get("model_name"), r.get("model_version"))
        groups.setdefault(key, []).append((expected, probability, str(r["symbol"])))
    problems = []
    for (horizon, *_), items in groups.items():
        items.sort()
        for (er_a, p_a, sym_a), (er_b, p_b, sym_b) in zip(items, items[1:]):
            if er_b > er_a and p_b < p_a - ORDERING_TOLERANCE:
                suffix = f" {horizon}" if several else ""
                problems.append(
                    f"{sym_b}{suffix}: probability {_show(p_b)} below {sym_a}'s {_show(p_a)} although its "
                    f"expected_return {_show(er_b)} is above {_show(er_a)}"
                )
    return problems


def _capped(problems: list[str], limit: int) -> list[str]:
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit} more"]


def check_predictions(
    rows: pd.DataFrame,
    universe: Sequence[str],
    *,
    min_coverage: float = 0.95,
    max_abs_expected_return: Mapping[str, float] | None = None,
    thresholds: DirectionThresholds | None = None,
    check_ordering: bool = True,
    check_signs: bool = True,
) -> PredictionCheckResult:
    """Check the rows about to be published; `passed` only when there is no problem.

    - coverage: for each horizon in `rows`, the share of `universe` symbols with a row;
      the lowest share must be >= `min_coverage` (no rows at all is coverage 0);
    - each (symbol, horizon) once; every symbol in `universe`;
    - expected_return, probability, confidence, current_price (and feature_completeness
      and features when present) finite; probability, confidence, feature_completeness
      in 0..1; current_price > 0;
    - direction BUY / SELL / HOLD and not contradicting the probability (BUY needs p > 0.5,
      SELL p < 0.5; with `thresholds`, exactly `direction_for(p, thresholds)`);
      confidence = |2p - 1| within CONFIDENCE_TOLERANCE;
    - with `check_ordering`, within each horizon and model a higher expected_return never
      has a lower probability; with `check_signs`, probability and expected_return never
      point opposite ways (p > 0.5 with expected_return < 0, or p < 0.5 with > 0);
    - |expected_return| within the horizon's bound (DEFAULT_MAX_ABS_EXPECTED_RETURN, entries
      overridden by `max_abs_expected_return`);
    - every value fits `ml_predictions` as `write_ml_predictions` would write it.

    A missing column, an empty universe or a bad argument is a ValueError (a caller's
    bug, not a property of the predictions)."""
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be within 0..1, got {min_coverage}")
    members = set(universe)
    if not members:
        raise ValueError("the universe is empty: coverage cannot be measured against it")
    bounds = dict(DEFAULT_MAX_ABS_EXPECTED_RETURN)
    for horizon, bound in (max_abs_expected_return or {}).items():
        if _finite(bound) is None or bound <= 0:
            raise ValueError(f"max_abs_expected_return[{horizon!r}] must be a positive number, got {bound!r}")
        bounds[horizon] = float(bound)
    missing_columns = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing_columns:
        raise ValueError(f"prediction rows have no column(s) {missing_columns}; expected those of predict.prediction_rows")

    problems: list[str] = []
    horizons = sorted({str(h) for h in rows["horizon"]})
    several = len(horizons) > 1
    records = rows.to_dict("records")

    keys = Counter((r["symbol"], r["horizon"]) for r in records)
    for (symbol, horizon), count in keys.items():
        if count > 1:
            problems.append(f"{symbol}{' ' + str(horizon) if several else ''}: symbol appears {count} times")
    strangers = sorted({str(r["symbol"]) for r in records} - {str(m) for m in members})
    problems.extend(f"{symbol}: symbol is not in the universe" for symbol in strangers)

    for record in records:
        label = f"{record['symbol']}{' ' + str(record['horizon']) if several else ''}"
        problems.extend(_row_problems(record, label, bounds, thresholds, check_signs))
    if check_ordering:
        problems.extend(_ordering_problems(records, several))

    per_horizon = {h: len(members & {r["symbol"] for r in records if str(r["horizon"]) == h}) for h in horizons}
    covered = min(per_horizon.values()) if per_horizon else 0
    coverage = covered / len(members)
    if not records:
        problems.insert(0, f"no predictions for any of the {len(members)} universe symbols")
    for horizon, count in per_horizon.items():
        if count / len(members) < min_coverage:
            absent = sorted(members - {r["symbol"] for r in records if str(r["horizon"]) == horizon})
            problems.insert(
                0,
                f"coverage {count / len(members):.4f} of {horizon} below {min_coverage}: {len(absent)} of "
                f"{len(members)} universe symbols have no prediction (e.g. {', '.join(map(str, absent[:10]))})",
            )

    directions = Counter(r["direction"] for r in records)
    metadata: dict[str, float | int | str] = {
        "rows": len(records),
        "universe_symbols": len(members),
        "covered_symbols": covered,
        "coverage": round(coverage, 6),
        "min_coverage": min_coverage,
        "horizons": ", ".join(horizons),
        "problems": len(problems),
        "buy": directions.get("BUY", 0),
        "hold": directions.get("HOLD", 0),
        "sell": directions.get("SELL", 0),
    }
    return PredictionCheckResult(
        passed=not problems, coverage=coverage, problems=_capped(problems, MAX_LISTED_PROBLEMS), metadata=metadata
    )


def direction_shares(rows: pd.DataFrame) -> dict[str, float]:
    """The shares of BUY, SELL and HOLD among `rows` (0 each when there are none)."""
    counts = Counter(rows["direction"]) if len(rows) else Counter()
    total = sum(counts.values())
    return {d: (counts.get(d, 0) / total if total else 0.0) for d in DIRECTIONS}


def direction_share_problems(
    rows: pd.DataFrame, validation: Mapping[str, float], label: str, max_distance: float = MAX_DIRECTION_SHARE_DISTANCE
) -> tuple[list[str], float]:
    """A problem when the BUY / SELL / HOLD shares of one served model's `rows` are farther
    than `max_distance` (total variation) from `validation` (the shares the same model and
    thresholds gave its validation period, `ReturnCalibration.direction_shares`). Returns
    (problems, distance)."""
    served = direction_shares(rows)
    distance = 0.5 * sum(abs(served[d] - float(validation.get(d, 0.0))) for d in DIRECTIONS)
    if distance <= max_distance:
        return [], distance

    def show(shares: Mapping[str, float]) -> str:
        return "/".join(f"{float(shares.get(d, 0.0)):.2f}" for d in DIRECTIONS)

    return [
        f"{label}: BUY/SELL/HOLD shares {show(served)} of {len(rows)} predictions are far from the validation "
        f"period's {show(validation)} (distance {distance:.2f} > {max_distance}); the model says something it never "
        "said on validation: check this session's features and the model's calibration before serving it"
    ], distance
