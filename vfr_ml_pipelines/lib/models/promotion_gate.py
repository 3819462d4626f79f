"""The promotion gate run against the registry: the challenger of `vfr-{horizon}` is loaded
(timed), measured and judged against the champion by `promotion.decide`, and the verdict is
written on the challenger as tags (GATE_TAG, GATE_REASON_TAG) that
`champions.promote_challenger` reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vfr_ml_pipelines.lib.models.champions import GATE_REASON_TAG, GATE_TAG
from vfr_ml_pipelines.lib.models.comparison import COMPARISON_TAG, PairedComparison
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy, decide
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, ModelRegistry, serving_model_name

# under the 5,000 characters MLflow 2's registry accepted for a tag value
_MAX_REASON_CHARS = 4900


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    description: str
    # a failure that must stop everything downstream (no challenger, or a leakage canary
    # failed); otherwise a failure only keeps the champion and the run goes on
    blocks_downstream: bool = True
    figures: dict[str, Any] = field(default_factory=dict)  # for the check's metadata


def _finite(value) -> float | None:
    """A tag or figure as a float for the metadata; None (shown empty) when missing or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_promotion_gate(registry: ModelRegistry, horizon: str, policy: PromotionPolicy, *, name: str | None = None) -> GateVerdict:
    """May the challenger of `name` (default `vfr-{horizon}`) become champion? (conditions:
    `promotion.py`)"""
    name = name or serving_model_name(horizon)
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is None:
        return GateVerdict(passed=False, description=f"{name} has no '{CHALLENGER}' version")
    champion = registry.by_alias(name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        return GateVerdict(passed=True, description=f"{challenger.model_id} is already the champion")
    loaded = registry.load_serving_model(name, challenger.version)
    size = registry.model_size_bytes(name, challenger.version)
    recorded = challenger.tags.get(COMPARISON_TAG)
    comparison = PairedComparison.from_json(recorded) if recorded else None
    decision = decide(
        challenger.tags, champion.tags if champion else None,
        load_seconds=loaded.cpu_seconds, size_bytes=size, policy=policy,
        comparison=comparison, champion_id=champion.model_id if champion else None,
    )
    description = f"{challenger.model_id} vs {champion.model_id if champion else 'no champion'}: {decision.summary}"
    paired = comparison if champion is not None and comparison is not None else None
    registry.set_version_tags(
        name, challenger.version,
        {GATE_TAG: "passed" if decision.promote else "failed", GATE_REASON_TAG: description[:_MAX_REASON_CHARS]},
    )
    figures = {
        "challenger": challenger.model_id,
        "champion": champion.model_id if champion else "none",
        "load_cpu_seconds": round(loaded.cpu_seconds, 4),
        "load_wall_seconds": round(loaded.seconds, 4),
        "size_bytes": size,
        "failed_conditions": len(decision.failed),
        "validation_rank_ic": _finite(challenger.tags.get("validation_rank_ic")),
        "validation_t": _finite(challenger.tags.get("validation_rank_ic_t")),
        "paired_comparison": paired.describe() if paired else "none (no champion)" if champion is None else "not recorded",
        "paired_mean_difference": _finite(paired.mean_difference if paired else None),
        "paired_t": _finite(paired.t if paired else None),
        "paired_sessions": paired.n_days if paired else 0,
    }
    return GateVerdict(decision.promote, description, blocks_downstream=decision.leak_suspected, figures=figures)
