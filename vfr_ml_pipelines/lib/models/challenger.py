"""Training a horizon's challenger, the policy around `pipeline.train_horizon`:

1. inputs unchanged (same fingerprint of rows, features, labels, settings and code version
   as a complete version of `vfr-{horizon}`): that version becomes the challenger again,
   nothing is trained;
2. otherwise every candidate is trained; when a leakage canary failed nothing is
   registered (`LeakageDetected`);
3. every candidate is recorded in MLflow (`training_record`), the winner is copied into
   `vfr-{horizon}` with alias `challenger`, and the champion is scored on the challenger's
   validation window (the paired comparison the promotion gate reads);
4. `ml_models` follows: every candidate `validated`, the challenger `shadow` unless it is
   already the champion; every candidate's out-of-sample walk-forward predictions replace the
   horizon's rows of `vfr_ml.walk_forward_predictions` (the backtests' input; a reused
   training keeps the rows its first training wrote).

A `ModelLine` says which registered models a training writes and how it trains: the
horizon's own line (`HORIZON_LINE`: `vfr-{horizon}`, every candidate) or the live model's
(`live_training.LIVE_LINE`: `vfr-live-{horizon}`, LightGBM on the top-k inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from vfr_ml_pipelines.lib import settings as app_settings
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.models import champions, store, training_record
from vfr_ml_pipelines.lib.models.canaries import CanaryResult
from vfr_ml_pipelines.lib.models.comparison import SEEN_UNTIL_TAG, PairedComparison
from vfr_ml_pipelines.lib.models.dataset import load_training_dataset
from vfr_ml_pipelines.lib.models.pipeline import HorizonResult, HorizonTrainingConfig, train_horizon
from vfr_ml_pipelines.lib.models.registry import (
    CHALLENGER, CHAMPION, ModelRegistry, RegisteredVersion, registered_model_name, serving_model_name,
)


@dataclass(frozen=True)
class ModelLine:
    serving_name: Callable[[str], str]  # horizon -> the registered model that serves
    candidate_name: Callable[[str, str], str]  # (candidate, horizon) -> its registered model
    # (dataset, feature names, config, oracle) -> the walk-forward result
    train: Callable[..., HorizonResult]
    # the horizon's backtests read its candidates' out-of-sample rows; only one line writes them
    writes_walk_forward: bool
    settings: Mapping[str, Any] = field(default_factory=dict)  # extra settings for the fingerprint


def _train_all(dataset, names, config, oracle) -> HorizonResult:
    return train_horizon(dataset, names, config, oracle=oracle)


HORIZON_LINE = ModelLine(serving_model_name, registered_model_name, _train_all, writes_walk_forward=True)


class TrainingDataMissing(LookupError):
    """The feature matrix or the horizon's labels are not stored yet."""


class LeakageDetected(RuntimeError):
    """A leakage canary failed: nothing was registered."""

    def __init__(self, horizon: str, leaks: list[CanaryResult]) -> None:
        self.canaries = "; ".join(c.message for c in leaks)
        super().__init__(f"{horizon}: leakage canary failed, nothing registered. " + " ".join(c.message for c in leaks))


@dataclass(frozen=True)
class ChallengerTraining:
    horizon: str
    fingerprint: str
    challenger: RegisteredVersion
    reused: bool
    # the rest only when a training ran (not reused)
    result: HorizonResult | None = None
    versions: dict[str, RegisteredVersion] = field(default_factory=dict)
    comparison: PairedComparison | None = None

    def describe(self) -> str | None:
        """The line for the run's log: the reuse, or the comparison with the champion."""
        if self.reused:
            return f"{self.horizon}: inputs unchanged since {self.challenger.model_id}; reusing it as challenger"
        if self.comparison is not None:
            return f"{self.horizon}: {self.comparison.describe()}"
        return None


def train_challenger(
    engine: Engine,
    offline_store: Any,
    registry: ModelRegistry,
    config: HorizonTrainingConfig,
    settings: Mapping[str, Any],
    *,
    run_id: str | None,
    line: ModelLine = HORIZON_LINE,
) -> ChallengerTraining:
    """Reuse or train `config.horizon`'s challenger of `line` (module docstring). `settings`:
    the run's training settings as configured (they enter the fingerprint); `run_id` is
    recorded on every MLflow run."""
    horizon = config.horizon
    try:
        dataset, names = load_training_dataset(engine, offline_store, horizon)
    except LookupError as exc:
        raise TrainingDataMissing(str(exc)) from None
    fingerprint = training_record.fingerprint(
        dataset, names, {**settings, **line.settings, "horizon": horizon, "code_version": app_settings.code_version()}
    )
    serving_name = line.serving_name(horizon)
    reused = registry.find_by_fingerprint(serving_name, fingerprint)
    if reused is not None:
        registry.set_alias(serving_name, CHALLENGER, reused.version)
        return ChallengerTraining(horizon, fingerprint, reused, reused=True)

    result = line.train(dataset, names, config, store.oracle_expected_returns(engine, horizon))
    leaks = result.leaked()
    if leaks:
        raise LeakageDetected(horizon, leaks)
    base_tags = {
        "dagster_run_id": run_id,
        "feature_set_version": catalog.MATRIX_VERSION,
        "data_start": str(result.data_start),
        "data_end": str(result.data_end),
        SEEN_UNTIL_TAG: result.seen_until.isoformat(),
        "code_version": app_settings.code_version(),
        "horizon": horizon,
    }
    versions = training_record.log_candidates(registry, result, dataset, base_tags, registered_name=line.candidate_name)
    challenger = training_record.register_challenger(registry, result, versions, fingerprint, serving_name=serving_name)
    registry.set_alias(serving_name, CHALLENGER, challenger.version)
    comparison = training_record.compare_with_current_champion(registry, result, dataset, challenger, serving_name=serving_name)
    predictions = {name: candidate.predictions for name, candidate in result.candidates.items()}
    with engine.begin() as conn:
        if line.writes_walk_forward:
            store.replace_walk_forward_predictions(conn, horizon, store.walk_forward_rows(horizon, predictions, versions))
        for version in versions.values():
            champions.mirror_status(conn, version, horizon, "validated")
        champion = registry.by_alias(serving_name, CHAMPION)
        if champion is None or champion.version != challenger.version:
            champions.mirror_status(conn, challenger, horizon, "shadow")
    return ChallengerTraining(horizon, fingerprint, challenger, reused=False, result=result, versions=versions, comparison=comparison)
