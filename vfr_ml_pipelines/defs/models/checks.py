import math

import dagster as dg

from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.defs.resources import MlflowResource, PromotionPolicyResource
from vfr_ml_pipelines.lib.models.champions import GATE_REASON_TAG, GATE_TAG
from vfr_ml_pipelines.lib.models.comparison import COMPARISON_TAG, PairedComparison
from vfr_ml_pipelines.lib.models.promotion import decide
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, serving_model_name


def build_promotion_gate(horizon: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=f"challenger_{horizon}_model", name="promotion_gate", blocking=True)
    def _gate(mlflow: MlflowResource, promotion_policy: PromotionPolicyResource) -> dg.AssetCheckResult:
        """May the challenger become champion? Canaries passed, validation Rank IC significant,
        better than the champion by the margin with a paired t on the sessions of the
        challenger's validation window the champion never saw (or no champion), loads in
        under the time limit, fits the size limit. When it may not, the champion stays and the description
        says why: with WARN severity when the challenger is merely not good enough (the run
        goes on and serves the champion), with ERROR severity, blocking everything
        downstream, when a leakage canary failed (nothing should be published then)."""
        registry = mlflow.registry
        name = serving_model_name(horizon)
        challenger = registry.by_alias(name, CHALLENGER)
        if challenger is None:
            return dg.AssetCheckResult(passed=False, description=f"{name} has no '{CHALLENGER}' version")
        champion = registry.by_alias(name, CHAMPION)
        if champion is not None and champion.version == challenger.version:
            return dg.AssetCheckResult(passed=True, description=f"{challenger.model_id} is already the champion")
        loaded = registry.load_serving_model(name, challenger.version)
        size = registry.model_size_bytes(name, challenger.version)
        recorded = challenger.tags.get(COMPARISON_TAG)
        comparison = PairedComparison.from_json(recorded) if recorded else None
        decision = decide(
            challenger.tags, champion.tags if champion else None,
            load_seconds=loaded.seconds, size_bytes=size, policy=promotion_policy.policy,
            comparison=comparison, champion_id=champion.model_id if champion else None,
        )
        description = f"{challenger.model_id} vs {champion.model_id if champion else 'no champion'}: {decision.summary}"
        paired = comparison if champion is not None and comparison is not None else None
        registry.set_version_tags(
            name, challenger.version,
            {GATE_TAG: "passed" if decision.promote else "failed", GATE_REASON_TAG: description[:4900]},
        )
        return dg.AssetCheckResult(
            passed=decision.promote,
            severity=dg.AssetCheckSeverity.ERROR if decision.leak_suspected else dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "challenger": challenger.model_id,
                "champion": champion.model_id if champion else "none",
                "load_seconds": round(loaded.seconds, 4),
                "size_bytes": size,
                "failed_conditions": len(decision.failed),
                "validation_rank_ic": _finite(challenger.tags.get("validation_rank_ic")),
                "validation_t": _finite(challenger.tags.get("validation_rank_ic_t")),
                "paired_comparison": paired.describe() if paired else "none (no champion)" if champion is None else "not recorded",
                "paired_mean_difference": _finite(paired.mean_difference if paired else None),
                "paired_t": _finite(paired.t if paired else None),
                "paired_sessions": paired.n_days if paired else 0,
            },
        )

    return _gate


def _finite(value) -> float | None:
    """A tag or figure as a float for the metadata; None (shown empty) when missing or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


promotion_gates = [build_promotion_gate(h) for h in HORIZONS]
