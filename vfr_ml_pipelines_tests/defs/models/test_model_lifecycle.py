"""The model lifecycle on the trained pipeline: the promotion gate refuses a model without
skill, a passing challenger is promoted, the rollback job restores the previous champion
and republishes, and the kill switch turns ML off for VFR and republish_job turns it on.

The tests share a pipeline of this module's own (database, MLflow tracking store and
registry, feature store, Redis key prefix), materialized once: they promote, roll back and
switch ML off, so they never touch the session-wide pipeline the end-to-end tests read.
Each test reads the state it starts from (the champion, the history) instead of assuming
the pipeline is as first trained."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.definitions import ALL_ASSETS, ALL_CHECKS
from vfr_ml_pipelines.defs.models.jobs import rollback_jobs
from vfr_ml_pipelines.defs.serving.jobs import disable_ml_job, republish_job
from vfr_ml_pipelines.lib.models import training_record
from vfr_ml_pipelines.lib.models.canaries import shuffle_labels_within_days
from vfr_ml_pipelines.lib.models.champions import GATE_TAG
from vfr_ml_pipelines.lib.models.comparison import COMPARISON_TAG, SEEN_UNTIL_TAG, PairedComparison
from vfr_ml_pipelines.lib.models.dataset import load_training_dataset
from vfr_ml_pipelines.lib.models.live_training import live_model_name
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig, train_horizon
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, registered_model_name
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig
from vfr_ml_pipelines.lib.serving.redis_transport import scan_keys
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader
from vfr_ml_pipelines_tests.helpers import materialized_pipeline

MODEL = "vfr-1w"


def _definitions(pipeline) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[*rollback_jobs, republish_job, disable_ml_job],
        resources=pipeline["resources"],
    )


def _gate_and_champion(pipeline) -> dg.ExecuteInProcessResult:
    """The promotion gate of the 1w challenger, then the 1w champion asset, as a run."""
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        resources=pipeline["resources"],
        selection=dg.AssetSelection.checks_for_assets("challenger_1w_model") | dg.AssetSelection.assets("champion_1w_model"),
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def pipeline(make_database, redis_url, redis_client, tmp_path_factory):
    """This module's own pipeline (it overrides the session-wide `pipeline` of conftest.py)."""
    state = tmp_path_factory.mktemp("lifecycle")
    with materialized_pipeline(make_database("lifecycle"), redis_url, redis_client, state, "lifecycle") as built:
        yield built


@pytest.fixture
def registry(pipeline):
    return pipeline["resources"]["mlflow"].registry


def _history(pipeline) -> list:
    with pipeline["engine"].connect() as conn:
        return conn.execute(
            text("SELECT model_version, previous_version, action FROM vfr_ml.champion_history "
                 "WHERE horizon = '1w' AND model_name = :m ORDER BY id"), {"m": MODEL}
        ).all()


def _statuses(pipeline) -> dict[str, str]:
    with pipeline["engine"].connect() as conn:
        rows = conn.execute(text("SELECT model_version, status FROM ml_models WHERE model_name = :m"), {"m": MODEL}).all()
    return {r.model_version: r.status for r in rows}


def test_a_model_trained_on_noise_is_never_promoted(pipeline, registry):
    """Labels shuffled within each day leave nothing to learn: the model is registered and
    becomes the challenger, the gate measures no significant validation skill, and the
    champion stays (a WARN failure: the rest of the run goes on)."""
    dataset, names = load_training_dataset(pipeline["engine"], pipeline["resources"]["feature_store"].offline, "1w")
    noise = shuffle_labels_within_days(dataset, ["forward_return", "excess_return"], seed=5)
    config = HorizonTrainingConfig(
        horizon="1w", algorithms=("lightgbm", "xgboost"), tuning_trials=0, canary_seeds=(11,),
        walk_forward=WalkForwardConfig(n_folds=2),
    )
    result = train_horizon(noise, names, config)
    versions = training_record.log_candidates(registry, result, noise, {"horizon": "1w", "purpose": "test: noise"})
    random_model = training_record.register_challenger(registry, result, versions, "noise")
    registry.set_alias(MODEL, CHALLENGER, random_model.version)
    champion_before = registry.by_alias(MODEL, CHAMPION).version
    history_before = _history(pipeline)

    run = _gate_and_champion(pipeline)
    gate = [e for e in run.get_asset_check_evaluations() if e.check_name == "promotion_gate"]
    assert len(gate) == 1 and gate[0].passed is False
    assert gate[0].severity == dg.AssetCheckSeverity.WARN
    assert "not significant" in gate[0].description
    assert registry.by_alias(MODEL, CHAMPION).version == champion_before
    assert registry.version(MODEL, random_model.version).tags[GATE_TAG] == "failed"
    champion_meta = run.asset_materializations_for_node("champion_1w_model")[0].metadata
    assert champion_meta["action"].value == "keep"
    assert _history(pipeline) == history_before


