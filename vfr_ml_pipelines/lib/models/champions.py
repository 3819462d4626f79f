"""Moving a horizon's `champion` alias (promotion and rollback), with the `ml_models`
mirror and the `vfr_ml.champion_history` log kept in step.

Statuses in `ml_models` (VFR's table) follow the registry: a champion is CHAMPION_STATUS
(`validated`), a challenger that is not the champion is `shadow` (published under its own id
only), every earlier champion is `deprecated`, candidates that never served stay `validated`.
`deployed` is kept for what VFR's live ensemble runs (it runs every deployed row): the live
model's champion (else the live horizon's), set by `lib/serving/live_path.py` once its files
are exported. The live model's line (`vfr-live-1w`) is promoted and rolled back by the same
functions (`name`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.models import store
from vfr_ml_pipelines.lib.models.catalog import ALGORITHMS
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, ModelRegistry, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.serving.vfr_tables import upsert_ml_model

GATE_TAG = "promotion_gate"
GATE_REASON_TAG = "promotion_gate_reason"
# not `deployed`: VFR's live ensemble would run the row before its files exist (live_path.py)
CHAMPION_STATUS = "validated"
ROLLBACK_REASON = "operator rollback"


@dataclass(frozen=True)
class ChampionChange:
    horizon: str
    action: str
    version: str
    previous_version: str | None
    reason: str
    name: str = ""  # the registered model ("" = the horizon's, `vfr-{horizon}`)

    def describe(self) -> str:
        """One English sentence for logs and the UI, with the versions that matter."""
        name = self.name or serving_model_name(self.horizon)
        reason = self.reason.rstrip(".")
        if self.action == "keep":
            if self.previous_version is None:
                return f"{name} has no champion: the challenger was not promoted ({reason})."
            return f"{name} keeps champion v{self.previous_version}: the challenger was not promoted ({reason})."
        if self.action == "promote":
            if self.previous_version == self.version:
                return f"{name} v{self.version} is already the champion."
            was = f"replacing v{self.previous_version}" if self.previous_version else "the horizon's first champion"
            return f"{name} v{self.version} is promoted to champion, {was} ({reason})."
        return f"{name} is rolled back to v{self.version}, replacing v{self.previous_version} ({reason})."


def ml_model_type(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"no ml_models model_type for algorithm {algorithm!r}")
    return ALGORITHMS[algorithm].ml_models_type


def _float_tag(version: RegisteredVersion, key: str) -> float | None:
    try:
        return float(version.tags[key])
    except (KeyError, ValueError):
        return None


# the after-cost information ratio of the challenger's backtest (`backtest_{h}` writes it):
# evidence shown beside the gate, which still decides on validation figures only
BACKTEST_IR_TAG = "backtest_information_ratio"


def challenger_evidence(registry: ModelRegistry, horizon: str) -> dict[str, float | str]:
    """The challenger's validation Rank IC and backtest information ratio, as its version's
    tags hold them ("none" when absent)."""
    challenger = registry.by_alias(serving_model_name(horizon), CHALLENGER)
    if challenger is None:
        return {"challenger": "none"}
    return {
        "challenger": challenger.model_id,
        **{
            f"challenger_{key}": "none" if value is None else value
            for key, value in (("validation_rank_ic", _float_tag(challenger, "validation_rank_ic")),
                               (BACKTEST_IR_TAG, _float_tag(challenger, BACKTEST_IR_TAG)))
        },
    }


def mirror_status(conn: Connection, version: RegisteredVersion, horizon: str, status: str) -> None:
    """Write one registry version's row of `ml_models` with `status`."""
    upsert_ml_model(
        conn, name=version.name, version=version.version,
        model_type=ml_model_type(version.tags.get("algorithm", "lightgbm")), horizon=horizon,
        target=f"forward_return_{horizon}", validation_score=_float_tag(version, "validation_rank_ic"),
        test_score=_float_tag(version, "test_rank_ic"), status=status,
    )


def _record(conn: Connection, change: ChampionChange, name: str, run_id: str | None) -> None:
    store.record_champion_change(
        conn, horizon=change.horizon, model_name=name, version=change.version, previous_version=change.previous_version,
        action=change.action, reason=change.reason, run_id=run_id,
    )


