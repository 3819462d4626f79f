"""The candidate algorithms and what each is called by the systems that name it.

One row per algorithm: the Dagster asset kinds shown in the UI, the `model_type` of VFR's
`ml_models` table, and the `modelType` of VFR's cached prediction payload (VFR's enum has no
linear model: a linear champion is reported as an ensemble, which VFR's code treats generically).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Algorithm:
    name: str
    dagster_kinds: frozenset[str]
    ml_models_type: str
    vfr_payload_type: str


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("lightgbm", frozenset({"lightgbm", "mlflow"}), "lightgbm", "LIGHTGBM"),
        Algorithm("xgboost", frozenset({"xgboost", "mlflow"}), "xgboost", "XGBOOST"),
        Algorithm("linear", frozenset({"scikitlearn", "mlflow"}), "linear_regression", "ENSEMBLE"),
        Algorithm("ensemble", frozenset({"python", "mlflow"}), "ensemble", "ENSEMBLE"),
    )
}


def algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; expected one of {sorted(ALGORITHMS)}") from None


def vfr_payload_type(name: str) -> str:
    """VFR's payload `modelType` for an algorithm tag; anything unknown is served as an ensemble."""
    found = ALGORITHMS.get(name)
    return found.vfr_payload_type if found else "ENSEMBLE"