def test_a_champion_that_saw_the_challengers_window_is_not_compared(pipeline, registry):
    """A challenger retrained on the same data as the champion: every session of its
    validation window is one the champion trained on, so the comparison is refused (recorded
    on the challenger, shown by the gate) and the champion stays."""
    dataset, names = load_training_dataset(pipeline["engine"], pipeline["resources"]["feature_store"].offline, "1w")
    config = HorizonTrainingConfig(
        horizon="1w", algorithms=("linear",), tuning_trials=0, canary_seeds=(11,),
    )
    result = train_horizon(dataset, names, config)
    champion = registry.by_alias(MODEL, CHAMPION)
    assert date.fromisoformat(champion.tags[SEEN_UNTIL_TAG]) >= result.final.val_end
    versions = training_record.log_candidates(registry, result, dataset, {"horizon": "1w", "purpose": "test: same data"})
    retrained = training_record.register_challenger(registry, result, versions, "same-data")
    registry.set_alias(MODEL, CHALLENGER, retrained.version)
    comparison = training_record.compare_with_current_champion(registry, result, dataset, retrained)
    assert comparison.champion == champion.model_id and comparison.refused and "unseen" in comparison.refused
    recorded = PairedComparison.from_json(registry.version(MODEL, retrained.version).tags[COMPARISON_TAG])
    assert recorded == comparison

    run = _gate_and_champion(pipeline)
    gate = [e for e in run.get_asset_check_evaluations() if e.check_name == "promotion_gate"]
    assert len(gate) == 1 and gate[0].passed is False
    assert "no fair comparison" in gate[0].description
    assert gate[0].metadata["paired_sessions"].value == comparison.n_days
    assert registry.by_alias(MODEL, CHAMPION).version == champion.version


def test_promotion_then_rollback_job_restores_the_previous_champion_and_republishes(pipeline, registry, redis_client):
    champion = registry.by_alias(MODEL, CHAMPION)
    # a new challenger that passes the gate: this training's LightGBM candidate with a recorded
    # paired comparison that beats the current champion on unseen sessions (the gate reads the
    # registry's figures)
    better = PairedComparison(champion=champion.model_id, seen_until="2026-01-02", window_start="2026-01-05",
                              window_end="2026-05-01", n_days=85, lag=5, challenger_rank_ic=0.08,
                              champion_rank_ic=0.03, mean_difference=0.05, standard_error=0.01, t=5.0)
    candidate = registry.versions(registered_model_name("lightgbm", "1w"))[-1]
    # the champion's gate figures (the gate reads tags), the candidate's own model description
    own = {k: candidate.tags[k] for k in ("feature_names", "algorithm", "candidate") if k in candidate.tags}
    tags = {**champion.tags, **own, COMPARISON_TAG: better.to_json()}
    new = registry.copy_version(candidate, MODEL, tags)
    registry.set_alias(MODEL, CHALLENGER, new.version)
    run = _gate_and_champion(pipeline)
    assert run.success
    assert registry.by_alias(MODEL, CHAMPION).version == new.version
    # a champion of 1w serves the prediction cache; VFR's live ensemble runs the live model
    # (`vfr-live-1w`), or, when it has no champion (the fallback), the 1w champion, which the
    # publish's `vfr_live_model` deploys once its files are written
    assert _statuses(pipeline)[new.version] == "validated"
    assert _statuses(pipeline)[champion.version] == "deprecated"
    published = "validated" if registry.by_alias(live_model_name("1w"), CHAMPION) is not None else "deployed"

    defs = _definitions(pipeline)
    assert defs.resolve_job_def("republish_job").execute_in_process().success
    assert _statuses(pipeline)[new.version] == published
    reader = VfrCacheReader(redis_client, pipeline["prefix"], delete_expired=False)
    symbol = scan_keys(redis_client, f"{pipeline['prefix']}vfr:ml:prediction:*:1w:default")[0].split(":")[-3]
    assert reader.prediction(symbol, "1w")["modelVersion"] == new.version

    assert defs.resolve_job_def("rollback_1w_job").execute_in_process().success
    assert registry.by_alias(MODEL, CHAMPION).version == champion.version
    assert registry.by_alias(MODEL, CHALLENGER) is None, "a rolled-back model must not stay as a shadow"
    assert registry.version(MODEL, new.version).tags["rolled_back"] == "true"
    assert _statuses(pipeline)[champion.version] == published
    assert _statuses(pipeline)[new.version] == "deprecated"
    assert [(h.model_version, h.previous_version, h.action) for h in _history(pipeline)[-2:]] == [
        (new.version, champion.version, "promote"), (champion.version, new.version, "rollback"),
    ]
    # republished from the restored champion, and the rolled-back version's keys are gone
    assert reader.prediction(symbol, "1w")["modelVersion"] == champion.version
    assert reader.prediction(symbol, "1w", f"{MODEL}.v{new.version}") is None
    assert reader.model_metadata(f"{MODEL}.v{new.version}") is None


def test_kill_switch_removes_every_prediction_and_republish_restores_them(pipeline, registry, redis_client):
    prefix = pipeline["prefix"]
    before = scan_keys(redis_client, f"{prefix}vfr:ml:*")
    assert any(":prediction:" in k for k in before) and any(":feature:vector:" in k for k in before)
    defs = _definitions(pipeline)
    assert defs.resolve_job_def("disable_ml_job").execute_in_process().success
    assert scan_keys(redis_client, f"{prefix}vfr:ml:*") == [f"{prefix}vfr:ml:enhancement:status"]
    status = VfrCacheReader(redis_client, prefix).enhancement_status()
    assert status["available"] is False
    assert defs.resolve_job_def("republish_job").execute_in_process().success
    assert scan_keys(redis_client, f"{prefix}vfr:ml:*") == before
    assert VfrCacheReader(redis_client, prefix).enhancement_status()["available"] is True