def promote_challenger(
    registry: ModelRegistry, conn: Connection, horizon: str, *, run_id: str | None = None, name: str | None = None,
) -> ChampionChange:
    """`champion` := the current `challenger` of `name` (default `vfr-{horizon}`) when it
    carries the gate's pass tag. When the gate failed, the champion stays (action "keep",
    with the gate's reason); when the gate never ran, PermissionError."""
    name = name or serving_model_name(horizon)
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is None:
        raise LookupError(f"{name} has no '{CHALLENGER}' version to promote")
    previous = registry.by_alias(name, CHAMPION)
    if previous is not None and previous.version == challenger.version:
        return ChampionChange(horizon, "promote", challenger.version, previous.version, "already the champion", name)
    if challenger.tags.get(GATE_TAG) == "failed":
        kept = previous.version if previous else None
        return ChampionChange(horizon, "keep", kept or "none", kept, challenger.tags.get(GATE_REASON_TAG, "the promotion gate failed"),
                              name)
    if challenger.tags.get(GATE_TAG) != "passed":
        raise PermissionError(
            f"{challenger.model_id} has not passed the promotion gate (tag {GATE_TAG}={challenger.tags.get(GATE_TAG)!r}); "
            "materialize its challenger asset with the promotion_gate check first"
        )
    registry.set_alias(name, CHAMPION, challenger.version)
    mirror_status(conn, challenger, horizon, CHAMPION_STATUS)
    if previous is not None:
        mirror_status(conn, previous, horizon, "deprecated")
    change = ChampionChange(horizon, "promote", challenger.version, previous.version if previous else None, "passed the promotion gate",
                            name)
    _record(conn, change, name, run_id)
    return change


def previous_champion(conn: Connection, horizon: str, current: str, name: str | None = None) -> str | None:
    """The version of `name` (default `vfr-{horizon}`) that was champion before `current`
    (the latest history entry that put a different version in place before `current` got there)."""
    seen_current = False
    for version in store.champion_history_versions(conn, horizon, name or serving_model_name(horizon)):
        if version == current:
            seen_current = True
        elif seen_current:
            return version
    return None


def rollback(
    registry: ModelRegistry, conn: Connection, horizon: str, *, to_version: str | None = None,
    reason: str = ROLLBACK_REASON, run_id: str | None = None, name: str | None = None,
) -> ChampionChange:
    """Re-point `champion` of `name` (default `vfr-{horizon}`; the live model's line too,
    `live_training.py`) to `to_version`, or to the previous champion. The version rolled
    back from becomes `deprecated`, and loses the `challenger` alias if it held it (a
    rolled-back model is not shadow-served)."""
    name = name or serving_model_name(horizon)
    current = registry.by_alias(name, CHAMPION)
    if current is None:
        raise LookupError(f"{name} has no champion to roll back")
    target = to_version or previous_champion(conn, horizon, current.version, name)
    if target is None:
        raise LookupError(f"{name}: no earlier champion of {horizon} is recorded; pass the version to roll back to")
    if target == current.version:
        raise ValueError(f"{name} v{target} is already the champion")
    version = registry.version(name, target)  # raises when the version does not exist
    registry.set_alias(name, CHAMPION, version.version)
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is not None and challenger.version == current.version:
        registry.client.delete_registered_model_alias(name, CHALLENGER)
    registry.set_version_tags(name, current.version, {"rolled_back": "true"})
    mirror_status(conn, version, horizon, CHAMPION_STATUS)
    mirror_status(conn, current, horizon, "deprecated")
    change = ChampionChange(horizon, "rollback", version.version, current.version, reason, name)
    _record(conn, change, name, run_id)
    return change


def update_champion(
    registry: ModelRegistry, engine: Engine, horizon: str, *, roll_back: bool = False,
    to_version: str | None = None, reason: str | None = None, run_id: str | None = None,
) -> ChampionChange:
    """What the champion asset does, in one transaction of the warehouse: promote the
    challenger (`promote_challenger`), or with `roll_back` re-point the champion to
    `to_version` or the previous champion (`rollback`, `reason` defaulting to ROLLBACK_REASON)."""
    with engine.begin() as conn:
        if roll_back:
            return rollback(registry, conn, horizon, to_version=to_version, reason=reason or ROLLBACK_REASON, run_id=run_id)
        return promote_challenger(registry, conn, horizon, run_id=run_id)
