"""A registered version records the pyfunc as code (MLflow's models-from-code), not as a pickled
object, and loads back to the same predictions."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

NAMES = ["f0", "f1", "f2"]


def test_a_version_is_logged_as_code_and_loads_to_the_same_predictions(tmp_path: Path, caplog):
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=NAMES)
    y = 0.2 * X["f0"].to_numpy() + 0.1 * rng.normal(size=200)
    estimator = algorithms.fit_regressor("linear", X.to_numpy(), y, None, None, feature_names=NAMES)
    calibration = ReturnCalibration(slope=0.01, intercept=0.0, residual_std=0.03, raw_slope=0.01, ic_t=3.0,
                                    shrinkage=0.9, drift=0.0, n_days=20)
    model = ServingModel("1w", "linear", estimator, calibration)
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: no pickled object
        caplog.clear()
        version = registry.log_serving_model(
            model, experiment="vfr-ml-1w", registered_name="vfr-linear-1w", run_name="code", tags={},
            params={}, metrics={"validation_rank_ic": 0.05}, artifacts={}, input_example=X,
        )
    assert not [r for r in caplog.records if "CloudPickle" in r.getMessage()]

    folder = Path(urlparse(registry.client.get_model_version_download_uri(version.name, version.version)).path)
    files = {p.name for p in folder.rglob("*") if p.is_file()}
    assert "python_model.pkl" not in files
    assert "pyfunc_model.py" in files

    loaded = registry.load_serving_model(version.name, version.version)
    # the gate's load figure is the loading thread's CPU time: some, and never more than the wall time
    assert 0 < loaded.cpu_seconds <= loaded.seconds + 1e-3
    expected = model.predict_frame(X).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded.model.predict_frame(X).reset_index(drop=True), expected)
    # and through MLflow's own pyfunc API, as any MLflow client would load it
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    pd.testing.assert_frame_equal(pyfunc.predict(X), expected)
