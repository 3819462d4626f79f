"""The live model's line end to end against a real MLflow registry and PostgreSQL: trained on
the top-k inputs, gated by the shared promotion gate, promoted only when it passes, and
deployed on VFR's live path only then. The three outcomes of `live_path.choose_live_model`:
the live model passed (it is deployed, the 1w champion stays `validated`); it failed but the
1w horizon has a champion (the fallback: that champion is deployed with all its inputs, as
before the live model existed); neither (nothing of ours is deployed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.models import challenger
from vfr_ml_pipelines.lib.models import champions
from vfr_ml_pipelines.lib.models.live_training import LIVE_ALGORITHMS, live_model_name, roll_back_live_model, update_live_model
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, ModelRegistry, serving_model_name
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig
from vfr_ml_pipelines.lib.models.promotion_gate import run_promotion_gate
from vfr_ml_pipelines.lib.serving.live_model import MODEL_FILE, NORMALIZER_FILE, used_features
from vfr_ml_pipelines.lib.serving.live_path import (
    FALLBACK_DESIGN, NO_DESIGN, TOP_K_DESIGN, choose_live_model, deploy_live_champion, live_feature_name, our_model_names,
)

NAMES = [f"f{i:02d}" for i in range(10)]
CONFIG = HorizonTrainingConfig(horizon="1w", tuning_trials=0, canary_seeds=(11,),
                               walk_forward=WalkForwardConfig(n_folds=2, val_days=40, min_train_days=60))
K = 3


def market(signal: float, seed: int) -> pd.DataFrame:
    """320 sessions x 60 symbols; the label is `signal` x f03 plus noise (0: no signal)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=320).date
    frame = pd.DataFrame([(d, f"S{s:02d}") for d in days for s in range(60)], columns=["trade_date", "symbol"])
    for name in NAMES:
        frame[name] = rng.normal(size=len(frame))
    frame["forward_return"] = signal * frame["f03"] + 0.02 * rng.normal(size=len(frame))
    frame["excess_return"] = frame["forward_return"]
    frame["known_date"] = (pd.to_datetime(frame["trade_date"]) + pd.Timedelta(days=7)).dt.date
    return frame


def _registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")


def _use(monkeypatch, frame: pd.DataFrame) -> None:
    monkeypatch.setattr(challenger, "load_training_dataset", lambda engine, store, horizon: (frame, NAMES))


