"""The thin Dagster layer, one folder per domain."""
