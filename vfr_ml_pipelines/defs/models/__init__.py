"""Dagster definitions of the models domain."""
