"""Technical features (technical-v2): TA-Lib equality per symbol on adjusted bars, no bleed
across symbols, no look-ahead, splits and dividends adjusted away, hand-checked values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from vfr_ml_pipelines.lib.features import technical
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, TECHNICAL_FEATURES, compute_technical_features

SPLIT_SYMBOL, SPLIT_DAY = "SPLT", 150  # 2-for-1 split effective on row 150 of SPLT
DIV_SYMBOL, EX_DAY, DIVIDEND = "DIVI", 120, 1.5  # cash dividend going ex on row 120 of DIVI
RTOL, ATOL = 1e-9, 1e-12


def _economic_bars(rng: np.random.Generator, n: int, start_price: float) -> dict[str, np.ndarray]:
    """A continuous (already adjusted) random-walk OHLCV series."""
    close = start_price * np.exp(np.cumsum(rng.normal(0.0003, 0.02, n)))
    prev = np.concatenate(([start_price], close[:-1]))
    open_ = prev * np.exp(rng.normal(0, 0.006, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.008, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.008, n)))
    volume = 2.0 * np.round(np.exp(rng.normal(12, 0.6, n)) * (1 + 15 * np.abs(np.log(close / prev))))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def _frame(symbol: str, days: pd.DatetimeIndex, bars: dict[str, np.ndarray], adj_close: np.ndarray,
           split_ratio: np.ndarray | None = None, dividend: np.ndarray | None = None) -> pd.DataFrame:
    n = len(days)
    return pd.DataFrame({
        "symbol": symbol, "trade_date": days.date, **bars, "adj_close": adj_close,
        "dividend": np.zeros(n) if dividend is None else dividend,
        "split_ratio": np.ones(n) if split_ratio is None else split_ratio,
    })


def _market() -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Raw bars as a provider delivers them, and per symbol the adjusted bars the indicators
    must see (the reference input)."""
    rng = np.random.default_rng(20240628)
    all_days = pd.bdate_range("2022-01-03", periods=320)
    frames, adjusted = [], {}

    # two plain symbols (one listed later), raw == adjusted
    for symbol, first, price in (("AAAA", 0, 40.0), ("BBBB", 90, 12.0)):
        days = all_days[first:]
        bars = _economic_bars(rng, len(days), price)
        frames.append(_frame(symbol, days, bars, bars["close"].copy()))
        adjusted[symbol] = bars

    # a 2-for-1 split: before the split day the traded prices are twice the adjusted ones and
    # the traded share volume half the adjusted one
    bars = _economic_bars(rng, len(all_days), 150.0)
    raw = {k: v.copy() for k, v in bars.items()}
    for col in ("open", "high", "low", "close"):
        raw[col][:SPLIT_DAY] *= 2.0
    raw["volume"][:SPLIT_DAY] /= 2.0
    split = np.ones(len(all_days))
    split[SPLIT_DAY] = 2.0
    frames.append(_frame(SPLIT_SYMBOL, all_days, raw, bars["close"].copy(), split_ratio=split))
    adjusted[SPLIT_SYMBOL] = bars

    # a cash dividend: the traded close drops by the dividend on the ex day; adj_close scales
    # the days before by (1 - dividend / close before the ex day), volume is not adjusted
    raw = _economic_bars(rng, len(all_days), 60.0)
    factor = np.ones(len(all_days))
    factor[:EX_DAY] = 1.0 - DIVIDEND / raw["close"][EX_DAY - 1]
    dividend = np.zeros(len(all_days))
    dividend[EX_DAY] = DIVIDEND
    frames.append(_frame(DIV_SYMBOL, all_days, raw, raw["close"] * factor, dividend=dividend))
    adjusted[DIV_SYMBOL] = {**{c: raw[c] * factor for c in ("open", "high", "low", "close")}, "volume": raw["volume"]}

    # a young listing, shorter than the longest window: 60-day features stay NaN throughout
    days = all_days[-45:]
    bars = _economic_bars(rng, len(days), 8.0)
    frames.append(_frame("NEWL", days, bars, bars["close"].copy()))
    adjusted["NEWL"] = bars
    return pd.concat(frames, ignore_index=True), adjusted


@pytest.fixture(scope="module")
def market():
    return _market()


@pytest.fixture(scope="module")
def features(market) -> pd.DataFrame:
    prices, _ = market
    return compute_technical_features(prices.sample(frac=1.0, random_state=3))  # row order must not matter


