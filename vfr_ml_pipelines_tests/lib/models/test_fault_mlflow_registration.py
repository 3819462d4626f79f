"""MLflow's store lost during registration (a real SQLite tracking store whose file turns to
garbage in place, at a chosen write): the registration fails with a RegistryUnavailable
naming the store and the step, no alias ever points at the version being written (nor at
any version whose model artifacts are missing), an unchanged rerun does not reuse the
half-written version, and a rerun once the store is back completes and serves.

The outage is injected at an exact moment by running the real client call after breaking
the store; MLflow itself is not replaced."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.registry import (
    CHALLENGER,
    CHAMPION,
    REGISTRATION_TAG,
    IncompleteModelVersion,
    ModelRegistry,
    RegisteredVersion,
    RegistryUnavailable,
    registration_mark,
)
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

NAMES = ["f1", "f2", "f3"]
SERVING = "vfr-1w"
CANDIDATE = "vfr-linear-1w"


def _model(seed: int) -> tuple[ServingModel, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 3))
    y = (0.1 + 0.05 * seed) * X[:, 0] + 0.1 * rng.normal(size=300)
    estimator = algorithms.fit_regressor("linear", X, y, None, None, feature_names=NAMES)
    calibration = ReturnCalibration(slope=0.01, intercept=0.0, residual_std=0.03, raw_slope=0.01, ic_t=3.0,
                                    shrinkage=0.9, drift=0.0, n_days=20)
    return ServingModel("1w", "linear", estimator, calibration), pd.DataFrame(X, columns=NAMES)


class Outage:
    """The store's file overwritten with garbage in place (every open connection sees it)
    and restored byte for byte."""

    def __init__(self, db: Path):
        self.db, self.saved = db, None

    def begin(self) -> None:
        self.saved = self.db.read_bytes()
        self.db.write_bytes(b"this is not a database " * (len(self.saved) // 23 + 1))

    def end(self) -> None:
        if self.saved is not None:
            self.db.write_bytes(self.saved)
            self.saved = None


@pytest.fixture
def store(tmp_path: Path):
    db = tmp_path / "mlflow.db"
    registry = ModelRegistry(f"sqlite:///{db}", artifact_root=tmp_path / "artifacts")
    outage = Outage(db)
    yield registry, outage
    outage.end()


def _candidate(registry: ModelRegistry, seed: int) -> tuple[RegisteredVersion, ServingModel, pd.DataFrame]:
    model, X = _model(seed)
    version = registry.log_serving_model(
        model, experiment="vfr-ml-1w", registered_name=CANDIDATE, run_name=f"linear seed {seed}", tags={"seed": str(seed)},
        params={"seed": seed}, metrics={"validation_rank_ic": 0.05}, artifacts={}, input_example=X,
    )
    return version, model, X


def _champion(registry: ModelRegistry) -> RegisteredVersion:
    """The state before the failing training: v1 of the serving model is challenger and champion."""
    candidate, _, _ = _candidate(registry, 1)
    v1 = registry.copy_version(candidate, SERVING, {"fingerprint": "fp-1"})
    registry.set_alias(SERVING, CHALLENGER, v1.version)
    registry.set_alias(SERVING, CHAMPION, v1.version)
    return v1


def _outage_before_tag(registry: ModelRegistry, outage: Outage, monkeypatch, key: str) -> None:
    """The store is lost just before the serving model's tag `key` is written."""
    real = registry.client.set_model_version_tag

    def write(name, version, tag, value):
        if name == SERVING and tag == key and outage.saved is None:
            outage.begin()
        return real(name, version, tag, value)

    monkeypatch.setattr(registry.client, "set_model_version_tag", write)


