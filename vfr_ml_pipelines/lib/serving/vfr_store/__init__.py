"""Every SQL statement this project runs on VFR's own ML tables, by table family:
`predictions` (ml_enhancement_definitions, ml_predictions, vfr_ml.ml_prediction_sessions),
`models` (ml_models, vfr_ml.live_path_switch), `features` (ml_feature_definitions,
ml_feature_store), `outcomes` (ml_outcomes, the outcome columns of ml_predictions, the
performance views) and `performance` (ml_performance_metrics). The logic modules of
lib/serving build the rows and values and call these; this project's own warehouse tables
are in `lib/serving/store.py`."""
