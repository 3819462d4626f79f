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


def _record(probabilities, spread: float):
    from vfr_ml_pipelines.lib.models.validation_record import ValidationRecord, probability_bins

    counts = np.bincount(probability_bins(np.asarray(probabilities)), minlength=100)
    return ValidationRecord(len(probabilities), 250, tuple(int(c) for c in counts), float(np.mean(probabilities)), spread)


def test_served_day_against_the_validation_record() -> None:
    rng = np.random.default_rng(11)
    record = _record(1 / (1 + np.exp(-rng.normal(size=50_000))), spread=0.01)
    signal = rng.normal(size=500)
    same = sh.served_distribution(record, 1 / (1 + np.exp(-signal)), 0.01 * signal)
    assert same.status == sh.MATCHES and not same.flagged
    # the chi-square figure against scipy on the counts, rebuilt independently from the rule
    served = [sum(1 / (1 + np.exp(-x)) >= 0.55 for x in signal), 0, sum(1 / (1 + np.exp(-x)) <= 0.45 for x in signal)]
    served[1] = 500 - served[0] - served[2]
    reference = np.array([record.direction_counts(0.55, 0.45)[d] + 0.5 for d in sh.DIRECTIONS])
    assert same.check.chi2 == pytest.approx(stats.chisquare(served, reference / reference.sum() * 500).statistic)
    assert same.spread_ratio == pytest.approx(np.std(0.01 * signal) / 0.01)
    bullish = sh.served_distribution(record, 1 / (1 + np.exp(-(signal + 1.0))), 0.01 * signal)
    assert bullish.status == sh.SHIFTED and bullish.check.current_shares["BUY"] > 0.6
    summary = bullish.summary()
    assert summary["status"] == sh.SHIFTED and summary["pvalue"] < 0.01 and set(summary["shares"]) == set(sh.DIRECTIONS)


def test_spread_moved_flags_even_with_matching_shares() -> None:
    rng = np.random.default_rng(12)
    record = _record(1 / (1 + np.exp(-rng.normal(size=50_000))), spread=0.01)
    signal = rng.normal(size=500)
    wide = sh.served_distribution(record, 1 / (1 + np.exp(-signal)), 0.03 * signal)
    assert not wide.check.shifted and wide.spread_ratio == pytest.approx(3 * np.std(signal), rel=1e-9)
    assert wide.status == sh.SHIFTED
    narrow = sh.served_distribution(record, 1 / (1 + np.exp(-signal)), 0.004 * signal)
    assert narrow.status == sh.SHIFTED  # ratio about 0.4 < 1/2


def test_no_record_and_too_few_predictions_are_reported_not_raised() -> None:
    none = sh.served_distribution(None, [0.6, 0.4], [0.01, -0.01])
    assert none.status == sh.NO_RECORD and not none.flagged and none.check is None
    assert none.summary()["validation_spread"] is None
    record = _record(np.full(1000, 0.5), spread=0.01)
    few = sh.served_distribution(record, [0.9] * 49, [0.01] * 49)  # all BUY against an all-HOLD record, but 49 rows
    assert few.status == sh.TOO_FEW and not few.flagged
    assert sh.served_distribution(record, [0.9] * 50, [0.01] * 50).status == sh.SHIFTED


def test_inference_latency_from_the_publish_metadata() -> None:
    metadata = {"1w_champion_score_seconds": 0.0421, "1w_champion_symbols": 500, "1w_challenger_score_seconds": 0.05,
                "1d_champion_model": "vfr-1d.v3"}
    assert sh.inference_latency(metadata, ["1d", "1w"]) == {"1w": {"seconds": 0.0421, "symbols": 500}}
    assert sh.inference_latency({}, ["1w"]) == {}
