"""The MLflow model registry: logging, registering, aliases, loading.

Wraps `MlflowClient` plus the fluent logging API; the Dagster resource holds one of these.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from vfr_ml_pipelines.lib.models.lightgbm_model import TrainedModel

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    tags: dict[str, str]

    @property
    def model_id(self) -> str:
        """The id under which VFR can pin this exact model (`{name}.v{version}`)."""
        return f"{self.name}.v{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def registered_model_name(algorithm: str, horizon: str) -> str:
    return f"vfr-{algorithm}-{horizon}"


def _pip_requirements() -> list[str]:
    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lightgbm.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


class ModelRegistry:
    def __init__(self, tracking_uri: str, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def ensure_experiment(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name).as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:
            # another process created it between our lookup and create
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def log_lightgbm(
        self,
        trained: TrainedModel,
        *,
        experiment: str,
        registered_name: str,
        tags: dict[str, str],
        input_example: pd.DataFrame,
    ) -> RegisteredVersion:
        experiment_id = self.ensure_experiment(experiment)
        example = input_example[trained.feature_names].astype("float64")
        signature = infer_signature(example, trained.booster.predict(example.to_numpy()))
        version_tags = {
            "residual_std": repr(trained.residual_std),
            "feature_names": json.dumps(trained.feature_names),
            **tags,
        }
        with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
            mlflow.log_params({k: v for k, v in trained.params.items() if k != "verbosity"})
            mlflow.log_param("num_boost_round", trained.num_boost_round)
            mlflow.log_params({f"split_{k}": v for k, v in trained.split.as_dict().items()})
            mlflow.log_metrics({f"test_{k}": v for k, v in trained.test_metrics.items() if math.isfinite(v)})
            mlflow.log_metrics({f"train_{k}": v for k, v in trained.train_metrics.items() if math.isfinite(v)})
            mlflow.log_metric("residual_std", trained.residual_std)
            importance = dict(
                zip(trained.feature_names, trained.booster.feature_importance("gain").round(6).tolist())
            )
            mlflow.log_dict(importance, "feature_importance_gain.json")
            info = mlflow.lightgbm.log_model(
                trained.booster,
                name="model",
                signature=signature,
                input_example=example,
                pip_requirements=_pip_requirements(),
                registered_model_name=registered_name,
            )
        version = str(info.registered_model_version)
        for key, value in version_tags.items():
            self.client.set_model_version_tag(registered_name, version, key, value)
        return RegisteredVersion(registered_name, version, run.info.run_id, version_tags)

    def find_by_fingerprint(self, name: str, fingerprint: str) -> RegisteredVersion | None:
        """The registered version trained from exactly the same inputs, if any: re-running
        training on unchanged data and code reuses it instead of registering a duplicate."""
        try:
            versions = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return None
        for mv in sorted(versions, key=lambda v: int(v.version)):
            if mv.tags.get("fingerprint") == fingerprint:
                return RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags))
        return None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags))

    def load_pyfunc(self, name: str, alias: str) -> Any:
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def run_params(self, run_id: str) -> dict[str, Any]:
        return dict(self.client.get_run(run_id).data.params)
