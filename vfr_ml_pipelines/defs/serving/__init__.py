"""Dagster definitions of the serving domain."""
