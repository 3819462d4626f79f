"""Live performance of every served version (per horizon: the champion and the shadow
challenger) from the realized outcomes in the warehouse, against the champion's validated
Rank IC (the MLflow tag `validation_rank_ic` that training records), and whether a shadow
beats its champion live.

`decay_record` flattens the champions' verdicts for the decay sensor: `session`, and per
horizon `decay_score_<h>` (minus the decay t: larger is worse), `decayed_<h>` and
`shadow_beats_<h>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.monitoring.live_performance import (
    LivePerformance, LivePerformanceConfig, ShadowComparison, compare_shadow, live_performance,
)
from vfr_ml_pipelines.lib.monitoring.store import realized_outcomes
from vfr_ml_pipelines.lib.serving.served_models import ServedVersion, served_versions


@dataclass(frozen=True)
class ServedPerformance:
    session: str  # the last session with a realized outcome ("" when none yet)
    results: list[tuple[ServedVersion, LivePerformance]]
    shadows: list[ShadowComparison]


def validated_rank_ic(served: ServedVersion) -> float | None:
    value = float(served.version.tags.get("validation_rank_ic", "nan"))
    return value if math.isfinite(value) else None


def served_performance(
    engine: Engine, registry: ModelRegistry, today: date, config: LivePerformanceConfig = LivePerformanceConfig()
) -> ServedPerformance:
    served = served_versions(registry)
    # the trailing window is counted in sessions with outcomes, and a label is known a horizon later
    since = today - timedelta(days=2 * (config.trailing_sessions + max(HORIZON_DAYS.values())))
    outcomes = realized_outcomes(engine, [s.version for s in served], today=today, since=since)
    results, shadows = [], []
    for version in served:
        if not (outcomes["model"] == version.version.model_id).any():
            continue
        validated = validated_rank_ic(version) if version.is_champion else None
        results.append((version, live_performance(outcomes, model=version.version.model_id, horizon=version.horizon,
                                                  validated_rank_ic=validated, config=config)))
    by_horizon = {(v.horizon, v.role): v.version.model_id for v, _ in results}
    for (horizon, role), shadow in by_horizon.items():
        champion = by_horizon.get((horizon, "champion"))
        if role != "champion" and champion is not None:
            shadows.append(compare_shadow(outcomes, champion=champion, shadow=shadow, horizon=horizon, config=config))
    session = str(max(outcomes["trade_date"])) if len(outcomes) else ""
    return ServedPerformance(session, results, shadows)


def decay_record(performance: ServedPerformance) -> dict[str, float | bool | str]:
    record: dict[str, float | bool | str] = {"session": performance.session}
    for version, result in performance.results:
        if version.is_champion:
            record[f"decay_score_{version.horizon}"] = -result.decay_t if math.isfinite(result.decay_t) else 0.0
            record[f"decayed_{version.horizon}"] = result.decayed
    for shadow in performance.shadows:
        record[f"shadow_beats_{shadow.horizon}"] = shadow.shadow_beats_champion
    return record
