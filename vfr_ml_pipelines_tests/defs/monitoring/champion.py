"""A small registered champion (a linear model on three features, mostly f0) for the
monitoring tests: a real MLflow registry (a SQLite file, or the PostgreSQL database given), no training pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.registry import CHAMPION, ModelRegistry, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

NAMES = ["f0", "f1", "f2"]


def register_champion(root: Path, tags: dict[str, str], horizon: str = "1w", tracking_uri: str | None = None) -> ModelRegistry:
    """The champion registered (a new version each call) in the registry at `tracking_uri`
    (default: a SQLite file under `root`), artifacts under `root`."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=NAMES)
    estimator = algorithms.fit_regressor("linear", X.to_numpy(), 0.2 * X["f0"].to_numpy() + 0.1 * rng.normal(size=200),
                                         None, None, feature_names=NAMES)
    calibration = ReturnCalibration(slope=0.01, intercept=0.0, residual_std=0.03, raw_slope=0.01, ic_t=3.0,
                                    shrinkage=0.9, drift=0.0, n_days=20)
    registry = ModelRegistry(tracking_uri or f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")
    version = registry.log_serving_model(
        ServingModel(horizon, "linear", estimator, calibration), experiment=f"vfr-ml-{horizon}",
        registered_name=serving_model_name(horizon), run_name="test champion", tags=tags, params={}, metrics={},
        artifacts={}, input_example=X,
    )
    registry.set_alias(version.name, CHAMPION, version.version)
    return registry


def champion_version(registry: ModelRegistry, horizon: str = "1w") -> RegisteredVersion:
    return registry.by_alias(serving_model_name(horizon), CHAMPION)
