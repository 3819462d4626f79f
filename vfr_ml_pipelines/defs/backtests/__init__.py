"""Dagster definitions of the backtests domain: `assets.py` (backtest_{h} for each horizon,
risk_report, live_track_record; group `backtests`)."""
