"""Dagster definitions of the market_data domain."""
