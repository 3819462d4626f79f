"""Asset checks of the models domain.

Defines, for each horizon h in HORIZONS (`lib/horizons.py`): the blocking check
`promotion_gate` on the asset `challenger_{h}_model` (check key
`challenger_{h}_model:promotion_gate`; one check per horizon, all named `promotion_gate`,
none `promotion_gate_{h}`). The gate itself is `lib/models/promotion_gate.py`."""

import dagster as dg

from vfr_ml_pipelines.defs.resources import MlflowResource, PromotionPolicyResource
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models.promotion_gate import run_promotion_gate


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
        verdict = run_promotion_gate(mlflow.registry, horizon, promotion_policy.policy)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.ERROR if verdict.blocks_downstream else dg.AssetCheckSeverity.WARN,
            description=verdict.description,
            metadata=verdict.figures,
        )

    return _gate


promotion_gates = [build_promotion_gate(h) for h in HORIZONS]
