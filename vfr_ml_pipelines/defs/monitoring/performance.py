"""Live performance of the served models and the sensor that acts on its decay.

Defines the asset `live_performance` (group `monitoring`; after `prediction_outcomes`, in the
daily job and declaratively with `AutomationCondition.eager()`) and the sensor `decay_sensor`,
which alerts and requests `retraining_job` when a champion's live Rank IC is significantly below
its validated level, and alerts when a shadow challenger beats its champion live. It reads the
latest `live_performance` materialization's metadata (`session`, `decay_score_<h>`,
`decayed_<h>`, `shadow_beats_<h>`).
"""

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.models.jobs import retraining_job
from vfr_ml_pipelines.defs.monitoring.reports import metadata_record, png_markdown, retraining_finished, table_metadata
from vfr_ml_pipelines.defs.resources import AlertWebhookResource, MarketDataResource, MlflowResource, WarehouseResource
from vfr_ml_pipelines.lib.monitoring.alerts import Alert
from vfr_ml_pipelines.lib.monitoring.champion_drift import read_horizon_scores
from vfr_ml_pipelines.lib.monitoring.decision import DecisionConfig, DriftCursor, Observation, decide
from vfr_ml_pipelines.lib.monitoring.live_performance import LivePerformanceConfig
from vfr_ml_pipelines.lib.monitoring.served_performance import decay_record, served_performance

_LIVE = LivePerformanceConfig()
LIVE_PERFORMANCE = dg.AssetKey("live_performance")
DECAY_EVENT_TAG = "vfr/decay_event"
DECAY_SENSOR_INTERVAL_SECONDS = 15 * 60  # outcomes change once a session
PERFORMANCE_COLUMNS = ["model", "horizon", "dates", "rank_ic", "rank_ic_low", "rank_ic_high", "validated_rank_ic",
                       "decay_t", "decayed", "direction_accuracy", "accuracy_low", "accuracy_high", "brier"]


class LivePerformanceAssetConfig(dg.Config):
    """`lib/monitoring/live_performance.py`'s `LivePerformanceConfig` holds the defaults and why."""

    trailing_sessions: int = _LIVE.trailing_sessions
    alpha: float = _LIVE.alpha
    min_dates: int = _LIVE.min_dates


@dg.asset(group_name="monitoring", kinds={"postgres"}, deps=["prediction_outcomes"],
          automation_condition=dg.AutomationCondition.eager())
def live_performance(config: LivePerformanceAssetConfig, warehouse: WarehouseResource, mlflow: MlflowResource,
                     market_data: MarketDataResource) -> dg.MaterializeResult:
    """Trailing Rank IC (overlap-adjusted CI), direction accuracy (Wilson), Brier and reliability
    of each served champion and shadow, against the champion's validated Rank IC."""
    settings = LivePerformanceConfig(trailing_sessions=config.trailing_sessions, alpha=config.alpha, min_dates=config.min_dates)
    done = served_performance(warehouse.engine, mlflow.registry, market_data.today(), settings)
    table = pd.DataFrame([result.row() for _, result in done.results], columns=PERFORMANCE_COLUMNS)
    return dg.MaterializeResult(metadata={
        **decay_record(done), "performance": table_metadata(table, PERFORMANCE_COLUMNS),
        "reliability": png_markdown({v.version.model_id: r.reliability_png() for v, r in done.results}, "no realized outcome yet"),
        "shadows": dg.MetadataValue.json([{"horizon": s.horizon, "shadow": s.shadow, "champion": s.champion,
                                           "t": round(s.t, 3), "beats": s.shadow_beats_champion} for s in done.shadows]),
    })


@dg.sensor(name="decay_sensor", job=retraining_job, minimum_interval_seconds=DECAY_SENSOR_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.STOPPED)
def decay_sensor(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhookResource):
    """Alerts and requests one `retraining_job` run per decay event (the drift sensor's state
    machine); alerts once per session when a shadow beats its champion live."""
    record = metadata_record(context.instance, LIVE_PERFORMANCE)
    verdict = record and read_horizon_scores(record, score="decay_score", flag="decayed")
    if not verdict or not verdict.session:
        return dg.SkipReason("no live_performance report with a champion's outcomes yet")
    cursor = DriftCursor.from_string(context.cursor)
    beating = sorted(k.removeprefix("shadow_beats_") for k, v in record.items() if k.startswith("shadow_beats_") and v)
    if beating and verdict.session != cursor.last_session:
        alert_webhook.send(Alert("Shadow beats champion", f"live Rank IC of the shadow challenger beats the champion: {', '.join(beating)}", "info"), context.log)
    finished = retraining_finished(context.instance, DECAY_EVENT_TAG, cursor.run_key)
    decision = decide(cursor, Observation(verdict.session, verdict.drifted, verdict.score, finished), DecisionConfig(run_key_prefix="decay"))
    context.update_cursor(decision.cursor.to_string())
    if not decision.request_run:
        return dg.SkipReason(decision.reason)
    alert_webhook.send(Alert("Live skill decayed", f"{decision.reason} for {', '.join(verdict.drifted_horizons)}", "critical"), context.log)
    return dg.RunRequest(run_key=decision.run_key, tags={DECAY_EVENT_TAG: decision.run_key, "vfr/decayed_horizons": ",".join(verdict.drifted_horizons)})
