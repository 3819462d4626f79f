"""The breadth trigger (share of scored features drifted, not weighted by importance), its
threshold calibrated on the reference's windows leave-neighbours-out, and a calibration
stored as JSON and passed back to the profile (lib/monitoring/drift.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.monitoring.drift import (
    Calibration, DriftConfig, ReferenceProfile, breadth_null, calibrated_breadth, compare,
)

REFERENCE, WINDOW, N_FEATURES, N_SYMBOLS = 300, 20, 12, 60


def test_breadth_null_judges_each_window_against_the_windows_it_does_not_overlap() -> None:
    # 10 windows x 4 features x (psi, ks, wasserstein), all quiet but window 0, which is far out
    # in features 0 and 1. Against thresholds calibrated on every window (itself included) it
    # would look quiet; against the windows that share no session with it (3 .. 9 at stride 5
    # and length 20: windows 1 and 2 overlap it) half its features drifted.
    null = np.full((10, 4, 3), 0.01)
    null[0, :2] = 5.0
    config = DriftConfig(calibration_window=20, calibration_stride=5)
    shares = breadth_null(null, config, np.ones(4, dtype=bool))
    assert shares.tolist() == [0.5] + [0.0] * 9
    # windows 1 and 2 overlap window 0: their thresholds leave it out too, and they see nothing
    assert calibrated_breadth(shares, config) == pytest.approx(0.5 * config.breadth_margin)
    # an unscored feature (a calendar cycle) does not count in the share
    assert breadth_null(null, config, np.array([True, False, True, True]))[0] == pytest.approx(1 / 3)
    # a quiet reference keeps the floor
    assert calibrated_breadth(np.zeros(10), config) == config.breadth_floor


def _panel(seed: int, n_sessions: int = REFERENCE + 2 * WINDOW) -> pd.DataFrame:
    """AR(1) per symbol and feature (persistence 0.9) over sessions, stationary."""
    rng = np.random.default_rng(seed)
    values = np.empty((n_sessions, N_SYMBOLS, N_FEATURES))
    values[0] = rng.standard_normal((N_SYMBOLS, N_FEATURES))
    for t in range(1, n_sessions):
        values[t] = 0.9 * values[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal((N_SYMBOLS, N_FEATURES))
    frame = pd.DataFrame(values.reshape(-1, N_FEATURES), columns=[f"f{j}" for j in range(N_FEATURES)])
    frame.insert(0, "session", np.repeat(np.arange(n_sessions), N_SYMBOLS))
    return frame


FEATURES = [f"f{j}" for j in range(N_FEATURES)]
# the model leans on f0 alone: the other eleven hold 5 % of its importance together
IMPORTANCE = {"f0": 0.95, **{f"f{j}": 0.05 / (N_FEATURES - 1) for j in range(1, N_FEATURES)}}


def _window(panel: pd.DataFrame, end: int) -> pd.DataFrame:
    return panel.loc[(panel["session"] > end - WINDOW) & (panel["session"] <= end)]


def test_a_broad_shift_in_features_the_model_ignores_fires_the_breadth_trigger_only() -> None:
    panel = _panel(2)
    reference = panel.loc[panel["session"] < REFERENCE]
    profile = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), sessions="session")
    assert profile.breadth_threshold is not None and profile.breadth_threshold < 0.5
    ends = range(REFERENCE + WINDOW, REFERENCE + 2 * WINDOW)
    for end in ends:  # stationary: neither trigger
        report = compare(profile, _window(panel, end), IMPORTANCE)
        assert report.triggers == () and not report.is_drifted, (end, report.breadth)
    # half the features the model ignores double their spread in the last window
    moved = FEATURES[1:7]
    shifted = _window(panel, ends[-1]).copy()
    shifted[moved] *= 2.0
    report = compare(profile, shifted, IMPORTANCE)
    assert set(moved) <= set(report.drifted_features()) and "f0" not in report.drifted_features()
    assert report.score < DriftConfig().score_threshold  # the weighted score does not see it
    assert report.breadth == pytest.approx(len(report.drifted_features()) / N_FEATURES)
    assert report.triggers == ("breadth",) and report.is_drifted
    assert report.summary()["triggers"] == "breadth"
    # the feature the model uses moving fires the weighted trigger as before
    important = _window(panel, ends[-1]).assign(f0=lambda f: f["f0"] + 2.0)
    assert compare(profile, important, IMPORTANCE).triggers == ("importance",)


def test_an_uncalibrated_profile_has_no_breadth_trigger_and_the_switch_turns_it_off() -> None:
    panel = _panel(3)
    reference = panel.loc[panel["session"] < REFERENCE]
    everything = _window(panel, REFERENCE + WINDOW).copy()
    everything[FEATURES[1:]] += 3.0
    plain = ReferenceProfile.from_frame(reference, FEATURES)
    off = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(breadth_trigger=False), sessions="session")
    for profile in (plain, off):
        report = compare(profile, everything, IMPORTANCE)
        assert profile.breadth_threshold is None and report.breadth > 0.9 and report.triggers == ()


def test_a_stored_calibration_gives_the_same_profile_without_recomputing() -> None:
    panel = _panel(4)
    reference = panel.loc[panel["session"] < REFERENCE]
    computed = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), sessions="session")
    stored = Calibration.from_json(computed.calibration.to_json())
    # no sessions given: the thresholds can only come from the stored calibration
    reused = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), calibration=stored)
    np.testing.assert_array_equal(reused.thresholds, computed.thresholds)
    assert (reused.breadth_threshold, reused.calibration_windows) == (computed.breadth_threshold, computed.calibration_windows)
    window = _window(panel, REFERENCE + WINDOW)
    pd.testing.assert_frame_equal(compare(reused, window, IMPORTANCE).table(), compare(computed, window, IMPORTANCE).table())
    with pytest.raises(ValueError, match="other features"):
        ReferenceProfile.from_frame(reference, FEATURES[:-1], DriftConfig(), calibration=stored)