def _sliding(x: np.ndarray, w: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, w)


def _reference(b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every feature straight from TA-Lib (or numpy for the non-TA-Lib ones) on one symbol's
    adjusted bars."""
    o, h, l, c, v = (b[k].astype("float64") for k in ("open", "high", "low", "close", "volume"))
    n = len(c)
    ref: dict[str, np.ndarray] = {}
    for w in (5, 10, 20, 60):
        ref[f"sma_ratio_{w}"] = c / talib.SMA(c, timeperiod=w) - 1
        ref[f"ema_ratio_{w}"] = c / talib.EMA(c, timeperiod=w) - 1
    ref["sma_cross_5_20"] = talib.SMA(c, 5) / talib.SMA(c, 20) - 1
    ref["sma_cross_20_60"] = talib.SMA(c, 20) / talib.SMA(c, 60) - 1
    macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    ref["macd_pct"], ref["macd_signal_pct"], ref["macd_hist_pct"] = macd / c, signal / c, hist / c
    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    ref["bb_upper_ratio_20"] = upper / c - 1
    ref["bb_middle_ratio_20"] = middle / c - 1
    ref["bb_lower_ratio_20"] = lower / c - 1
    ref["bb_width_20"] = (upper - lower) / middle
    ref["bb_pctb_20"] = (c - lower) / (upper - lower)
    ref["rsi_14"] = talib.RSI(c, timeperiod=14)
    ref["stoch_k_14"], ref["stoch_d_14"] = talib.STOCH(h, l, c, fastk_period=14, slowk_period=3, slowd_period=3)
    ref["willr_14"] = talib.WILLR(h, l, c, timeperiod=14)
    for w in (1, 5, 20):
        ref[f"roc_{w}"] = talib.ROC(c, timeperiod=w)
    for w in (1, 5, 20, 60):
        mom = np.full(n, np.nan)
        mom[w:] = np.log(c[w:] / c[:-w])
        ref[f"mom_{w}"] = mom
    log_ret = np.concatenate(([np.nan], np.diff(np.log(c))))
    for w in (5, 20, 60):
        ref[f"volatility_{w}"] = talib.STDDEV(log_ret, timeperiod=w, nbdev=1)
    ref["atr_14_pct"] = talib.ATR(h, l, c, timeperiod=14) / c
    typical = (h + l + c) / 3
    ref["vwap_ratio_20"] = talib.SUM(typical * v, 20) / talib.SUM(v, 20) / c - 1
    ref["close_zscore_20"] = (c - talib.SMA(c, 20)) / talib.STDDEV(c, 20, 1)
    ref["volume_zscore_20"] = (v - talib.SMA(v, 20)) / talib.STDDEV(v, 20, 1)
    obv = talib.OBV(c, v)
    ref["obv_zscore_20"] = (obv - talib.SMA(obv, 20)) / talib.STDDEV(obv, 20, 1)
    ref["obv_slope_20"] = talib.LINEARREG_SLOPE(obv, 20) / talib.SMA(v, 20)
    ref["kmid"] = (c - o) / o
    ref["klen"] = (h - l) / o
    ref["kup"] = (h - np.maximum(o, c)) / o
    ref["klow"] = (np.minimum(o, c) - l) / o
    ref["ksft"] = (2 * c - h - l) / o
    for w in (20, 60):
        ref[f"rsv_{w}"] = (c - talib.MIN(l, w)) / (talib.MAX(h, w) - talib.MIN(l, w))
    ref["linreg_slope_20"] = talib.LINEARREG_SLOPE(c, 20) / c
    ref["linreg_rsq_20"] = talib.CORREL(np.arange(n, dtype="float64"), c, 20) ** 2
    ref["pv_corr_20"] = talib.CORREL(c, np.log1p(v), 20)
    return ref


def _symbol_rows(features: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return features[features["symbol"] == symbol].reset_index(drop=True)


def test_feature_set_declares_at_least_30_described_features():
    assert technical.FEATURE_SET_VERSION == "technical-v2"
    assert len(FEATURE_NAMES) >= 30
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_NAMES == tuple(spec.name for spec in TECHNICAL_FEATURES)
    for spec in TECHNICAL_FEATURES:
        assert spec.feature_type == "technical" and spec.source == "prices"
        assert len(spec.description) > 15, spec.name
    # the names the first version had keep their meaning (other tests and stored rows use them)
    assert {"rsi_14", "roc_5", "roc_20", "sma_ratio_20", "atr_14_pct", "macd_hist_pct",
            "volatility_20", "volatility_60", "volume_zscore_20"} <= set(FEATURE_NAMES)


def test_output_shape_order_and_types(market, features):
    prices, _ = market
    assert list(features.columns) == ["symbol", "trade_date", *FEATURE_NAMES]
    assert len(features) == len(prices)
    expected = prices.sort_values(["symbol", "trade_date"])[["symbol", "trade_date"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(features[["symbol", "trade_date"]], expected)
    assert (features[list(FEATURE_NAMES)].dtypes == "float64").all()
    assert not np.isinf(features[list(FEATURE_NAMES)].to_numpy()).any()


def test_every_feature_equals_talib_on_the_adjusted_series_of_each_symbol(market, features):
    _, adjusted = market
    assert set(_reference(adjusted["AAAA"])) == set(FEATURE_NAMES)  # the reference covers every feature
    for symbol, bars in adjusted.items():
        got = _symbol_rows(features, symbol)
        assert len(got) == len(bars["close"])
        for name, want in _reference(bars).items():
            np.testing.assert_allclose(got[name].to_numpy(), want, rtol=RTOL, atol=ATOL, equal_nan=True,
                                       err_msg=f"{symbol} {name}")


def test_slope_and_r_squared_agree_with_a_plain_least_squares_fit(market, features):
    bars = market[1]["AAAA"]
    got = _symbol_rows(features, "AAAA")
    windows = _sliding(bars["close"], 20)
    x = np.arange(20.0) - 9.5
    y = windows - windows.mean(axis=1, keepdims=True)
    slope = (y @ x) / (x @ x)
    r2 = (y @ x) ** 2 / ((x @ x) * (y * y).sum(axis=1))
    np.testing.assert_allclose(got["linreg_slope_20"].to_numpy()[19:], slope / bars["close"][19:], rtol=1e-7)
    np.testing.assert_allclose(got["linreg_rsq_20"].to_numpy()[19:], r2, rtol=1e-6, atol=1e-9)


def test_warm_up_stays_nan_and_is_never_borrowed_from_another_symbol(market, features):
    _, adjusted = market
    late = _symbol_rows(features, "BBBB")  # listed later; the symbol before it has full history
    assert late["rsi_14"].iloc[:14].isna().all() and late["rsi_14"].iloc[14:].notna().all()
    assert late["sma_ratio_60"].iloc[:59].isna().all() and late["sma_ratio_60"].iloc[59:].notna().all()
    assert late["macd_hist_pct"].iloc[:33].isna().all() and late["macd_hist_pct"].iloc[33:].notna().all()
    assert late["mom_60"].iloc[:60].isna().all() and late["mom_60"].iloc[60:].notna().all()
    young = _symbol_rows(features, "NEWL")
    assert len(young) == len(adjusted["NEWL"]["close"])
    for name in ("sma_ratio_60", "ema_ratio_60", "volatility_60", "rsv_60", "sma_cross_20_60", "mom_60"):
        assert young[name].isna().all(), name
    assert young["kmid"].notna().all()  # bar shape needs no history
    # after the warm-up every feature has a value
    full = _symbol_rows(features, "AAAA")
    assert full[list(FEATURE_NAMES)].iloc[61:].notna().all().all()


def test_no_bleed_across_symbols_concatenated_and_shuffled_equals_each_symbol_alone(market, features):
    prices, _ = market
    for symbol, bars in prices.groupby("symbol"):
        alone = compute_technical_features(bars)
        np.testing.assert_array_equal(_symbol_rows(features, symbol)[list(FEATURE_NAMES)].to_numpy(),
                                      alone[list(FEATURE_NAMES)].to_numpy(), err_msg=symbol)


def test_threads_do_not_change_the_result(market, features):
    prices, _ = market
    for threads in (1, 3):
        again = compute_technical_features(prices, threads=threads)
        pd.testing.assert_frame_equal(again, features, check_exact=True)


def test_hand_computed_bar_shape_range_position_and_momentum(market, features):
    prices, _ = market
    bars = prices[prices["symbol"] == "AAAA"].reset_index(drop=True)
    got = _symbol_rows(features, "AAAA")
    t = 100
    o, h, l, c = (bars.loc[t, k] for k in ("open", "high", "low", "close"))
    assert got.loc[t, "kmid"] == pytest.approx((c - o) / o, rel=1e-12)
    assert got.loc[t, "klen"] == pytest.approx((h - l) / o, rel=1e-12)
    assert got.loc[t, "kup"] == pytest.approx((h - max(o, c)) / o, rel=1e-12)
    assert got.loc[t, "klow"] == pytest.approx((min(o, c) - l) / o, rel=1e-12)
    assert got.loc[t, "ksft"] == pytest.approx((2 * c - h - l) / o, rel=1e-12)
    lo20, hi20 = bars.loc[t - 19:t, "low"].min(), bars.loc[t - 19:t, "high"].max()
    assert got.loc[t, "rsv_20"] == pytest.approx((c - lo20) / (hi20 - lo20), rel=1e-12)
    assert 0.0 <= got["rsv_60"].min() and got["rsv_60"].max() <= 1.0
    assert got.loc[t, "mom_5"] == pytest.approx(np.log(c / bars.loc[t - 5, "close"]), rel=1e-12)
    assert got.loc[t, "mom_60"] == pytest.approx(np.log(c / bars.loc[t - 60, "close"]), rel=1e-12)
    assert got.loc[t, "roc_1"] == pytest.approx((c / bars.loc[t - 1, "close"] - 1) * 100, rel=1e-12)

    # across the split the 20-day range is taken on adjusted prices (raw * adj_close / close)
    split = prices[prices["symbol"] == SPLIT_SYMBOL].reset_index(drop=True)
    got = _symbol_rows(features, SPLIT_SYMBOL)
    t = SPLIT_DAY + 5
    f = split["adj_close"] / split["close"]
    lo20, hi20 = (split["low"] * f).loc[t - 19:t].min(), (split["high"] * f).loc[t - 19:t].max()
    assert got.loc[t, "rsv_20"] == pytest.approx((split.loc[t, "adj_close"] - lo20) / (hi20 - lo20), rel=1e-12)


def test_a_split_does_not_create_an_indicator_jump(market, features):
    prices, adjusted = market
    bars = prices[prices["symbol"] == SPLIT_SYMBOL].reset_index(drop=True)
    got = _symbol_rows(features, SPLIT_SYMBOL)
    s = SPLIT_DAY
    raw_return = bars.loc[s, "close"] / bars.loc[s - 1, "close"] - 1
    adjusted_return = bars.loc[s, "adj_close"] / bars.loc[s - 1, "adj_close"] - 1
    assert raw_return < -0.4  # the traded price halves ...
    assert got.loc[s, "roc_1"] == pytest.approx(adjusted_return * 100, rel=1e-12)  # ... the feature does not
    assert abs(got.loc[s, "roc_1"]) < 15
    # the same economic series without any split gives the same features on every day
    econ = adjusted[SPLIT_SYMBOL]
    plain = bars.assign(**{k: econ[k] for k in ("open", "high", "low", "close", "volume")},
                        adj_close=econ["close"], split_ratio=1.0)
    np.testing.assert_allclose(got[list(FEATURE_NAMES)].to_numpy(),
                               compute_technical_features(plain)[list(FEATURE_NAMES)].to_numpy(),
                               rtol=RTOL, atol=ATOL, equal_nan=True)


def test_rounding_noise_in_adj_close_is_not_a_price_move(market):
    # adj_close recomputed through exp/log (market_data/adjust.py) is a few ulps off the
    # close on days without any event; the features then equal those of the raw bars exactly
    prices, _ = market
    bars = prices[prices["symbol"] == "AAAA"].reset_index(drop=True)
    noisy = bars.assign(adj_close=bars["close"] * np.exp(np.log(1.0 + 1e-12) - np.log(1.0 + 1e-12 + 3e-16)))
    assert (noisy["adj_close"] != noisy["close"]).any()
    clean = compute_technical_features(bars.assign(adj_close=bars["close"]))
    np.testing.assert_array_equal(compute_technical_features(noisy)[list(FEATURE_NAMES)].to_numpy(),
                                  clean[list(FEATURE_NAMES)].to_numpy())
    flat = bars.copy()
    flat.loc[50:, ["open", "high", "low", "close"]] = 20.0
    flat["adj_close"] = flat["close"] * (1 - 1e-16 * (np.arange(len(flat)) % 3))
    assert (compute_technical_features(flat)["roc_5"].iloc[60:] == 0.0).all()


def test_without_split_ratio_and_dividend_columns_adj_close_alone_adjusts(market, features):
    prices, _ = market
    older = prices.drop(columns=["split_ratio", "dividend"])
    got = compute_technical_features(older)
    # price features are identical; for a pure split, volume / (adj_close / close) is the split
    # adjusted volume, so the split symbol is identical in every feature
    price_only = [n for n in FEATURE_NAMES if n not in {"volume_zscore_20", "obv_zscore_20", "obv_slope_20", "vwap_ratio_20", "pv_corr_20"}]
    np.testing.assert_allclose(got[price_only].to_numpy(), features[price_only].to_numpy(), rtol=RTOL, atol=ATOL, equal_nan=True)
    np.testing.assert_allclose(_symbol_rows(got, SPLIT_SYMBOL)[list(FEATURE_NAMES)].to_numpy(),
                               _symbol_rows(features, SPLIT_SYMBOL)[list(FEATURE_NAMES)].to_numpy(),
                               rtol=RTOL, atol=ATOL, equal_nan=True)


def test_no_look_ahead_changing_prices_after_a_day_never_changes_that_day_or_before(market, features):
    prices, _ = market
    dates = np.sort(prices["trade_date"].unique())
    rng = np.random.default_rng(5)
    for cutoff in (dates[SPLIT_DAY - 3], dates[200]):
        shocked = prices.copy()
        future = (shocked["trade_date"] > cutoff).to_numpy()
        for col in ("open", "high", "low", "close", "adj_close"):
            shocked.loc[future, col] *= rng.uniform(0.6, 1.6, future.sum())
        shocked.loc[future, "volume"] *= rng.uniform(0.2, 5.0, future.sum())
        after = compute_technical_features(shocked)
        past = (features["trade_date"] <= cutoff).to_numpy()
        np.testing.assert_array_equal(after.loc[past, list(FEATURE_NAMES)].to_numpy(),
                                      features.loc[past, list(FEATURE_NAMES)].to_numpy())
        assert not np.array_equal(after.loc[~past, "rsi_14"].to_numpy(), features.loc[~past, "rsi_14"].to_numpy())


def test_a_later_corporate_action_restating_adj_close_leaves_earlier_features_unchanged(market, features):
    prices, _ = market
    dates = np.sort(prices["trade_date"].unique())
    cutoff = dates[260]
    restated = prices.copy()
    # a dividend going ex after the cutoff scales every earlier adj_close of AAAA by 0.97;
    # features are scale free, so earlier values move by rounding only
    earlier = ((restated["symbol"] == "AAAA") & (restated["trade_date"] <= cutoff)).to_numpy()
    restated.loc[earlier, "adj_close"] *= 0.97
    after = compute_technical_features(restated)
    past = (features["trade_date"] <= cutoff).to_numpy()
    np.testing.assert_allclose(after.loc[past, list(FEATURE_NAMES)].to_numpy(),
                               features.loc[past, list(FEATURE_NAMES)].to_numpy(), rtol=1e-7, atol=1e-9, equal_nan=True)


def test_infinities_become_nan():
    # high == low == open on every day while the close moves: the 20-day high-low range is 0,
    # so RSV is a non-zero number over zero (+inf) on half the days and 0 / 0 on the others;
    # constant volume gives a zero standard deviation
    days = pd.bdate_range("2024-01-01", periods=40)
    close = 10.0 + 1e-3 * (np.arange(40) % 2)
    flat = pd.DataFrame({"symbol": "FLAT", "trade_date": days.date, "open": 10.0, "high": 10.0, "low": 10.0,
                         "close": close, "adj_close": close, "volume": 1000.0})
    frame = compute_technical_features(flat)
    assert not np.isinf(frame[list(FEATURE_NAMES)].to_numpy()).any()
    for name in ("rsv_20", "rsv_60", "volume_zscore_20"):
        assert frame[name].iloc[19:].isna().all(), name
    assert frame["kmid"].notna().all() and frame["rsi_14"].iloc[14:].notna().all()


def test_bad_input_is_rejected_and_empty_input_gives_an_empty_frame(market):
    prices, _ = market
    with pytest.raises(ValueError, match="lack columns"):
        compute_technical_features(prices.drop(columns=["open"]))
    with pytest.raises(ValueError, match="duplicate"):
        compute_technical_features(pd.concat([prices, prices.iloc[:1]]))
    empty = compute_technical_features(prices.iloc[:0])
    assert empty.empty and list(empty.columns) == ["symbol", "trade_date", *FEATURE_NAMES]
