"""The live model's line end to end against a real MLflow registry and PostgreSQL: trained on
the top-k inputs, gated by the shared promotion gate, promoted only when it passes, and
deployed on VFR's live path only then. On a market without signal nothing of ours is
deployed; the same steps on a market with signal deploy it (so the first test can fail)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.models import challenger
from vfr_ml_pipelines.lib.models.live_training import live_model_name, update_live_model
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, ModelRegistry, serving_model_name
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig
from vfr_ml_pipelines.lib.serving.live_model import MODEL_FILE
from vfr_ml_pipelines.lib.serving.live_path import deploy_live_champion, our_model_names

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


def _run(engine, tmp_path, monkeypatch, frame: pd.DataFrame):
    monkeypatch.setattr(challenger, "load_training_dataset", lambda engine, store, horizon: (frame, NAMES))
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")
    update = update_live_model(engine, None, registry, CONFIG, {"test": True}, PromotionPolicy(), k=K, run_id="test")
    deployment = deploy_live_champion(engine, registry, tmp_path / "vfr_models")
    with engine.connect() as conn:
        rows = {(r.model_name, r.model_version): r.status for r in conn.execute(text("SELECT model_name, model_version, status FROM ml_models"))}
    return registry, update, deployment, rows


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
    loaded = registry.load_serving_model(name, champion.version).model
    assert loaded.feature_names == update.inputs and loaded.algorithm == "lightgbm"
