"""Dagster definitions of the monitoring domain."""
