"""vfr_ml_pipelines: the ML layer of VFR, as one Dagster code location."""

import os
import warnings

# LightGBM and XGBoost use OpenMP, whose threads spin while waiting by default. With Dagster
# running several steps side by side on a small box, spinning threads starve each other:
# measured here, a LightGBM fit took 4x longer under contention with spinning than with
# passive waits. Set before either library starts its OpenMP runtime; an explicit setting
# in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MLflow draws a progress bar for every artifact download (the promotion gate measures model
# sizes that way): noise in run logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Dagster flags the APIs this project relies on (single-run backfill policies, partitioned
# asset checks, freshness policies) as beta or preview at every definition (README,
# "Operations"). Set here, the filter holds in every process that loads this code: the
# `vfr-ml` commands, the code server and run workers of `make ui`, and the tests.
warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")

__version__ = "0.1.0"
