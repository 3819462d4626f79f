"""Dagster definitions of the models domain: `assets.py` (train_{h}_models ->
{lightgbm,xgboost,linear,ensemble,challenger}_{h}_model; champion_{h}_model; live_1w_model, the
model VFR's live path runs), `checks.py`
(promotion_gate on challenger_{h}_model), `jobs.py` (retraining_job, rollback_{h}_job)."""
