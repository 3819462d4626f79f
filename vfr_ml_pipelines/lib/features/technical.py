"""Technical features with TA-Lib's definitions, computed per symbol (no bleed across
symbols: each series is handed to TA-Lib on its own)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import talib

FEATURE_SET_VERSION = "technical-v1"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str


TECHNICAL_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("rsi_14", "TA-Lib RSI, 14 days"),
    FeatureSpec("roc_5", "TA-Lib ROC, 5 days (percent)"),
    FeatureSpec("roc_20", "TA-Lib ROC, 20 days (percent)"),
    FeatureSpec("sma_ratio_20", "close / TA-Lib SMA(20) - 1"),
    FeatureSpec("atr_14_pct", "TA-Lib ATR(14) / close"),
    FeatureSpec("macd_hist_pct", "TA-Lib MACD histogram (12, 26, 9) / close"),
    FeatureSpec("volatility_20", "TA-Lib STDDEV of daily log returns, 20 days"),
    FeatureSpec("volatility_60", "TA-Lib STDDEV of daily log returns, 60 days"),
    FeatureSpec("volume_zscore_20", "(volume - SMA(volume, 20)) / STDDEV(volume, 20)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in TECHNICAL_FEATURES)


def _one_symbol(bars: pd.DataFrame) -> pd.DataFrame:
    close = bars["close"].to_numpy(dtype="float64")
    high = bars["high"].to_numpy(dtype="float64")
    low = bars["low"].to_numpy(dtype="float64")
    volume = bars["volume"].to_numpy(dtype="float64")
    log_ret = np.concatenate([[np.nan], np.diff(np.log(close))])
    _, _, macd_hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "rsi_14": talib.RSI(close, timeperiod=14),
            "roc_5": talib.ROC(close, timeperiod=5),
            "roc_20": talib.ROC(close, timeperiod=20),
            "sma_ratio_20": close / talib.SMA(close, timeperiod=20) - 1.0,
            "atr_14_pct": talib.ATR(high, low, close, timeperiod=14) / close,
            "macd_hist_pct": macd_hist / close,
            "volatility_20": talib.STDDEV(log_ret, timeperiod=20, nbdev=1),
            "volatility_60": talib.STDDEV(log_ret, timeperiod=60, nbdev=1),
            "volume_zscore_20": (volume - talib.SMA(volume, timeperiod=20)) / talib.STDDEV(volume, timeperiod=20, nbdev=1),
        }
    frame = pd.DataFrame(out, index=bars.index)
    return frame.replace([np.inf, -np.inf], np.nan)


def compute_technical_features(prices: pd.DataFrame) -> pd.DataFrame:
    """Wide frame (symbol, trade_date, one column per feature) from OHLCV bars."""
    required = {"symbol", "trade_date", "high", "low", "close", "volume"}
    missing = required - set(prices.columns)
    if missing:
        raise ValueError(f"prices lack columns {sorted(missing)}")
    ordered = prices.sort_values(["symbol", "trade_date"], kind="stable")
    parts = [
        pd.concat([bars[["symbol", "trade_date"]], _one_symbol(bars)], axis=1)
        for _, bars in ordered.groupby("symbol", sort=True)
    ]
    if not parts:
        return pd.DataFrame(columns=["symbol", "trade_date", *FEATURE_NAMES])
    return pd.concat(parts, ignore_index=True)


def to_long(wide: pd.DataFrame, feature_set: str = FEATURE_SET_VERSION) -> pd.DataFrame:
    long = wide.melt(id_vars=["symbol", "trade_date"], var_name="feature_name", value_name="value")
    long.insert(0, "feature_set", feature_set)
    return long[["feature_set", "trade_date", "symbol", "feature_name", "value"]]


def to_wide(long: pd.DataFrame, feature_names: list[str] | tuple[str, ...] = FEATURE_NAMES) -> pd.DataFrame:
    """Back from long rows to one row per (symbol, trade_date); a missing value stays NaN."""
    if long.empty:
        return pd.DataFrame(columns=["symbol", "trade_date", *feature_names])
    wide = long.pivot(index=["symbol", "trade_date"], columns="feature_name", values="value")
    wide = wide.reindex(columns=list(feature_names))
    wide.columns.name = None
    return wide.reset_index()
