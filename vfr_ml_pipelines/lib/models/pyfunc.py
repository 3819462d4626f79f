"""The MLflow pyfunc face of a `ServingModel`: `mlflow.pyfunc.load_model(uri).predict(df)`
returns score, expected_return and probability for each row, whatever the algorithm.

The model file is the `ServingModel` bytes (native LightGBM / XGBoost formats inside, no
pickled estimator objects), so loading is fast and does not depend on pickle compatibility
of the libraries. The wrapper class is imported from this installed package when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from vfr_ml_pipelines.lib.models.serving_model import ServingModel

MODEL_FILE_KEY = "serving_model"
# the model-from-code file logged with each version (read as a path, not imported: importing it
# would register its model in this process)
MODEL_CODE_FILE = Path(__file__).with_name("pyfunc_model.py")


class VfrPyfuncModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.model = ServingModel.from_bytes(Path(context.artifacts[MODEL_FILE_KEY]).read_bytes())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict_frame(model_input).reset_index(drop=True)


def unwrap(loaded: Any) -> ServingModel:
    """The `ServingModel` inside a loaded pyfunc model (for direct, DataFrame-free scoring)."""
    return loaded.unwrap_python_model().model
