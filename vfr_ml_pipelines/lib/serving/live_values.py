"""The values VFR's live path sends for the model's inputs: a missing input as MISSING_VALUE and
an infinite one as NEGATIVE_ / POSITIVE_INFINITY_VALUE (VFR's JSON has neither NaN nor
Infinity); real inputs must lie in (REAL_MIN, REAL_MAX). The exported trees (live_model.py)
route each stand-in exactly as the original model routes a NaN or an infinity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# the value exported for a missing input, and the guard below which a value counts as one;
# ml_feature_store.value is decimal(20,8): both fit, and no real feature comes near them
MISSING_VALUE = -1.0e11
GUARD_THRESHOLD = -5.0e10
# infinite inputs (JSON has no Infinity) as values beyond every split on their side; real
# inputs lie in (REAL_MIN, REAL_MAX), and a threshold beyond that band (LightGBM writes 1e300
# for a split of "any value" vs NaN) is moved to the gap between the band and the stand-in
# for infinity on its side, which routes every real, infinite and missing input as before
NEGATIVE_INFINITY_VALUE = -4.0e10
REAL_MIN = -3.0e10
REAL_MAX = 8.0e11
POSITIVE_INFINITY_VALUE = 9.0e11


class LiveExportError(ValueError):
    """The serving model cannot be written as one LightGBM text model, or an input of it
    cannot be sent to VFR's live path."""


def live_inputs(values: dict[str, Any], feature_names: list[str], where: str) -> dict[str, float]:
    """The model inputs as VFR must send them: a missing (None / NaN) value as
    MISSING_VALUE, an infinite one as NEGATIVE_ / POSITIVE_INFINITY_VALUE; a finite value
    outside (REAL_MIN, REAL_MAX) is an error naming it."""
    out: dict[str, float] = {}
    for name in feature_names:
        value = values.get(name)
        number = math.nan if value is None else float(value)
        if math.isnan(number):
            out[name] = MISSING_VALUE
        elif math.isinf(number):
            out[name] = POSITIVE_INFINITY_VALUE if number > 0 else NEGATIVE_INFINITY_VALUE
        elif not REAL_MIN < number < REAL_MAX:
            raise LiveExportError(f"{where}: feature {name} = {value} cannot be sent to VFR's live path")
        else:
            out[name] = number
    return out


def live_input_matrix(X: np.ndarray, symbols: list[str], feature_names: list[str], where: str) -> np.ndarray:
    """`live_inputs` for a whole session at once: rows of X are symbols, columns the
    features; the same stand-ins, the same error naming the first symbol and feature whose
    finite value cannot be sent."""
    X = np.asarray(X, dtype=np.float64)
    out = np.where(np.isnan(X), MISSING_VALUE, X)
    out = np.where(np.isposinf(X), POSITIVE_INFINITY_VALUE, out)
    out = np.where(np.isneginf(X), NEGATIVE_INFINITY_VALUE, out)
    bad = np.isfinite(X) & ~((X > REAL_MIN) & (X < REAL_MAX))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LiveExportError(f"{symbols[i]} on {where}: feature {feature_names[j]} = {X[i, j]} cannot be sent to VFR's live path")
    return out
