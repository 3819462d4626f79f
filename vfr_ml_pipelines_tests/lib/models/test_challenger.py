"""The challenger policy (`lib/models/challenger.py`) around the training: unchanged inputs
reuse a version without training, a failed leakage canary registers nothing, missing data
is named. The dataset and the training are stand-ins here; the full path (training,
registration, `ml_models` statuses) runs in the end-to-end and model-lifecycle tests."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models import challenger
from vfr_ml_pipelines.lib.models.canaries import CanaryResult
from vfr_ml_pipelines.lib.models.challenger import LeakageDetected, TrainingDataMissing, train_challenger
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, RegisteredVersion

CONFIG = HorizonTrainingConfig(horizon="1w")
SETTINGS = {"n_folds": 3, "seed": 7}


class StrictRegistry:
    """Answers the fingerprint lookup and records aliases; any other call fails the test."""

    def __init__(self, reusable: RegisteredVersion | None = None) -> None:
        self.reusable = reusable
        self.fingerprints: list[str] = []
        self.aliases: dict[tuple[str, str], str] = {}

    def find_by_fingerprint(self, name, fingerprint):
        self.fingerprints.append(fingerprint)
        return self.reusable

    def set_alias(self, name, alias, version):
        self.aliases[(name, alias)] = version

    def __getattr__(self, name):
        raise AssertionError(f"the registry must not be asked for {name}")


@pytest.fixture
def dataset(monkeypatch):
    frame = pd.DataFrame({
        "symbol": ["AAA", "BBB"], "trade_date": [date(2026, 1, 5)] * 2, "f1": [0.1, 0.2],
        "forward_return": [0.01, -0.02], "known_date": [date(2026, 1, 12)] * 2,
    })
    monkeypatch.setattr(challenger, "load_training_dataset", lambda engine, store, horizon: (frame, ["f1"]))
    return frame


def _no_training(*args, **kwargs):
    raise AssertionError("nothing may be trained")


def test_unchanged_inputs_reuse_the_version_as_challenger_without_training(dataset, monkeypatch):
    monkeypatch.setattr(challenger, "train_horizon", _no_training)
    earlier = RegisteredVersion("vfr-1w", "4", "run-4", {})
    registry = StrictRegistry(reusable=earlier)
    outcome = train_challenger(None, None, registry, CONFIG, SETTINGS, run_id="r")
    assert outcome.reused and outcome.challenger == earlier and outcome.result is None
    assert registry.aliases == {("vfr-1w", CHALLENGER): "4"}
    assert outcome.fingerprint == registry.fingerprints[0]
    assert outcome.describe() == "1w: inputs unchanged since vfr-1w.v4; reusing it as challenger"


def test_the_fingerprint_follows_the_settings(dataset, monkeypatch):
    monkeypatch.setattr(challenger, "train_horizon", _no_training)
    registry = StrictRegistry(reusable=RegisteredVersion("vfr-1w", "4", "run-4", {}))
    train_challenger(None, None, registry, CONFIG, SETTINGS, run_id="r")
    train_challenger(None, None, registry, CONFIG, SETTINGS, run_id="another run")
    train_challenger(None, None, registry, CONFIG, {**SETTINGS, "seed": 8}, run_id="r")
    first, same, other = registry.fingerprints
    assert first == same != other


def test_a_failed_leakage_canary_registers_nothing(dataset, monkeypatch):
    leak = CanaryResult("oracle_ceiling", False, 0.4, 0.1, message="lightgbm beats the oracle")
    trained = type("Result", (), {"leaked": lambda self: [leak]})()
    monkeypatch.setattr(challenger.store, "oracle_expected_returns", lambda engine, horizon: None)
    monkeypatch.setattr(challenger, "train_horizon", lambda *args, **kwargs: trained)
    registry = StrictRegistry()
    with pytest.raises(LeakageDetected, match="1w: leakage canary failed, nothing registered. lightgbm beats") as caught:
        train_challenger(None, None, registry, CONFIG, SETTINGS, run_id="r")
    assert caught.value.canaries == "lightgbm beats the oracle"
    assert registry.aliases == {}


def test_missing_training_data_is_named(monkeypatch):
    def missing(engine, store, horizon):
        raise LookupError("no 1w labels stored; materialize `labels` first")

    monkeypatch.setattr(challenger, "load_training_dataset", missing)
    with pytest.raises(TrainingDataMissing, match="no 1w labels stored"):
        train_challenger(None, None, StrictRegistry(), CONFIG, SETTINGS, run_id="r")
