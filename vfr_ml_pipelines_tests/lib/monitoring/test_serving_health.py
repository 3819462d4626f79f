from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from vfr_ml_pipelines.lib.monitoring import serving_health as sh
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key

UNIVERSE = ["AAPL", "MSFT", "XOM"]


def _key(symbol: str, horizon: str) -> str:
    return prediction_key(symbol, horizon, "default")


def test_coverage_counts_missing_and_early_expiry() -> None:
    ttls = {
        _key("AAPL", "1d"): 90_000, _key("MSFT", "1d"): 1_000,  # expires before the publish in 80,000 s
        _key("XOM", "1d"): -1,  # no expiry: covered
        _key("AAPL", "1w"): 90_000, _key("MSFT", "1w"): -2,  # -2: gone
    }
    report = sh.coverage(UNIVERSE, ["1d", "1w"], ttls, seconds_to_publish=80_000)
    assert report.expected == 6 and report.covered == 3
    assert report.coverage == pytest.approx(0.5)
    assert set(report.missing) == {("MSFT", "1w"), ("XOM", "1w")}
    assert report.expiring == (("MSFT", "1d"),)
    table = report.table().set_index("horizon")
    assert table.loc["1d", "expiring_early"] == 1 and table.loc["1w", "missing"] == 2
    full = sh.coverage(UNIVERSE, ["1d"], {_key(s, "1d"): 90_000 for s in UNIVERSE}, seconds_to_publish=80_000)
    assert full.coverage == 1.0
    assert sh.coverage(UNIVERSE, ["1d"], {_key(s, "1d"): 90_000 for s in UNIVERSE}, seconds_to_publish=80_000,
                       margin_seconds=20_000).coverage == 0.0


def test_seconds_to_next_publish_skips_the_weekend_across_the_dst_change() -> None:
    friday_evening = datetime(2026, 3, 6, 23, 40, tzinfo=UTC)  # 18:40 New York, after Friday's publish
    # Monday 18:30 New York; clocks spring forward on Sunday 8 March, so one hour less than 2 d 23 h 50 min
    assert sh.seconds_to_next_publish(friday_evening) == timedelta(days=2, hours=22, minutes=50).total_seconds()


def test_distribution_matches_scipy_and_needs_an_effect_size() -> None:
    reference = {"BUY": 300, "HOLD": 400, "SELL": 300}
    same = ["BUY"] * 290 + ["HOLD"] * 410 + ["SELL"] * 300
    check = sh.prediction_distribution(same, np.full(1000, 0.5), reference, reference_mean_probability=0.5)
    smoothed = np.array([300.5, 400.5, 300.5]) / 1001.5
    assert check.chi2 == pytest.approx(stats.chisquare([290, 410, 300], smoothed * 1000).statistic)
    assert not check.shifted
    assert check.table()["count"].tolist() == [290, 410, 300]
    bullish = ["BUY"] * 7000 + ["HOLD"] * 2000 + ["SELL"] * 1000
    moved = sh.prediction_distribution(bullish, np.full(10_000, 0.6), reference)
    assert moved.shifted and moved.pvalue < 1e-10 and moved.max_share_gap == pytest.approx(0.7 - 300.5 / 1001.5)
    # significant with many rows but a 2-point move: not an alarm
    slight = ["BUY"] * 32_000 + ["HOLD"] * 38_000 + ["SELL"] * 30_000
    assert not sh.prediction_distribution(slight, [0.5], reference).shifted


def test_distribution_edge_cases() -> None:
    never_sold = sh.prediction_distribution(["SELL"] * 10, [0.4] * 10, {"BUY": 50, "HOLD": 50})
    assert np.isfinite(never_sold.chi2) and never_sold.shifted
    with pytest.raises(ValueError, match="unknown direction"):
        sh.prediction_distribution(["UP"], [0.6], {"BUY": 1})
    with pytest.raises(ValueError, match="no predictions"):
        sh.prediction_distribution([], [], {"BUY": 1})


def test_model_age() -> None:
    now = datetime(2026, 3, 20, 12, tzinfo=UTC)
    assert sh.model_age(now - timedelta(days=3), now) == sh.ModelAge(3.0, False)
    assert sh.model_age(now - timedelta(days=12), now).stale
    with pytest.raises(ValueError):
        sh.model_age(datetime(2026, 3, 1), now)
