"""Dagster definitions of the features domain."""
