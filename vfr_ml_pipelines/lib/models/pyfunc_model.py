"""The model-from-code file MLflow records with every registered version and runs on load:
it names the pyfunc class (lib/models/pyfunc.py) instead of pickling an instance of it, so
loading a model executes this package's own code, never a pickled object."""

import mlflow

from vfr_ml_pipelines.lib.models.pyfunc import VfrPyfuncModel

mlflow.models.set_model(VfrPyfuncModel())
