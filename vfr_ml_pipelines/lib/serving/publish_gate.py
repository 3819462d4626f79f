"""The gate before Redis and VFR's tables, over every served version's stored predictions of
the latest session (each row's checks are prediction_checks.py's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.market_data import store as market_store
from vfr_ml_pipelines.lib.serving import store
from vfr_ml_pipelines.lib.serving.payloads import DirectionThresholds
from vfr_ml_pipelines.lib.serving.prediction_checks import check_predictions, direction_share_problems
from vfr_ml_pipelines.lib.serving.served_models import latest_prediction_session, latest_predictions, served_versions
from vfr_ml_pipelines.lib.serving.session_predictions import scoring_model

# share of the session's universe each served version must cover
MIN_COVERAGE = 0.95


@dataclass
class GateVerdict:
    problems: list[str]
    metadata: dict = field(default_factory=dict)  # as_of, universe, per "{h}_{role}" coverage and share distance


def check_served_predictions(
    engine: Engine,
    registry: ModelRegistry,
    *,
    today: date,
    thresholds: DirectionThresholds,
    min_coverage: float = MIN_COVERAGE,
    models_dir: Path | None = None,
) -> GateVerdict:
    """Every served version has predictions of the latest session that pass
    `check_predictions`, with BUY / SELL / HOLD shares close to those of its validation period
    (the calibration's; the live model's read from its files in `models_dir` when they are
    there, as `predictions` scored it: `session_predictions.scoring_model`)."""
    day = latest_prediction_session(engine, today)
    members = market_store.universe(engine, day, day)
    verdict = GateVerdict([], {"as_of": str(day), "universe": len(members)})
    for served in served_versions(registry):
        rows = latest_predictions(engine, served)
        label = f"{served.horizon}_{served.role}"
        if rows.empty or rows["as_of_date"].iloc[0] != day:
            verdict.problems.append(f"{served.version.model_id}: no predictions of {day}")
            continue
        result = check_predictions(rows, members, min_coverage=min_coverage, thresholds=thresholds)
        verdict.metadata[f"{label}_coverage"] = round(result.coverage, 4)
        verdict.problems.extend(f"{served.version.model_id}: {p}" for p in result.problems)
        calibration = scoring_model(registry, served, models_dir)[0].calibration
        validation = calibration.direction_shares(thresholds.buy, thresholds.sell)
        share_problems, distance = direction_share_problems(rows, validation, served.version.model_id)
        verdict.metadata[f"{label}_direction_share_distance"] = round(distance, 4)
        verdict.problems.extend(share_problems)
    return verdict
