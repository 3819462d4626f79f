"""The return calibration: expected return and probability from one model of the forward
return, agreeing in sign, skill-sized across stocks, scale-agnostic, for every candidate
type of the pipeline."""

from __future__ import annotations

import json
import math
import struct
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, ndtr

from vfr_ml_pipelines.lib.models.calibration import PROBABILITY_EPSILON, ReturnCalibration, daily_mean_return
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig, _fit_fold, prepare
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

D0 = date(2024, 1, 1)


def _days(n: int) -> list[date]:
    return [D0 + timedelta(days=i) for i in range(n)]


def _known_ic_case(ic: float, n_days: int, n_symbols: int, drift: float, seed: int, spread: float = 0.02):
    """Scores z ~ N(0, 1) per day; return = drift + day shock + spread * (ic z + sqrt(1-ic^2) e):
    the cross-sectional correlation of score and return is `ic`, the realized spread `spread`."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_days, n_symbols))
    e = rng.normal(size=(n_days, n_symbols))
    shock = rng.normal(0, 0.01, size=(n_days, 1))
    r = drift + shock + spread * (ic * z + math.sqrt(1 - ic**2) * e)
    dates = np.repeat(np.array(_days(n_days), dtype=object), n_symbols)
    return z.ravel(), r.ravel(), dates


def test_hand_computed_fit_on_two_days():
    # day 1: s (0, 1, 2), r (0.00, 0.01, 0.02); day 2: s (0, 1, 2), r (0.03, 0.02, 0.04)
    s = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    r = np.array([0.00, 0.01, 0.02, 0.03, 0.02, 0.04])
    dates = [D0] * 3 + [D0 + timedelta(days=1)] * 3
    cal = ReturnCalibration.fit(s, r, dates, horizon_days=1)
    # within-day sums: day 1 sr = 0.02, ss = 2; day 2 sr = 0.01, ss = 2 -> raw slope 0.0075
    assert cal.raw_slope == pytest.approx(0.0075, rel=1e-12)
    # daily ICs 1 and 0.5 -> t = 0.75 / std(1, 0.5; ddof 1) * sqrt(2) = 3; shrinkage 1 - 1/9
    assert cal.ic_t == pytest.approx(0.75 / (0.5 / math.sqrt(2)) * math.sqrt(2), rel=1e-12)
    assert cal.shrinkage == pytest.approx(8 / 9, rel=1e-12)
    assert cal.slope == pytest.approx(0.0075 * 8 / 9, rel=1e-12)
    # drift = mean of the day means (0.01, 0.03); intercept = drift - slope * mean score (1)
    assert cal.drift == pytest.approx(0.02, rel=1e-12)
    assert cal.intercept == pytest.approx(0.02 - cal.slope, rel=1e-12)
    fitted = cal.intercept + cal.slope * s
    assert cal.residual_std == pytest.approx(float(np.sqrt(np.mean((r - fitted) ** 2))), rel=1e-12)
    er, p = cal.predict(np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(er, cal.intercept + cal.slope * np.array([0.0, 1.0, 2.0]), rtol=1e-12)
    # the logistic approximation of Phi(er / residual std): sigmoid(1.702 er / std)
    np.testing.assert_allclose(p, expit(1.702 * er / cal.residual_std), rtol=1e-12)
    np.testing.assert_allclose(p, ndtr(er / cal.residual_std), atol=0.01)
    a, b = cal.logit_coefficients()
    np.testing.assert_allclose(np.log(p / (1 - p)), a * np.array([0.0, 1.0, 2.0]) + b, rtol=1e-9)
    # an explicit drift moves the level, not the slope
    moved = ReturnCalibration.fit(s, r, dates, horizon_days=1, drift=0.005)
    assert moved.slope == cal.slope and moved.intercept == pytest.approx(0.005 - cal.slope)
    assert ReturnCalibration.from_dict(json.loads(json.dumps(cal.as_dict()))) == cal


@pytest.mark.parametrize("scale, offset", [(1.0, 0.0), (1000.0, 5.0), (0.001, -3.0)])
def test_spread_is_ic_times_realized_spread_whatever_the_score_scale(scale, offset):
    ic, spread = 0.05, 0.02
    z, r, dates = _known_ic_case(ic, n_days=400, n_symbols=200, drift=0.001, seed=3, spread=spread)
    cal = ReturnCalibration.fit(z * scale + offset, r, dates, horizon_days=1)
    assert cal.shrinkage > 0.9  # t about 0.05 * sqrt(200) * sqrt(400) = 14
    er, _ = cal.predict(np.random.default_rng(9).normal(size=5000) * scale + offset)
    # predicted spread = IC x realized spread (0.001), within sampling error
    assert float(np.std(er)) == pytest.approx(ic * spread, rel=0.1)
    # the average expected return is the drift (each day weighing the same)
    assert cal.drift == pytest.approx(daily_mean_return(pd.DataFrame({"trade_date": dates, "forward_return": r})))


def test_probability_is_the_absolute_up_rate_with_the_drift():
    # a strong upward drift: most returns are positive even for the lowest scores
    z, r, dates = _known_ic_case(0.05, n_days=300, n_symbols=100, drift=0.01, seed=5)
    cal = ReturnCalibration.fit(z, r, dates, horizon_days=1)
    _, p = cal.predict(z)
    # the mean probability matches the realized share of positive returns (normal residuals)
    assert float(p.mean()) == pytest.approx(float((r > 0).mean()), abs=0.02)
    assert (p > 0.5).all()


def test_signs_always_agree_and_probability_grows_with_expected_return():
    z, r, dates = _known_ic_case(0.08, n_days=100, n_symbols=100, drift=0.0002, seed=8)
    for sign in (1.0, -1.0):  # a negative skill gives a negative slope, still coherent
        cal = ReturnCalibration.fit(sign * z, r, dates, horizon_days=1)
        grid = np.concatenate([np.linspace(-50, 50, 20001), [-cal.intercept / cal.slope]])
        er, p = cal.predict(grid)
        assert ((p > 0.5) == (er > 0)).all() and ((p < 0.5) == (er < 0)).all()
        order = np.argsort(er, kind="stable")
        assert (np.diff(p[order]) >= 0).all()
        assert (p >= PROBABILITY_EPSILON).all() and (p <= 1 - PROBABILITY_EPSILON).all()


def test_no_measurable_skill_gives_no_spread():
    rng = np.random.default_rng(1)
    n_days, n = 40, 50
    z = rng.normal(size=n_days * n)
    r = 0.002 + rng.normal(0, 0.02, n_days * n)
    dates = np.repeat(np.array(_days(n_days), dtype=object), n)
    cal = ReturnCalibration.fit(z, r, dates, horizon_days=5)
    assert abs(cal.ic_t) < 1 and cal.shrinkage == 0.0 and cal.slope == 0.0
    er, p = cal.predict(z[:10])
    assert np.allclose(er, cal.drift) and len(set(p.round(12))) == 1


def test_direction_shares_of_the_validation_rows():
    z, r, dates = _known_ic_case(0.3, n_days=50, n_symbols=200, drift=0.0, seed=2)
    cal = ReturnCalibration.fit(z, r, dates, horizon_days=1)
    _, p = cal.predict(z)
    shares = cal.direction_shares(buy=0.55, sell=0.45)
    assert shares["BUY"] == pytest.approx(float((p >= 0.55).mean()), abs=0.02)
    assert shares["SELL"] == pytest.approx(float((p <= 0.45).mean()), abs=0.02)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_errors_name_what_is_wrong():
    with pytest.raises(ValueError, match="skill needs at least 2"):
        ReturnCalibration.fit([1.0, 2.0, 3.0], [0.1, 0.2, 0.0], [D0] * 3, horizon_days=1)
    with pytest.raises(ValueError, match="3 scores, 2 returns"):
        ReturnCalibration.fit([1.0, 2.0, 3.0], [0.1, 0.2], [D0] * 3, horizon_days=1)
    with pytest.raises(ValueError, match="horizon_days must be >= 1"):
        ReturnCalibration.fit([1.0], [0.1], [D0], horizon_days=0)
    z, r, dates = _known_ic_case(0.1, 10, 20, 0.0, 1)
    cal = ReturnCalibration.fit(z, r, dates, horizon_days=1)
    with pytest.raises(ValueError, match=r"1 non-finite value\(s\)"):
        cal.predict(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="missing key 'drift'"):
        ReturnCalibration.from_dict({k: v for k, v in cal.as_dict().items() if k != "drift"})


def test_the_retired_serving_format_is_refused_with_a_hint():
    header = json.dumps({"format": "vfr-serving-model/1", "horizon": "1w", "candidate": "lightgbm"}).encode()
    with pytest.raises(ValueError, match="retired format 'vfr-serving-model/1'.*retrain"):
        ServingModel.from_bytes(struct.pack(">I", len(header)) + header + b"model")


def _pipeline_case(ic: float = 0.1, n_days: int = 260, n_symbols: int = 80, seed: int = 4):
    """Features f0..f3; forward return = drift + day shock + spread x (ic-sized signal on f0
    and f1 + noise); 1d labels known the next day."""
    rng = np.random.default_rng(seed)
    n = n_days * n_symbols
    X = rng.normal(size=(n, 4))
    signal = (X[:, 0] + 0.5 * X[:, 1]) / math.sqrt(1.25)
    days = np.repeat(np.array(_days(n_days), dtype=object), n_symbols)
    shock = np.repeat(rng.normal(0, 0.01, n_days), n_symbols)
    r = 0.0005 + shock + 0.02 * (ic * signal + math.sqrt(1 - ic**2) * rng.normal(size=n))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    frame.insert(0, "trade_date", days)
    frame.insert(0, "symbol", np.tile([f"S{i:03d}" for i in range(n_symbols)], n_days))
    frame["forward_return"] = r
    frame["known_date"] = frame["trade_date"] + timedelta(days=1)
    return prepare(frame)


def test_every_candidate_type_gives_coherent_skill_sized_fields():
    frame = _pipeline_case()
    days = sorted(frame["trade_date"].unique())
    train = frame[frame["trade_date"] < days[160]]
    val = frame[(frame["trade_date"] >= days[162]) & (frame["trade_date"] < days[222])]
    test = frame[frame["trade_date"] >= days[224]]
    config = HorizonTrainingConfig(horizon="1d", tuning_trials=0)
    fast = {a: {"num_boost_round": 60, "early_stopping_rounds": 20} for a in ("lightgbm", "xgboost")}
    models = _fit_fold(train, val, [f"f{i}" for i in range(4)], config, fast)
    assert set(models) == {"lightgbm", "xgboost", "linear", "ensemble-rankic", "ensemble-stacking"}
    realized_spread = float(test.groupby("trade_date")["forward_return"].std(ddof=0).mean())
    for name, model in models.items():
        out = model.predict_frame(test)
        er, p = out["expected_return"].to_numpy(), out["probability"].to_numpy()
        assert ((p > 0.5) == (er > 0)).all() and ((p < 0.5) == (er < 0)).all(), name
        # the model's own test IC sets the size its spread should have
        joined = test.assign(score=out["score"].to_numpy(), er=er)
        test_ic = float(joined.groupby("trade_date")[["score", "forward_return"]].apply(lambda d: d["score"].corr(d["forward_return"])).mean())
        predicted_spread = float(joined.groupby("trade_date")["er"].std(ddof=0).mean())
        assert 0.05 < test_ic < 0.15, (name, test_ic)
        assert predicted_spread == pytest.approx(test_ic * realized_spread, rel=0.5), name
        # far narrower than the realized spread (the unit-scale score is not read as a z-score)
        assert predicted_spread < 0.2 * realized_spread, name
