from __future__ import annotations

import numpy as np
import pytest

from vfr_ml_pipelines.lib.monitoring.detection_study import (
    InjectedShift, PanelSpec, run_study, score_panel, synthetic_panel, with_injected_shift,
)

# small enough for a unit test (less persistence and no regime factor, so 2,000 rows a window
# behave like the full-size windows), large enough for the rule to see a 1.5 std shift
SPEC = PanelSpec(n_symbols=100, n_features=12, reference_sessions=120, symbol_persistence=0.5, date_factor_share=0.0)


def test_panel_shape_and_importance() -> None:
    panel = synthetic_panel(0, SPEC)
    assert len(panel.frame) == SPEC.n_symbols * SPEC.n_sessions
    assert list(panel.frame.columns) == ["session", *panel.features]
    assert max(panel.importance, key=panel.importance.get) == "feature_00"
    assert panel.shift_start is None
    assert synthetic_panel(0, SPEC).frame.equals(panel.frame)


def test_injected_mean_shift_moves_only_the_important_features_after_start() -> None:
    panel = synthetic_panel(1, SPEC)
    start = SPEC.reference_sessions + SPEC.window
    shifted = with_injected_shift(panel, InjectedShift("mean", 1.0, n_features=2), start)
    before, after = panel.frame, shifted.frame
    reference_std = before.loc[before["session"] < SPEC.reference_sessions, "feature_00"].std(ddof=1)
    late = before["session"] >= start
    np.testing.assert_allclose(after.loc[late, "feature_00"] - before.loc[late, "feature_00"], reference_std)
    assert after.loc[~late].equals(before.loc[~late])
    assert after["feature_02"].equals(before["feature_02"])
    assert shifted.shift_start == start


def test_scale_shift_scales_deviations_from_the_reference_mean() -> None:
    panel = synthetic_panel(2, SPEC)
    start = SPEC.reference_sessions + SPEC.window
    shifted = with_injected_shift(panel, InjectedShift("scale", 2.0, n_features=1), start)
    centre = panel.frame.loc[panel.frame["session"] < SPEC.reference_sessions, "feature_00"].mean()
    late = panel.frame["session"] >= start
    np.testing.assert_allclose(shifted.frame.loc[late, "feature_00"] - centre, 2.0 * (panel.frame.loc[late, "feature_00"] - centre))


def test_large_shift_found_within_ten_sessions_and_no_false_alarm() -> None:
    table = run_study(lambda seed: synthetic_panel(seed, SPEC), [InjectedShift("mean", 1.5)], seeds=range(3)).set_index("scenario")
    assert table.loc["mean 1.5 std", "detection_rate"] == 1.0
    assert table.loc["mean 1.5 std", "max_delay"] <= 10
    assert table.loc["none", "false_alarm_rate"] == 0.0
    assert set(table.columns) == {"seeds", "detection_rate", "mean_delay", "max_delay", "false_alarm_rate"}


def test_a_source_with_its_own_shift_is_scored_as_shifted() -> None:
    # a simulator-level shift (VFR_SYNTHETIC_SHIFT_START) arrives as a panel with shift_start set
    start = SPEC.reference_sessions + SPEC.window
    panel = with_injected_shift(synthetic_panel(4, SPEC), InjectedShift("mean", 2.0), start)
    outcome = score_panel(panel)
    assert outcome.shifted and outcome.delay is not None and outcome.delay <= 10
    with pytest.raises(ValueError, match="no clean window"):
        score_panel(with_injected_shift(synthetic_panel(4, SPEC), InjectedShift("mean", 2.0), SPEC.reference_sessions))
