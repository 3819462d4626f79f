"""vfr_ml_pipelines: the ML layer of VFR, as one Dagster code location."""

__version__ = "0.1.0"
