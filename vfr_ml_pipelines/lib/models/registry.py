"""The MLflow model registry: logging, registering, aliases, loading.

Wraps `MlflowClient` plus the fluent logging API; the Dagster resource holds one of these.

Registration is several store writes (the run and its artifacts, the version, one write per
tag, the alias), and the store can fail between any two. So that a failure never leaves a
half-registered model in use:
- a version is marked complete (`registration=complete: {name} v{version}`) by its last write, after its tags
  and after its model artifacts were found in the artifact store;
- re-running an unchanged training reuses only a complete version (`find_by_fingerprint`);
- an alias is only ever pointed at a version whose model artifacts are present (`set_alias`);
- a store failure during any write raises `RegistryUnavailable` naming the store and the
  step, so a rerun once the store is back completes (an incomplete version stays unused).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
from sqlalchemy.exc import SQLAlchemyError

from vfr_ml_pipelines.lib.models.pyfunc import MODEL_CODE_FILE, MODEL_FILE_KEY, unwrap
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

CHAMPION = "champion"
CHALLENGER = "challenger"
# written last: a version without it was cut off mid-registration and is never reused. Its
# value names the version itself because MLflow's copy_model_version copies the source's
# tags at once: a copy cut off before its own mark carries the source's, which must not count.
REGISTRATION_TAG = "registration"


def registration_mark(name: str, version: str) -> str:
    return f"complete: {name} v{version}"
# failures of the store itself (as opposed to a lookup that finds nothing)
STORE_ERRORS = (MlflowException, SQLAlchemyError, OSError)


class RegistryUnavailable(RuntimeError):
    """The MLflow store failed during a registry write; the message names the store (any
    password masked) and the step. No alias was moved to the version being written."""


class IncompleteModelVersion(RuntimeError):
    """A version whose model artifacts are missing: no alias may point at it."""


def _masked(uri: str) -> str:
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", uri)


def _first_line(error: BaseException) -> str:
    """The cause without the SQL statement and parameters MLflow appends."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


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
    """The registered model of one candidate algorithm of one horizon (`vfr-lightgbm-1w`)."""
    return f"vfr-{algorithm}-{horizon}"


def serving_model_name(horizon: str) -> str:
    """The registered model VFR is served from for a horizon (`vfr-1w`): each version is a
    copy of the candidate that won that training run; its `champion` alias is what serves."""
    return f"vfr-{horizon}"


@dataclass(frozen=True)
class LoadedModel:
    model: ServingModel
    seconds: float  # wall time: what a reader waited, which a busy machine stretches
    # CPU time of the loading thread: what the model itself costs to load, the same on an idle
    # and a loaded machine (the promotion gate's measure: a 0.1 s model took 3 s of wall time
    # on a machine loaded 8x over its cores and was refused)
    cpu_seconds: float


def _pip_requirements() -> list[str]:
    import sklearn
    import xgboost

    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lightgbm.__version__}",
        f"xgboost-cpu=={xgboost.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def _finite_metrics(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