def _statuses(engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        return {(r.model_name, r.model_version): r.status for r in conn.execute(text("SELECT model_name, model_version, status FROM ml_models"))}


def _train_horizon_champion(engine, registry, monkeypatch, frame: pd.DataFrame):
    """The 1w horizon's own line (`vfr-1w`, every candidate) trained, gated and promoted."""
    _use(monkeypatch, frame)
    challenger.train_challenger(engine, None, registry, CONFIG, {"test": True}, run_id="test")
    verdict = run_promotion_gate(registry, "1w", PromotionPolicy())
    with engine.begin() as conn:
        champions.promote_challenger(registry, conn, "1w", run_id="test")
    return verdict


def _run(engine, tmp_path, monkeypatch, frame: pd.DataFrame, registry: ModelRegistry | None = None):
    registry = registry or _registry(tmp_path)
    _use(monkeypatch, frame)
    update = update_live_model(engine, None, registry, CONFIG, {"test": True}, PromotionPolicy(), k=K, run_id="test")
    deployment = deploy_live_champion(engine, registry, tmp_path / "vfr_models")
    return registry, update, deployment, _statuses(engine)


@pytest.fixture
def engine(make_engine, request):
    return make_engine(f"live_gate_{request.node.name[-12:]}")


def test_a_market_without_signal_deploys_nothing(engine, tmp_path, monkeypatch):
    registry, update, deployment, rows = _run(engine, tmp_path, monkeypatch, market(0.0, seed=1))
    name = live_model_name("1w")
    assert len(update.inputs) == K
    assert not update.verdict.passed and not update.verdict.blocks_downstream
    assert "FAILED: validation Rank IC is not significant" in update.verdict.description
    assert update.change.action == "keep"
    assert registry.by_alias(name, CHALLENGER) is not None and registry.by_alias(name, CHAMPION) is None
    assert deployment.folder is None and deployment.changed["deployed"] == [] and "no champion" in deployment.reason_none
    assert deployment.design == NO_DESIGN and choose_live_model(registry).inputs == []
    assert f"{serving_model_name('1w')} has no champion" in deployment.reason_none
    assert not [key for key, status in rows.items() if status == "deployed" and key[0] in our_model_names()]
    assert rows[(name, registry.by_alias(name, CHALLENGER).version)] == "shadow"


def test_a_market_with_signal_deploys_the_live_model_under_its_own_name(engine, tmp_path, monkeypatch):
    registry, update, deployment, rows = _run(engine, tmp_path, monkeypatch, market(0.02, seed=2))
    name = live_model_name("1w")
    assert "f03" in update.inputs and len(update.inputs) == K
    assert update.verdict.passed, update.verdict.description
    champion = registry.by_alias(name, CHAMPION)
    assert champion is not None and update.change.action == "promote"
    # the horizon's own line is untouched: the live model is a registered model of its own
    assert registry.by_alias(serving_model_name("1w"), CHAMPION) is None
    assert deployment.changed["deployed"] == [champion.model_id] and (deployment.folder / MODEL_FILE).exists()
    assert [key for key, status in rows.items() if status == "deployed"] == [(name, champion.version)]
    assert deployment.design == TOP_K_DESIGN and "passed its gate" in deployment.why
    loaded = registry.load_serving_model(name, champion.version).model
    assert loaded.feature_names == update.inputs
    # the live line trains LightGBM and the ridge (and their ensembles) and selects on validation
    assert set(update.training.result.candidates) == {*LIVE_ALGORITHMS, "ensemble-rankic", "ensemble-stacking"}
    assert update.training.result.selected().name == loaded.candidate
    # only the inputs some split reads are exported, at most k
    assert set(choose_live_model(registry).inputs) <= set(update.inputs)

    # the live line rolls back like a horizon's: a second champion (a copy that passed the
    # gate), then `roll_back_live_model` restores the first, which the next deployment runs
    second = registry.copy_version(champion, name, dict(champion.tags))
    registry.set_alias(name, CHALLENGER, second.version)
    with engine.begin() as conn:
        assert champions.promote_challenger(registry, conn, "1w", name=name).action == "promote"
    assert deploy_live_champion(engine, registry, tmp_path / "vfr_models").changed["deployed"] == [second.model_id]
    change = roll_back_live_model(engine, registry)
    assert (change.action, change.version, change.previous_version) == ("rollback", champion.version, second.version)
    assert change.describe().startswith(f"{name} is rolled back to v{champion.version}")
    assert registry.by_alias(name, CHAMPION).version == champion.version
    assert deploy_live_champion(engine, registry, tmp_path / "vfr_models").changed["deployed"] == [champion.model_id]
    rows = _statuses(engine)
    assert rows[(name, champion.version)] == "deployed" and rows[(name, second.version)] == "deprecated"


def test_a_failed_live_model_falls_back_to_the_1w_champion_with_all_its_inputs(engine, tmp_path, monkeypatch):
    registry = _registry(tmp_path)
    # the horizon's own line earns a champion on a market with signal ...
    assert _train_horizon_champion(engine, registry, monkeypatch, market(0.02, seed=2)).passed
    horizon_champion = registry.by_alias(serving_model_name("1w"), CHAMPION)
    # ... the live model, trained on a market without signal, fails its gate
    _, update, deployment, rows = _run(engine, tmp_path, monkeypatch, market(0.0, seed=1), registry)
    assert not update.verdict.passed and registry.by_alias(live_model_name("1w"), CHAMPION) is None
    assert deployment.design == FALLBACK_DESIGN
    assert f"{live_model_name('1w')} has no champion" in deployment.why and horizon_champion.model_id in deployment.why
    assert deployment.changed["deployed"] == [horizon_champion.model_id]
    assert [key for key, status in rows.items() if status == "deployed"] == [(horizon_champion.name, horizon_champion.version)]
    # its files, over every input a split of the champion reads (not k of them)
    served = registry.load_serving_model(horizon_champion.name, horizon_champion.version).model
    inputs = used_features(served)
    assert choose_live_model(registry).inputs == inputs and len(inputs) > K
    assert (deployment.folder / MODEL_FILE).exists()
    normalizer = (deployment.folder / NORMALIZER_FILE).read_text()
    assert all(live_feature_name(n) in normalizer for n in inputs)

    # once a live model passes its gate it replaces the fallback: the champion goes back to
    # `validated` (it still serves the prediction cache)
    _, update, deployment, rows = _run(engine, tmp_path, monkeypatch, market(0.02, seed=2), registry)
    live = registry.by_alias(live_model_name("1w"), CHAMPION)
    assert update.verdict.passed and deployment.design == TOP_K_DESIGN
    assert deployment.changed["deployed"] == [live.model_id] and horizon_champion.model_id in deployment.changed["demoted"]
    assert [key for key, status in rows.items() if status == "deployed"] == [(live.name, live.version)]
    assert rows[(horizon_champion.name, horizon_champion.version)] == "validated"
