"""The breadth trigger (share of scored features drifted, not weighted by importance), its
threshold calibrated on the reference's windows leave-neighbours-out, and a calibration
stored as JSON and passed back to the profile (lib/monitoring/drift.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, ReferenceProfile, compare
from vfr_ml_pipelines.lib.monitoring.drift_thresholds import Calibration, breadth_null, calibrated_breadth

REFERENCE, WINDOW, N_FEATURES, N_SYMBOLS = 300, 20, 12, 60


def test_breadth_null_judges_each_window_against_the_windows_it_does_not_overlap() -> None:
    # 10 windows x 4 features x (psi, ks, wasserstein), all at 0.01 but window 0, where
    # features 0-2 reach 5.0. Window 0 shares sessions with windows 1-3 (length 20, stride 5),
    # so its scales come from windows 4-9: all 0.01, so the floors (a quarter of the global
    # thresholds) hold and its third-largest exceedance is 5 / (0.12 / 4) (KS). Windows 1-3
    # leave window 0 out as well: every feature at 0.01 / 0.03. Windows 4-9 include it: the
    # scale of features 0-2 is 5 x 1.1, and the third largest is 0.01 / 5.5. (Exceedances
    # not divided by their typical value here: test_the_typical_exceedance_... below.)
    null = np.full((10, 4, 3), 0.01)
    null[0, :3] = 5.0
    config = DriftConfig(calibration_window=20, calibration_stride=5, breadth_quantile=1.0, breadth_typical_quantile=None)
    values = breadth_null(null, config, np.ones(4, dtype=bool))
    np.testing.assert_allclose(values, [5.0 / 0.03] + [0.01 / 0.03] * 3 + [0.01 / 5.5] * 6)
    assert calibrated_breadth(values, config) == pytest.approx(5.0 / 0.03 * config.breadth_margin)
    # an unscored feature does not count: window 0 then has two far-out features, not three
    assert breadth_null(null, config, np.array([True, True, False, True]))[0] == pytest.approx(0.01 / 0.03)
    # a quiet reference keeps the floor; the default quantile (0.95) lets one odd window pass
    assert calibrated_breadth(np.full(10, 0.3), config) == config.breadth_floor
    assert calibrated_breadth(np.r_[np.full(39, 2.0), 100.0], DriftConfig()) == pytest.approx(2.0 * 1.25)


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
    assert profile.breadth_threshold is not None and profile.breadth_threshold >= DriftConfig().breadth_floor
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
    # breadth, by hand: each feature's largest measure / scale, the third largest of them
    table = report.table().set_index("feature").loc[FEATURES]
    ratios = table[["psi", "ks_statistic", "wasserstein"]].to_numpy() / profile.scales
    assert report.breadth == pytest.approx(np.sort(ratios.max(axis=1))[-3])
    assert report.breadth >= profile.breadth_threshold
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
    assert plain.breadth_threshold is None and np.isnan(compare(plain, everything, IMPORTANCE).breadth)
    off = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(breadth_trigger=False), sessions="session")
    report = compare(off, everything, IMPORTANCE)
    assert off.breadth_threshold is None and report.breadth > 10 and report.triggers == ()
    assert compare(plain, everything, IMPORTANCE).triggers == ()


def test_a_stored_calibration_gives_the_same_profile_without_recomputing() -> None:
    panel = _panel(4)
    reference = panel.loc[panel["session"] < REFERENCE]
    computed = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), sessions="session")
    stored = Calibration.from_json(computed.calibration.to_json())
    # no sessions given: the thresholds can only come from the stored calibration
    reused = ReferenceProfile.from_frame(reference, FEATURES, DriftConfig(), calibration=stored)
    np.testing.assert_array_equal(reused.thresholds, computed.thresholds)
    np.testing.assert_array_equal(reused.scales, computed.scales)
    assert (reused.breadth_threshold, reused.calibration_windows) == (computed.breadth_threshold, computed.calibration_windows)
    window = _window(panel, REFERENCE + WINDOW)
    pd.testing.assert_frame_equal(compare(reused, window, IMPORTANCE).table(), compare(computed, window, IMPORTANCE).table())
    with pytest.raises(ValueError, match="other features"):
        ReferenceProfile.from_frame(reference, FEATURES[:-1], DriftConfig(), calibration=stored)