@pytest.mark.parametrize("key", ["feature_names", "fingerprint", REGISTRATION_TAG])
def test_store_lost_mid_registration_leaves_no_half_registered_model_in_use(store, monkeypatch, key):
    registry, outage = store
    v1 = _champion(registry)
    candidate, model, X = _candidate(registry, 2)
    _outage_before_tag(registry, outage, monkeypatch, key)

    with pytest.raises(RegistryUnavailable) as info:
        registry.copy_version(candidate, SERVING, {"fingerprint": "fp-2"})
    message = str(info.value)
    assert f"MLflow store {registry.tracking_uri} failed while copying {CANDIDATE}.v2 to {SERVING}" in message
    assert "not a database" in message and "INSERT" not in message, "the cause in one line, not MLflow's SQL dump"
    # while the store is down, moving an alias fails as clearly
    with pytest.raises(RegistryUnavailable, match=f"pointing 'challenger' of {SERVING} at v2"):
        registry.set_alias(SERVING, CHALLENGER, "2")

    outage.end()
    monkeypatch.undo()
    # nothing points at the half-written v2, and an unchanged rerun does not reuse it
    assert registry.by_alias(SERVING, CHAMPION).version == v1.version
    assert registry.by_alias(SERVING, CHALLENGER).version == v1.version
    half = registry.version(SERVING, "2")
    # MLflow copies the candidate's tags, its mark included: never the copy's own mark
    assert half.tags.get(REGISTRATION_TAG) != registration_mark(SERVING, "2")
    assert registry.find_by_fingerprint(SERVING, "fp-2") is None
    assert registry.find_by_fingerprint(SERVING, "fp-1").version == v1.version
    assert registry.load_serving_model(SERVING, v1.version).model.feature_names == NAMES

    # the rerun completes: a complete version, reused by the next unchanged run, served
    v3 = registry.copy_version(candidate, SERVING, {"fingerprint": "fp-2"})
    assert (v3.version, v3.tags[REGISTRATION_TAG]) == ("3", f"complete: {SERVING} v3")
    assert registry.find_by_fingerprint(SERVING, "fp-2").version == "3"
    registry.set_alias(SERVING, CHALLENGER, v3.version)
    registry.set_alias(SERVING, CHAMPION, v3.version)
    served = registry.load_serving_model(SERVING, registry.by_alias(SERVING, CHAMPION).version).model
    expected = model.predict_frame(X.head(20))
    pd.testing.assert_frame_equal(served.predict_frame(X.head(20)), expected)


def test_store_down_when_registration_starts(store):
    registry, outage = store
    v1 = _champion(registry)
    model, X = _model(2)
    outage.begin()
    with pytest.raises(RegistryUnavailable, match=f"failed while registering a version of {CANDIDATE}"):
        registry.log_serving_model(model, experiment="vfr-ml-1w", registered_name=CANDIDATE, run_name="linear",
                                   tags={}, params={}, metrics={}, artifacts={}, input_example=X)
    outage.end()
    assert registry.by_alias(SERVING, CHAMPION).version == v1.version
    candidate, _, _ = _candidate(registry, 2)  # the rerun
    assert candidate.tags[REGISTRATION_TAG] == f"complete: {CANDIDATE} v{candidate.version}"


def test_no_alias_on_a_version_whose_artifacts_are_missing(store):
    registry, _ = store
    v1 = _champion(registry)
    candidate, _, _ = _candidate(registry, 2)
    v2 = registry.copy_version(candidate, SERVING, {"fingerprint": "fp-2"})
    # the artifact store lost the model's files (a volume unmounted, a bucket emptied)
    where = Path(urlparse(registry.client.get_model_version_download_uri(SERVING, v2.version)).path)
    shutil.rmtree(where)
    with pytest.raises(IncompleteModelVersion) as info:
        registry.set_alias(SERVING, CHAMPION, v2.version)
    assert f"{SERVING} v{v2.version} has no model artifacts" in str(info.value)
    assert "refusing to point 'champion' at it" in str(info.value)
    assert registry.by_alias(SERVING, CHAMPION).version == v1.version
    # and a copy of it is never marked complete
    with pytest.raises(IncompleteModelVersion, match="refusing to mark it complete"):
        registry.copy_version(candidate, SERVING, {"fingerprint": "fp-2"})
    # an unchanged rerun does not reuse v2 (complete before the loss): it trains again
    assert registry.find_by_fingerprint(SERVING, "fp-2") is None


def test_store_lost_while_the_run_is_logged_then_rerun_in_the_same_process(store, monkeypatch):
    """Lost inside MLflow's run (before any version exists): the error is clear, no run is
    left active in the process, and the rerun in the same process registers v1 complete."""
    import mlflow

    registry, outage = store
    model, X = _model(2)
    registry.ensure_experiment("vfr-ml-1w")
    real = mlflow.log_params

    def log_params(*args, **kwargs):
        outage.begin()
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_params", log_params)
    with pytest.raises(RegistryUnavailable, match=f"failed while registering a version of {CANDIDATE}: .*not a database"):
        registry.log_serving_model(model, experiment="vfr-ml-1w", registered_name=CANDIDATE, run_name="linear",
                                   tags={}, params={"seed": 2}, metrics={}, artifacts={}, input_example=X)
    monkeypatch.undo()
    outage.end()
    assert mlflow.active_run() is None
    assert registry.versions(CANDIDATE) == []
    candidate, _, _ = _candidate(registry, 2)
    assert (candidate.version, candidate.tags[REGISTRATION_TAG]) == ("1", f"complete: {CANDIDATE} v1")
