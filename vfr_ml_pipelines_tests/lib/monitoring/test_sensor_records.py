"""The flat records the monitoring sensors read back, and the run-failure alert's text."""

from __future__ import annotations

import math

from vfr_ml_pipelines.lib.monitoring.alerts import run_failure_alert
from vfr_ml_pipelines.lib.monitoring.champion_drift import read_horizon_scores


def test_any_drifted_horizon_makes_the_window_drifted_with_the_largest_score() -> None:
    verdict = read_horizon_scores({"session": "2026-03-02", "drift_score_1d": 0.1, "drifted_1d": False,
                                   "drift_score_1w": 0.4, "drifted_1w": True, "drift_table": "ignored"})
    assert (verdict.session, verdict.drifted, verdict.score, verdict.drifted_horizons) == ("2026-03-02", True, 0.4, ("1w",))
    calm = read_horizon_scores({"session": "2026-03-02", "drift_score_1w": math.nan, "drifted_1w": False})
    assert not calm.drifted and math.isnan(calm.score)
    assert read_horizon_scores({"session": "2026-03-02"}) is None  # no champion served
    # the triggers of the drifted horizons only, as the alert and the run's tag carry them
    both = read_horizon_scores({"session": "s", "drift_score_1d": 0.3, "drifted_1d": True, "drift_trigger_1d": "importance,breadth",
                                "drift_score_1w": 0.0, "drifted_1w": False, "drift_trigger_1w": "", "drift_breadth_1w": 0.5})
    assert both.drifted_horizons == ("1d",) and both.triggers == ("1d:importance,breadth",)
    decay = read_horizon_scores({"session": "s", "decay_score_1m": 2.5, "decayed_1m": True}, score="decay_score", flag="decayed")
    assert decay.drifted_horizons == ("1m",)


def test_the_run_failure_alert_names_job_run_step_and_first_error_line() -> None:
    alert = run_failure_alert("daily_pipeline_job", "abc123", {"raw_prices": "ValueError: bad bar\n  trace..."}, "run failed")
    assert alert.severity == "critical" and alert.fields["failing step"] == "raw_prices"
    assert alert.fields["error"] == "ValueError: bad bar" and "abc123" in alert.text
    no_step = run_failure_alert("retraining_job", "r2", {}, "the run could not start")
    assert no_step.fields["error"] == "the run could not start" and "run level" in no_step.text
