"""Feature drift of the served champions and the sensor that retrains on it.

Defines the asset `feature_drift` (group `monitoring`, in the daily job) and the sensor
`drift_sensor`, which alerts and requests `retraining_job`. The sensor reads the drift scores
from the latest `feature_drift` materialization's metadata (`session`, `drift_score_<h>`,
`drifted_<h>`, `drift_trigger_<h>`): no table of its own, and the UI shows the very numbers
the sensor acted on. The alert and the run's `vfr/drift_triggers` tag say which trigger fired
("importance": the weighted score; "breadth": several features far beyond their reference).
"""

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.defs.monitoring.reports import metadata_record, png_markdown, retraining_finished, table_metadata
from vfr_ml_pipelines.defs.resources import AlertWebhookResource, FeatureStoreResource, MlflowResource
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.monitoring.alerts import Alert
from vfr_ml_pipelines.lib.monitoring.champion_drift import (
    DEFAULT_CURRENT_SESSIONS, champions_drift, horizon_scores, read_horizon_scores, short_window_record,
)
from vfr_ml_pipelines.lib.monitoring.decision import DriftCursor, Observation, decide
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig

_DRIFT = DriftConfig()
FEATURE_DRIFT = dg.AssetKey("feature_drift")
# set on the runs the sensor requests, to find them again
DRIFT_EVENT_TAG = "vfr/drift_event"
DRIFT_TRIGGERS_TAG = "vfr/drift_triggers"
# the report changes once a session; a tick is two small instance queries
DRIFT_SENSOR_INTERVAL_SECONDS = 15 * 60
DRIFT_COLUMNS = ["horizon", "feature", "psi", "ks_statistic", "wasserstein", "importance", "drifted",
                 "psi_threshold", "ks_threshold", "wasserstein_threshold", "exceedance", "excluded"]


class FeatureDriftConfig(dg.Config):
    """Thresholds of `lib/monitoring/drift.py` (its `DriftConfig` holds the defaults and why)."""

    current_sessions: int = DEFAULT_CURRENT_SESSIONS
    psi_drift: float = _DRIFT.psi_drift
    ks_statistic: float = _DRIFT.ks_statistic
    wasserstein: float = _DRIFT.wasserstein
    score_threshold: float = _DRIFT.score_threshold
    # per-feature thresholds: this quantile of the reference's own windows, times the margin
    calibration_quantile: float = _DRIFT.calibration_quantile
    calibration_margin: float = _DRIFT.calibration_margin
    # second trigger, not weighted: the 3rd-largest exceedance, its threshold calibrated likewise
    breadth_trigger: bool = _DRIFT.breadth_trigger
    breadth_quantile: float = _DRIFT.breadth_quantile
    breadth_margin: float = _DRIFT.breadth_margin
    # third trigger: the breadth accumulated over consecutive sessions (None: off)
    breadth_evidence_threshold: float | None = _DRIFT.breadth_evidence_threshold


@dg.asset(group_name="monitoring", kinds={"python"}, deps=["feature_matrix", *(f"champion_{h}_model" for h in HORIZONS)])
def feature_drift(context: dg.AssetExecutionContext, config: FeatureDriftConfig, mlflow: MlflowResource, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    """Each served champion's features over the last sessions against its training window: PSI,
    KS, Wasserstein per feature against thresholds calibrated on the training window's own
    windows (calendar cycles excluded); the importance-weighted share of drifted features and,
    not weighted, the breadth (the 3rd-largest exceedance: how far several features are beyond
    their own reference's excursions), each against its threshold, and the breadth accumulated
    over the sessions since the previous materialization's (`drift_evidence`, continued from
    that materialization's). The calibration is stored with the champion on its first run and
    reused after (`calibration` says which)."""
    thresholds = DriftConfig(psi_drift=config.psi_drift, ks_statistic=config.ks_statistic,
                             wasserstein=config.wasserstein, score_threshold=config.score_threshold,
                             calibration_quantile=config.calibration_quantile, calibration_margin=config.calibration_margin,
                             breadth_trigger=config.breadth_trigger, breadth_quantile=config.breadth_quantile,
                             breadth_margin=config.breadth_margin, breadth_evidence_threshold=config.breadth_evidence_threshold)
    previous = metadata_record(context.instance, FEATURE_DRIFT) or {}
    drifts = champions_drift(mlflow.registry, feature_store.offline, thresholds, config.current_sessions,
                             previous_evidence=previous.get("drift_evidence"))
    table = pd.concat([d.table() for d in drifts]) if drifts else pd.DataFrame({c: [] for c in DRIFT_COLUMNS})
    windows = {d.horizon: f"{d.model_id}: {d.reference_start}..{d.reference_end} vs {d.current_start}..{d.current_end}" for d in drifts}
    return dg.MaterializeResult(metadata={
        **horizon_scores(drifts), "drift_table": table_metadata(table, DRIFT_COLUMNS), "windows": dg.MetadataValue.json(windows),
        "breadth_thresholds": dg.MetadataValue.json({d.horizon: d.report.breadth_threshold for d in drifts}),
        "breadth_short_windows": dg.MetadataValue.json({d.horizon: short_window_record(d.report) for d in drifts}),
        "calibration": dg.MetadataValue.json({d.horizon: d.calibration for d in drifts}),
        "drift_evidence": dg.MetadataValue.json({d.horizon: d.evidence.as_record() for d in drifts if d.evidence}),
        "drift_plot": png_markdown({d.horizon: d.report.plot_png(title=f"Feature drift {d.horizon}") for d in drifts}, "no champion served"),
    })


# on by default (a false alarm costs one retraining run): on the simulator study's held-out
# seeds 12-23 at 100 symbols, the default universe, the rule flags 10 % of unshifted windows
# (one seed's own volatility surge, and the accumulated evidence on another) and finds the
# default shift on 10 of 12 (docs/monitoring.md, "Accumulated evidence and the scale floor")
@dg.sensor(name="drift_sensor", job=retraining_job, minimum_interval_seconds=DRIFT_SENSOR_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.RUNNING)
def drift_sensor(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhookResource):
    """Alerts and requests one `retraining_job` run per drift event of `feature_drift`
    (lib/monitoring/decision.py: nothing more while it runs, then a cooldown)."""
    record = metadata_record(context.instance, FEATURE_DRIFT)
    verdict = record and read_horizon_scores(record)
    if not verdict:
        return dg.SkipReason("no feature_drift report with a served champion yet")
    cursor = DriftCursor.from_string(context.cursor)
    finished = retraining_finished(context.instance, DRIFT_EVENT_TAG, cursor.run_key)
    triggers = "; ".join(verdict.triggers)  # e.g. "1d:importance; 1w:importance,breadth"
    decision = decide(cursor, Observation(verdict.session, verdict.drifted, verdict.score, finished, trigger=triggers))
    context.update_cursor(decision.cursor.to_string())
    if not decision.request_run:
        return dg.SkipReason(decision.reason)
    alert_webhook.send(Alert("Feature drift", f"{decision.reason} ({', '.join(verdict.drifted_horizons)})", "warning",
                             {"session": verdict.session, "run key": decision.run_key, "triggers": triggers or "not recorded"}),
                       context.log)
    return dg.RunRequest(run_key=decision.run_key, tags={DRIFT_EVENT_TAG: decision.run_key, "vfr/drifted_horizons": ",".join(verdict.drifted_horizons),
                                                         DRIFT_TRIGGERS_TAG: triggers})
