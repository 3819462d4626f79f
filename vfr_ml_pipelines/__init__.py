"""vfr_ml_pipelines: the ML layer of VFR, as one Dagster code location."""

import os

# LightGBM and XGBoost use OpenMP, whose threads spin while waiting by default. With Dagster
# running several steps side by side on a small box, spinning threads starve each other:
# measured here, a LightGBM fit took 4x longer under contention with spinning than with
# passive waits. Set before either library starts its OpenMP runtime; an explicit setting
# in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MLflow draws a progress bar for every artifact download (the promotion gate measures model
# sizes that way): noise in run logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__version__ = "0.1.0"
