"""The breadth accumulated over consecutive daily reports (lib/monitoring/drift_evidence.py)
and the final floor of the breadth scales (drift_thresholds.breadth_scales)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, DriftReport
from vfr_ml_pipelines.lib.monitoring.drift_evidence import Evidence, accumulate, breadth_strength, sequence_evidence
from vfr_ml_pipelines.lib.monitoring.drift_thresholds import breadth_null, breadth_scales


def _report(breadth: float, threshold: float | None, short=(), config: DriftConfig = DriftConfig()) -> DriftReport:
    return DriftReport(pd.DataFrame({"drifted": [False], "psi": [0.0]}), 0.0, config, breadth, threshold, tuple(short))


def test_the_strength_is_the_largest_breadth_over_threshold_of_any_window() -> None:
    assert breadth_strength(_report(2.0, 4.0, [(10, 3.0, 4.0), (5, 1.0, 2.0)])) == pytest.approx(0.75)
    # a window without threshold or with no breadth does not count; nothing at all gives 0
    assert breadth_strength(_report(float("nan"), 4.0, [(10, 9.0, None), (5, 1.0, 2.0)])) == pytest.approx(0.5)
    assert breadth_strength(_report(3.0, None)) == 0.0
    # a feature with no value gives an infinite breadth: capped so the metadata stays finite
    assert breadth_strength(_report(float("inf"), 2.0)) == 100.0


def test_evidence_adds_each_days_excess_over_the_allowance_and_never_goes_below_zero() -> None:
    config = DriftConfig(breadth_evidence_allowance=0.8)  # round numbers by hand
    # by hand: 0.5 -> 0; 0.9 -> 0.1; 0.95 -> 0.25; 0.7 -> 0.15; 0.9 -> 0.25; 0.2 -> 0
    assert sequence_evidence([0.5, 0.9, 0.95, 0.7, 0.9, 0.2], config) == pytest.approx([0, 0.1, 0.25, 0.15, 0.25, 0])


def test_evidence_continues_from_the_previous_session_of_the_same_champion_only() -> None:
    config = DriftConfig(breadth_evidence_allowance=0.8)  # round numbers by hand
    day1 = accumulate(None, "m1", "2026-12-01", 0.9, config)
    assert (day1.before, day1.value) == pytest.approx((0.0, 0.1))
    day2 = accumulate(day1, "m1", "2026-12-02", 1.0, config)
    assert (day2.before, day2.value) == pytest.approx((0.1, 0.3))
    # a rerun of the same session starts again from the evidence before it: no day counts twice
    rerun = accumulate(day2, "m1", "2026-12-02", 1.1, config)
    assert (rerun.before, rerun.value) == pytest.approx((0.1, 0.4))
    # a new champion (new reference and calibration) and an older report start from 0
    assert accumulate(day2, "m2", "2026-12-03", 0.9, config).before == 0.0
    assert accumulate(day2, "m1", "2026-11-30", 0.9, config).before == 0.0
    # the stored record round-trips; a malformed one starts afresh
    assert Evidence.from_record(day2.as_record()) == day2
    assert Evidence.from_record({"model_id": "m1"}) is None and Evidence.from_record(None) is None


def test_the_evidence_trigger_fires_at_its_threshold_and_can_be_turned_off() -> None:
    config = DriftConfig(breadth_evidence_threshold=0.4)
    quiet = _report(0.5, 4.0, config=config)
    assert replace(quiet, evidence=0.39).triggers == ()
    assert replace(quiet, evidence=0.4).triggers == ("evidence",)
    assert replace(quiet, evidence=0.4).summary()["triggers"] == "evidence"
    assert replace(quiet, evidence=float("nan")).triggers == ()  # a one-off comparison
    off = _report(0.5, 4.0, config=DriftConfig(breadth_evidence_threshold=None))
    assert replace(off, evidence=5.0).triggers == ()
    with pytest.raises(ValueError, match="breadth_evidence"):
        DriftConfig(breadth_evidence_threshold=0.0)


def test_the_breadth_scale_never_falls_below_its_floor() -> None:
    # 12 windows x 2 features: feature 0 never moves (a daily rank: every measure 0), feature 1
    # moves by 0.1 in KS. Without the final floor feature 0's scale is the relative floor (a
    # quarter of the global thresholds) times the typical-exceedance floor (0.25): 1/16 of the
    # global thresholds; with it, a quarter
    null = np.zeros((12, 2, 3))
    null[:, 1, 1] = 0.1
    glob = np.array([0.25, 0.12, 0.30])
    floored = breadth_scales(null, DriftConfig(breadth_scale_floor=0.25))
    unfloored = breadth_scales(null, DriftConfig(breadth_scale_floor=None))
    np.testing.assert_allclose(unfloored[0], glob / 16)
    np.testing.assert_allclose(floored[0], glob / 4)
    # feature 1's KS scale, 0.1 x 1.1 times its typical exceedance (0.1 / 0.11), is above both floors
    assert floored[1, 1] == pytest.approx(unfloored[1, 1]) == pytest.approx(0.1)
    # the reference windows are judged against the same floor: a window where the rank's PSI
    # rises to 0.05 (one symbol of 50 going from missing to present) reads 0.05 / (0.25 / 4)
    # = 0.8 with the floor, 3.2 without
    null[5, 0, 0] = 0.05
    scored = np.array([True, False])
    config = DriftConfig(breadth_features=1, breadth_scale_floor=0.25)
    assert breadth_null(null, config, scored)[5] == pytest.approx(0.8)
    assert breadth_null(null, replace(config, breadth_scale_floor=None), scored)[5] == pytest.approx(3.2)
