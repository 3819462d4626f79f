"""The live track record's sampling: overlapping forward returns counted once."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests.live_record import live_track_record


def test_a_weekly_record_samples_every_fifth_session_with_outcomes():
    sessions = [date(2031, 3, 2) + timedelta(days=i) for i in range(7)]
    rows = []
    for i, session in enumerate(sessions):
        # sessions 0 and 5 (the sampled ones) rank perfectly, the others exactly backwards
        sign = 1.0 if i in (0, 5) else -1.0
        rows += [("1w", session, s, e, sign * e, None) for s, e in (("AAA", 0.02), ("BBB", 0.01), ("CCC", -0.01))]
    frame = pd.DataFrame(rows, columns=["horizon", "as_of_date", "symbol", "expected_return", "actual_return", "direction_correct"])
    record = live_track_record(frame, "1w", topk=2, min_periods=2)
    assert (record.days_with_outcomes, record.sampled_days) == (7, 2)
    assert record.rank_ic_mean == pytest.approx(1.0)
    assert record.topk_return == pytest.approx(0.015)
    assert record.direction_accuracy != record.direction_accuracy  # no directional call: NaN
