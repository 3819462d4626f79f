"""The prediction horizons: the one place that says which horizons exist and how long each is.

VFR reads `1d`, `1w` and `1m` from this project (`1w` is VFR's default request); a horizon is
counted in trading sessions, never calendar days.
"""

from __future__ import annotations

# trading sessions per horizon, in the order the pipeline builds and reports them
HORIZON_DAYS: dict[str, int] = {"1d": 1, "1w": 5, "1m": 21}
HORIZONS: tuple[str, ...] = tuple(HORIZON_DAYS)
VFR_DEFAULT_HORIZON = "1w"
LONGEST_HORIZON_DAYS = max(HORIZON_DAYS.values())
# every horizon VFR's `MLPredictionHorizon` type accepts in a cached prediction (VFR_CONTRACT.md)
VFR_CACHE_HORIZONS: tuple[str, ...] = ("1h", "4h", "1d", "1w", "1m")


def horizon_days(horizon: str) -> int:
    """Sessions in `horizon`; a clear error for a horizon this project does not build."""
    try:
        return HORIZON_DAYS[horizon]
    except KeyError:
        raise ValueError(f"unknown horizon {horizon!r}; expected one of {list(HORIZONS)}") from None
