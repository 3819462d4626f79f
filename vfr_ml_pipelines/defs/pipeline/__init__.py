"""Dagster definitions that span the domains: the whole-pipeline jobs, their schedule, catch-up runs."""
