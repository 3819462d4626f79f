"""The breadth trigger's second version (lib/monitoring/drift_thresholds.py, drift.py): each
feature's exceedance divided by its typical leave-neighbours-out exceedance, the statistic
also read on the current window's last 5 and 10 sessions with a Bonferroni-corrected
quantile, and the calibration's version in the stored JSON and the champion's key."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from vfr_ml_pipelines.lib.monitoring import champion_drift
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, ReferenceProfile, compare
from vfr_ml_pipelines.lib.monitoring.drift_thresholds import (
    CALIBRATION_VERSION, Calibration, breadth_null, breadth_quantile_per_window, calibrated_breadth, exceedance,
    kth_largest, typical_exceedance,
)

# the stationary AR(1) panel of the first version's tests: 60 symbols x 12 features
from vfr_ml_pipelines_tests.lib.monitoring.test_drift_breadth import FEATURES, IMPORTANCE, N_FEATURES, REFERENCE, WINDOW, _panel, _window


def test_the_typical_exceedance_is_the_median_of_the_finite_values_at_least_the_floor() -> None:
    lno = np.array([[0.5, 0.1, np.nan], [1.0, 0.2, np.nan], [1.5, np.inf, np.nan], [np.nan, 0.3, np.nan]])
    config = DriftConfig()  # quantile 0.5, floor 0.25
    # feature 0: median of 0.5, 1.0, 1.5; feature 1: median of 0.1, 0.2, 0.3 is below the floor;
    # feature 2 never had a finite value: the floor
    np.testing.assert_allclose(typical_exceedance(lno, config), [1.0, 0.25, 0.25])
    np.testing.assert_allclose(typical_exceedance(lno, DriftConfig(breadth_typical_quantile=None)), [1.0, 1.0, 1.0])


def test_breadth_null_divides_by_the_typical_exceedance_of_the_windows_apart() -> None:
    # the null of test_drift_breadth.py's first test: 10 windows x 4 features, all 0.01 but
    # window 0, where features 0-2 reach 5.0 (length 20, stride 5: windows < 4 apart overlap).
    # Leave-neighbours-out exceedances (same test): window 0 [5/0.03 x 3, 1/3], windows 1-3
    # [1/3 x 4], windows 4-9 [0.01/5.5 x 3, 1/3]. Each window is divided by the median of the
    # windows apart from it, at least 0.25:
    # * window 0 (apart: 4-9): medians [0.0018 -> 0.25 x 3, 1/3]: 3rd largest (5/0.03) / 0.25;
    # * window 1 (apart: 5-9): the same medians: (1/3) / 0.25;
    # * window 4 (apart: 0, 8, 9): medians of (166.7, 0.0018, 0.0018) -> 0.25: (0.01/5.5) / 0.25;
    # * window 5 (apart: 0, 1, 9): medians of (166.7, 1/3, 0.0018) = 1/3: (0.01/5.5) / (1/3).
    # (No final scale floor here: test_drift_evidence.py tests it.)
    null = np.full((10, 4, 3), 0.01)
    null[0, :3] = 5.0
    config = DriftConfig(calibration_window=20, calibration_stride=5, breadth_scale_floor=None)
    values = breadth_null(null, config, np.ones(4, dtype=bool))
    expected = [5.0 / 0.03 / 0.25] + [(1 / 3) / 0.25] * 3 + [0.01 / 5.5 / 0.25] + [0.01 / 5.5 * 3] * 5
    np.testing.assert_allclose(values, expected)


def test_the_breadth_quantile_is_bonferroni_corrected_for_the_lengths_tested() -> None:
    config = DriftConfig()  # quantile 0.95, margin 1.25
    assert breadth_quantile_per_window(config, 1) == pytest.approx(0.95)
    assert breadth_quantile_per_window(config, 3) == pytest.approx(1 - 0.05 / 3)
    values = np.arange(1.0, 101.0)  # numpy's linear quantile of 1..100 at q is 1 + 99 q
    assert calibrated_breadth(values, config) == pytest.approx((1 + 99 * 0.95) * 1.25)
    assert calibrated_breadth(values, config, 3) == pytest.approx((1 + 99 * (1 - 0.05 / 3)) * 1.25)


def test_the_short_windows_read_the_last_sessions_and_find_a_recent_shift_first() -> None:
    panel = _panel(5)
    reference = panel.loc[panel["session"] < REFERENCE]
    profile = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), sessions="session")
    assert [w.length for w in profile.short_windows] == [10, 5]
    assert all(w.threshold is not None and w.scales.shape == (N_FEATURES, 3) for w in profile.short_windows)
    end = REFERENCE + WINDOW
    calm = compare(profile, _window(panel, end), IMPORTANCE, sessions="session")
    assert calm.triggers == (), (calm.breadth, calm.short_breadths)
    # the last 3 of 20 sessions: half the features the model ignores double their spread
    current = _window(panel, end).copy()
    recent = current["session"] > end - 3
    current.loc[recent, FEATURES[1:7]] *= 2.0
    report = compare(profile, current, IMPORTANCE, sessions="session")
    by_length = {n: (breadth, threshold) for n, breadth, threshold in report.short_breadths}
    # the 5-session window, by hand: its rows measured like a window of their own, over its scales
    last_5 = current.loc[current["session"] > end - 5]
    table = compare(profile, last_5, IMPORTANCE).table().set_index("feature").loc[FEATURES]
    ratios = exceedance(table[["psi", "ks_statistic", "wasserstein"]].to_numpy(), profile.short_windows[1].scales)
    assert by_length[5][0] == pytest.approx(kth_largest(ratios, 3))
    # 3 shifted sessions in 20 stay under the whole window's threshold; in 5 they do not
    assert report.breadth < report.breadth_threshold and by_length[5][0] >= by_length[5][1]
    assert report.triggers == ("breadth",)
    assert report.summary()["breadth_last_5"] == by_length[5][0]
    # without the sessions of the rows, only the whole window is read (as before)
    assert compare(profile, current, IMPORTANCE).short_breadths == ()
    assert compare(profile, current, IMPORTANCE).triggers == ()


def test_short_windows_not_shorter_than_the_current_window_are_skipped_and_lengths_validated() -> None:
    panel = _panel(6)
    reference = panel.loc[panel["session"] < REFERENCE]
    config = DriftConfig(breadth_short_windows=(20, 30, 10))
    assert [w.length for w in ReferenceProfile.from_frame(reference, FEATURES, config, sessions="session").short_windows] == [10]
    with pytest.raises(ValueError, match="breadth_short_windows"):
        DriftConfig(breadth_short_windows=(1,))
    with pytest.raises(ValueError, match="breadth_typical_quantile"):
        DriftConfig(breadth_typical_quantile=1.5)


def test_a_stored_calibration_keeps_its_short_windows_and_another_version_is_refused(monkeypatch) -> None:
    panel = _panel(7)
    reference = panel.loc[panel["session"] < REFERENCE]
    computed = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), sessions="session")
    text = computed.calibration.to_json()
    reused = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), calibration=Calibration.from_json(text))
    for mine, theirs in zip(reused.short_windows, computed.short_windows, strict=True):
        assert (mine.length, mine.threshold) == (theirs.length, theirs.threshold)
        np.testing.assert_array_equal(mine.scales, theirs.scales)
    current = _window(panel, REFERENCE + WINDOW)
    assert compare(reused, current, IMPORTANCE, "session").short_breadths == compare(computed, current, IMPORTANCE, "session").short_breadths
    # a calibration of the first definition (no version field) means other numbers: refused,
    # so champion_drift computes it again rather than trusting it
    old = text.replace(f'"version": {CALIBRATION_VERSION}, ', "")
    with pytest.raises(ValueError, match="version"):
        Calibration.from_json(old)
    # and the champion's key names the version, so the old file is not even read
    key = champion_drift.calibration_key(FEATURES, date(2025, 1, 2), date(2025, 12, 31), DriftConfig())
    monkeypatch.setattr(champion_drift, "CALIBRATION_VERSION", CALIBRATION_VERSION - 1)
    assert champion_drift.calibration_key(FEATURES, date(2025, 1, 2), date(2025, 12, 31), DriftConfig()) != key