class ModelRegistry:
    def __init__(self, tracking_uri: str, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._use_this_store()

    @contextmanager
    def _writing(self, step: str) -> Iterator[None]:
        try:
            yield
        except (RegistryUnavailable, IncompleteModelVersion):
            raise
        except STORE_ERRORS as error:
            raise RegistryUnavailable(
                f"MLflow store {_masked(self.tracking_uri)} failed while {step}: {_first_line(error)}. No alias was moved "
                "to an incomplete version; rerun once the store is back (an unchanged training reuses only complete versions)"
            ) from error

    def _require_model_artifacts(self, name: str, version: str, purpose: str) -> None:
        """The version's model files (its MLmodel) are in the artifact store."""
        uri = self.client.get_model_version_download_uri(name, str(version))
        try:
            listed = [a.path for a in mlflow.artifacts.list_artifacts(artifact_uri=uri)]
        except STORE_ERRORS as error:
            listed, why = [], f" ({_first_line(error)})"
        else:
            why = ""
        if not any(path.rsplit("/", 1)[-1] == "MLmodel" for path in listed):
            raise IncompleteModelVersion(
                f"{name} v{version} has no model artifacts at {_masked(uri)}{why}: refusing to {purpose}; "
                "retrain (or roll back to a version whose artifacts are present)"
            )

    def _use_this_store(self) -> None:
        """MLflow's fluent API (runs, log_model, load_model of a `models:/` URI) reads
        process-wide URIs: point them at this registry's store before each use, so that
        another registry made in the same process (tests, tools) never redirects them."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

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

    def find_by_fingerprint(self, name: str, fingerprint: str) -> RegisteredVersion | None:
        """The registered version trained from exactly the same inputs, if any: re-running
        training on unchanged data and code reuses it instead of registering a duplicate.
        Only a complete version whose model artifacts are present is reused."""
        try:
            versions = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return None
        for mv in sorted(versions, key=lambda v: int(v.version)):
            complete = mv.tags.get(REGISTRATION_TAG) == registration_mark(mv.name, str(mv.version))
            if mv.tags.get("fingerprint") == fingerprint and complete:
                try:  # complete once, but its files may have been lost since: then retrain
                    self._require_model_artifacts(name, str(mv.version), "reuse it")
                except IncompleteModelVersion:
                    continue
                return RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags))
        return None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `alias` at `version`, only if its model artifacts are present (an alias
        on a version without them would serve a model that cannot load)."""
        with self._writing(f"pointing {alias!r} of {name} at v{version}"):
            self._require_model_artifacts(name, version, f"point {alias!r} at it")
            self.client.set_registered_model_alias(name, alias, version)

    def by_alias(self, name: str, alias: str) -> RegisteredVersion | None:
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def run_params(self, run_id: str) -> dict[str, Any]:
        return dict(self.client.get_run(run_id).data.params)

    # -- generic serving models (every algorithm and the ensembles) -------------------------

    def log_serving_model(
        self,
        model: ServingModel,
        *,
        experiment: str,
        registered_name: str,
        run_name: str,
        tags: Mapping[str, str],
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        artifacts: Mapping[str, bytes],
        input_example: pd.DataFrame,
        parent_run_id: str | None = None,
    ) -> RegisteredVersion:
        """One MLflow run (nested under `parent_run_id` when given) with params, metrics,
        the `artifacts` (path -> bytes: plots, tables), and the model as a pyfunc with a
        signature, an input example and explicit pip requirements; registered as a new
        version of `registered_name`, whose tags repeat `tags`."""
        with self._writing(f"registering a version of {registered_name}"):
            return self._log_serving_model(
                model, experiment=experiment, registered_name=registered_name, run_name=run_name, tags=tags,
                params=params, metrics=metrics, artifacts=artifacts, input_example=input_example,
                parent_run_id=parent_run_id,
            )

    def _log_serving_model(
        self, model: ServingModel, *, experiment: str, registered_name: str, run_name: str, tags: Mapping[str, str],
        params: Mapping[str, object], metrics: Mapping[str, float], artifacts: Mapping[str, bytes],
        input_example: pd.DataFrame, parent_run_id: str | None,
    ) -> RegisteredVersion:
        experiment_id = self.ensure_experiment(experiment)
        example = input_example[model.feature_names].astype("float64").reset_index(drop=True)
        signature = infer_signature(example, model.predict_frame(example).reset_index(drop=True))
        run_tags = dict(tags)
        if parent_run_id is not None:
            run_tags["mlflow.parentRunId"] = parent_run_id
        with tempfile.TemporaryDirectory(prefix="vfr-model-") as tmp:
            folder = Path(tmp)
            model_file = folder / "serving_model.bin"
            model_file.write_bytes(model.to_bytes())
            for rel, blob in artifacts.items():
                target = folder / "artifacts" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob)
            self._use_this_store()
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags) as run:
                mlflow.log_params({k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in params.items()})
                mlflow.log_metrics(_finite_metrics(metrics, ""))
                if artifacts:
                    mlflow.log_artifacts(str(folder / "artifacts"))
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(MODEL_CODE_FILE),
                    artifacts={MODEL_FILE_KEY: str(model_file)},
                    signature=signature,
                    input_example=example.head(5),
                    pip_requirements=_pip_requirements(),
                    registered_model_name=registered_name,
                )
        version = str(info.registered_model_version)
        version_tags = {"feature_names": json.dumps(model.feature_names), **tags}
        return self._complete(registered_name, version, run.info.run_id, version_tags)

    def _complete(self, name: str, version: str, run_id: str, tags: Mapping[str, str]) -> RegisteredVersion:
        """Tags, then the artifact check, then the completion mark: the mark is written only
        when everything before it was."""
        tags = {k: v for k, v in tags.items() if k != REGISTRATION_TAG}
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))
        self._require_model_artifacts(name, version, "mark it complete")
        mark = registration_mark(name, version)
        self.client.set_model_version_tag(name, version, REGISTRATION_TAG, mark)
        return RegisteredVersion(name, version, run_id, {**tags, REGISTRATION_TAG: mark})

    def start_parent_run(self, experiment: str, run_name: str, tags: Mapping[str, str]) -> str:
        """A run that groups one training of a horizon (its candidates nest under it)."""
        experiment_id = self.ensure_experiment(experiment)
        run = self.client.create_run(experiment_id, tags={**tags, "mlflow.runName": run_name})
        return run.info.run_id

    def finish_run(self, run_id: str, metrics: Mapping[str, float], status: str = "FINISHED") -> None:
        with self._writing(f"finishing run {run_id}"):
            for key, value in _finite_metrics(metrics, "").items():
                self.client.log_metric(run_id, key, value)
            self.client.set_terminated(run_id, status=status)

    def copy_version(self, source: RegisteredVersion, target_name: str, extra_tags: Mapping[str, str]) -> RegisteredVersion:
        """A new version of `target_name` holding the same model as `source` (same run and
        artifacts), with the source's tags plus `extra_tags`, marked complete last."""
        with self._writing(f"copying {source.model_id} to {target_name}"):
            try:
                self.client.get_registered_model(target_name)
            except MlflowException:
                self.client.create_registered_model(target_name)
            mv = self.client.copy_model_version(src_model_uri=source.uri, dst_name=target_name)
            tags = {**source.tags, **extra_tags, "source_model": source.model_id}
            return self._complete(target_name, str(mv.version), mv.run_id, tags)

    def version(self, name: str, version: str) -> RegisteredVersion:
        mv = self.client.get_model_version(name, str(version))
        return RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags))

    def versions(self, name: str) -> list[RegisteredVersion]:
        """All versions of `name`, oldest first (empty when it was never registered)."""
        try:
            found = self.client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return []
        return [RegisteredVersion(mv.name, str(mv.version), mv.run_id, dict(mv.tags)) for mv in sorted(found, key=lambda v: int(v.version))]

    def set_version_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        with self._writing(f"tagging {name} v{version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(version), key, str(value))

    def log_run_artifacts(self, run_id: str, artifacts: Mapping[str, bytes]) -> None:
        """Add files (path -> bytes) to an existing run's artifacts, e.g. the backtest of the
        training run it evaluates; a file of the same path is replaced."""
        with self._writing(f"logging artifacts to run {run_id}"), tempfile.TemporaryDirectory(prefix="vfr-artifacts-") as tmp:
            folder = Path(tmp)
            for rel, blob in artifacts.items():
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob)
            self.client.log_artifacts(run_id, str(folder))

    def read_run_artifact(self, run_id: str, path: str) -> bytes | None:
        """The bytes of one file of a run's artifacts, None when the run has no such file."""
        folder = path.rsplit("/", 1)[0] if "/" in path else None
        if path not in {a.path for a in self.client.list_artifacts(run_id, folder)}:
            return None
        with tempfile.TemporaryDirectory(prefix="vfr-artifact-") as tmp:
            return Path(self.client.download_artifacts(run_id, path, tmp)).read_bytes()

    def load_serving_model(self, name: str, version: str) -> LoadedModel:
        """Load a version through MLflow's pyfunc loader, timed in wall and CPU time (the
        promotion gate's "loads in under a second of CPU")."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        self._use_this_store()
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        return LoadedModel(unwrap(loaded), time.perf_counter() - started, time.thread_time() - started_cpu)

    def model_size_bytes(self, name: str, version: str) -> int:
        """Bytes of the version's model artifacts as stored."""
        with tempfile.TemporaryDirectory(prefix="vfr-size-") as tmp:
            self._use_this_store()
            path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=tmp)
            return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())

