"""Technical features with TA-Lib's definitions, computed per symbol on split- and
dividend-adjusted bars (no bleed across symbols: each symbol's series is handed to TA-Lib on
its own).

Adjustment
----------
`open..close` in the price frames are the prices as traded; `adj_close` is adjusted for
splits and dividends (schema.py). Every indicator is computed on an adjusted series so that
a 2-for-1 split is not a -50% day:

* price factor  f_t = adj_close_t / close_t, rounded to 12 significant digits: adj_close
  is usually derived through exp/log or long products (market_data/adjust.py) and carries
  ~1e-16 noise, so the rounding makes f exactly constant between corporate actions and
  exactly 1 after the last one (a symbol without events gets its raw bars bit for bit, and
  an unchanged close is a return of exactly 0). It changes prices by < 5e-12 relative.
* adjusted open/high/low/close = raw open/high/low/close * f_t (== adj_close to ~1e-12)
* adjusted volume = raw volume * (product of `split_ratio` over the symbol's later days),
  i.e. volume expressed in the share count of the symbol's last day, the same basis as
  adj_close (splits only: a dividend does not change the share count). When the frame has
  no `split_ratio` column (older callers), adjusted volume = raw volume / f_t, which also
  treats the (small) dividend part of f_t as if it were a split.
  Without an `adj_close` column the raw bars are used as they are.

The adjustment of a day depends on later corporate actions only through one constant
factor per symbol and run, and every feature here is scale free (ratios, returns,
oscillators, z-scores, correlations), so a later split or dividend does not change an
earlier feature beyond floating-point rounding.

Missing values
--------------
Warm-up windows are NaN (never filled, never borrowed from another symbol); infinities
(divisions by zero) become NaN. TA-Lib propagates a NaN inside a series to every later value
of the running-window indicators, so rows with missing prices should be quarantined before
(validation.py does).

Performance
-----------
The frame is sorted once (skipped when it is already sorted), split into contiguous per
symbol slices by numpy, and each slice goes through TA-Lib and numpy; results are written
into one preallocated (features x rows) float64 array that becomes the output frame
without a copy. No per-row Python, no groupby.apply. Large inputs are shared between two
threads by symbol (TA-Lib and numpy release the GIL); results do not depend on it.
benchmarks/bench_technical_features.py: 500 symbols x 2520 days in about 0.6 s.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import talib

from vfr_ml_pipelines.lib.features.spec import FeatureSpec

FEATURE_SET_VERSION = "technical-v2"

_MA_WINDOWS = (5, 10, 20, 60)
_ROC_WINDOWS = (1, 5, 20)
_MOM_WINDOWS = (1, 5, 20, 60)
_VOL_WINDOWS = (5, 20, 60)
_RSV_WINDOWS = (20, 60)

TECHNICAL_FEATURES: tuple[FeatureSpec, ...] = (
    # distance from moving averages (trend), scale free
    *(FeatureSpec(f"sma_ratio_{w}", f"close / talib.SMA(close, timeperiod={w}) - 1") for w in _MA_WINDOWS),
    *(FeatureSpec(f"ema_ratio_{w}", f"close / talib.EMA(close, timeperiod={w}) - 1 (TA-Lib EMA, seeded with the SMA)") for w in _MA_WINDOWS),
    FeatureSpec("sma_cross_5_20", "talib.SMA(close, 5) / talib.SMA(close, 20) - 1 (short over medium moving average)"),
    FeatureSpec("sma_cross_20_60", "talib.SMA(close, 20) / talib.SMA(close, 60) - 1 (medium over long moving average)"),
    # MACD
    FeatureSpec("macd_pct", "talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9) MACD line / close"),
    FeatureSpec("macd_signal_pct", "talib.MACD(close, 12, 26, 9) signal line / close"),
    FeatureSpec("macd_hist_pct", "talib.MACD(close, 12, 26, 9) histogram / close"),
    # Bollinger bands
    FeatureSpec("bb_upper_ratio_20", "talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0) upper band / close - 1"),
    FeatureSpec("bb_middle_ratio_20", "talib.BBANDS(close, 20, 2, 2, 0) middle band (SMA 20) / close - 1"),
    FeatureSpec("bb_lower_ratio_20", "talib.BBANDS(close, 20, 2, 2, 0) lower band / close - 1"),
    FeatureSpec("bb_width_20", "(upper - lower) / middle of talib.BBANDS(close, 20, 2, 2, 0)"),
    FeatureSpec("bb_pctb_20", "%B: (close - lower) / (upper - lower) of talib.BBANDS(close, 20, 2, 2, 0)"),
    # oscillators
    FeatureSpec("rsi_14", "talib.RSI(close, timeperiod=14), 0..100"),
    FeatureSpec("stoch_k_14", "slow %K of talib.STOCH(high, low, close, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3, slowd_matype=0), 0..100"),
    FeatureSpec("stoch_d_14", "slow %D of talib.STOCH(high, low, close, 14, 3, 0, 3, 0), 0..100"),
    FeatureSpec("willr_14", "talib.WILLR(high, low, close, timeperiod=14), -100..0"),
    *(FeatureSpec(f"roc_{w}", f"talib.ROC(close, timeperiod={w}): {w}-day return in percent") for w in _ROC_WINDOWS),
    # momentum and volatility
    *(FeatureSpec(f"mom_{w}", f"{w}-day log return: ln(close_t / close_(t-{w}))") for w in _MOM_WINDOWS),
    *(FeatureSpec(f"volatility_{w}", f"talib.STDDEV(daily log returns, timeperiod={w}, nbdev=1) (population std, not annualised)") for w in _VOL_WINDOWS),
    FeatureSpec("atr_14_pct", "talib.ATR(high, low, close, timeperiod=14) / close"),
    # volume
    FeatureSpec("vwap_ratio_20", "20-day VWAP proxy / close - 1, VWAP = talib.SUM(typical * volume, 20) / talib.SUM(volume, 20), typical = (high + low + close) / 3"),
    FeatureSpec("close_zscore_20", "(close - talib.SMA(close, 20)) / talib.STDDEV(close, 20, nbdev=1)"),
    FeatureSpec("volume_zscore_20", "(volume - talib.SMA(volume, 20)) / talib.STDDEV(volume, 20, nbdev=1), split-adjusted volume"),
    FeatureSpec("obv_zscore_20", "(obv - talib.SMA(obv, 20)) / talib.STDDEV(obv, 20, nbdev=1), obv = talib.OBV(close, volume)"),
    FeatureSpec("obv_slope_20", "talib.LINEARREG_SLOPE(obv, timeperiod=20) / talib.SMA(volume, 20), obv = talib.OBV(close, volume): OBV trend in average days of volume per day"),
    # Qlib Alpha158 bar shape (K-line) features
    FeatureSpec("kmid", "Alpha158 KMID: (close - open) / open"),
    FeatureSpec("klen", "Alpha158 KLEN: (high - low) / open"),
    FeatureSpec("kup", "Alpha158 KUP: (high - max(open, close)) / open"),
    FeatureSpec("klow", "Alpha158 KLOW: (min(open, close) - low) / open"),
    FeatureSpec("ksft", "Alpha158 KSFT: (2 * close - high - low) / open"),
    # Qlib Alpha158 rolling features
    *(FeatureSpec(f"rsv_{w}", f"Alpha158 RSV{w}: (close - talib.MIN(low, {w})) / (talib.MAX(high, {w}) - talib.MIN(low, {w})), position in the {w}-day range, 0..1") for w in _RSV_WINDOWS),
    FeatureSpec("linreg_slope_20", "Alpha158 BETA20: talib.LINEARREG_SLOPE(close, timeperiod=20) / close"),
    FeatureSpec("linreg_rsq_20", "Alpha158 RSQR20: talib.CORREL(day index, close, timeperiod=20) ** 2, r-squared of a linear fit of close on time"),
    FeatureSpec("pv_corr_20", "Alpha158 CORR20: talib.CORREL(close, ln(1 + volume), timeperiod=20)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in TECHNICAL_FEATURES)

_ROW = {name: i for i, name in enumerate(FEATURE_NAMES)}
_REQUIRED = ("symbol", "trade_date", "open", "high", "low", "close", "volume")


def _symbol_features(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray,
                     out: np.ndarray, t_index: np.ndarray) -> None:
    """All features of one symbol's adjusted bars (time ascending) into `out`
    (features x days, a view into the big output array). Runs under np.errstate."""
    r = _ROW
    sma = {w: talib.SMA(c, timeperiod=w) for w in _MA_WINDOWS}
    for w in _MA_WINDOWS:
        out[r[f"sma_ratio_{w}"]] = c / sma[w] - 1.0
        out[r[f"ema_ratio_{w}"]] = c / talib.EMA(c, timeperiod=w) - 1.0
    out[r["sma_cross_5_20"]] = sma[5] / sma[20] - 1.0
    out[r["sma_cross_20_60"]] = sma[20] / sma[60] - 1.0

    macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    out[r["macd_pct"]] = macd / c
    out[r["macd_signal_pct"]] = signal / c
    out[r["macd_hist_pct"]] = hist / c

    upper, middle, lower = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    out[r["bb_upper_ratio_20"]] = upper / c - 1.0
    out[r["bb_middle_ratio_20"]] = middle / c - 1.0
    out[r["bb_lower_ratio_20"]] = lower / c - 1.0
    band = upper - lower
    out[r["bb_width_20"]] = band / middle
    out[r["bb_pctb_20"]] = (c - lower) / band

    out[r["rsi_14"]] = talib.RSI(c, timeperiod=14)
    slowk, slowd = talib.STOCH(h, l, c, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3, slowd_matype=0)
    out[r["stoch_k_14"]] = slowk
    out[r["stoch_d_14"]] = slowd
    out[r["willr_14"]] = talib.WILLR(h, l, c, timeperiod=14)
    for w in _ROC_WINDOWS:
        out[r[f"roc_{w}"]] = talib.ROC(c, timeperiod=w)

    n = len(c)
    log_c = np.log(c)
    for w in _MOM_WINDOWS:
        row = out[r[f"mom_{w}"]]
        row[:w] = np.nan
        np.subtract(log_c[w:], log_c[:-w], out=row[w:])
    log_ret = out[r["mom_1"]]  # NaN on the first day, then ln(c_t / c_t-1)
    for w in _VOL_WINDOWS:
        out[r[f"volatility_{w}"]] = talib.STDDEV(log_ret, timeperiod=w, nbdev=1.0)
    out[r["atr_14_pct"]] = talib.ATR(h, l, c, timeperiod=14) / c

    typical = (h + l + c) / 3.0
    out[r["vwap_ratio_20"]] = talib.SUM(typical * v, timeperiod=20) / talib.SUM(v, timeperiod=20) / c - 1.0
    out[r["close_zscore_20"]] = (c - sma[20]) / talib.STDDEV(c, timeperiod=20, nbdev=1.0)
    vol_sma = talib.SMA(v, timeperiod=20)
    out[r["volume_zscore_20"]] = (v - vol_sma) / talib.STDDEV(v, timeperiod=20, nbdev=1.0)
    obv = talib.OBV(c, v)
    out[r["obv_zscore_20"]] = (obv - talib.SMA(obv, timeperiod=20)) / talib.STDDEV(obv, timeperiod=20, nbdev=1.0)
    out[r["obv_slope_20"]] = talib.LINEARREG_SLOPE(obv, timeperiod=20) / vol_sma

    out[r["kmid"]] = (c - o) / o
    out[r["klen"]] = (h - l) / o
    out[r["kup"]] = (h - np.maximum(o, c)) / o
    out[r["klow"]] = (np.minimum(o, c) - l) / o
    out[r["ksft"]] = (2.0 * c - h - l) / o

    for w in _RSV_WINDOWS:
        lowest = talib.MIN(l, timeperiod=w)
        out[r[f"rsv_{w}"]] = (c - lowest) / (talib.MAX(h, timeperiod=w) - lowest)
    out[r["linreg_slope_20"]] = talib.LINEARREG_SLOPE(c, timeperiod=20) / c
    out[r["linreg_rsq_20"]] = talib.CORREL(t_index[:n], c, timeperiod=20) ** 2
    out[r["pv_corr_20"]] = talib.CORREL(c, np.log1p(v), timeperiod=20)

    out[np.isinf(out)] = np.nan


def _column(prices: pd.DataFrame, name: str, order: np.ndarray | None) -> np.ndarray:
    """A numeric column as a 1-D numpy array in (symbol, trade_date) order: a view of the
    frame's own data when it is float64/int64 and already sorted (never written to)."""
    series = prices[name]
    if series.dtype.kind in "fiu" and isinstance(series.dtype, np.dtype):
        values = series.to_numpy()
    else:  # nullable or object columns: NA becomes NaN
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    return values if order is None else values.take(order)


def _sort_order(prices: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """Row order by (symbol, trade_date) (None when the frame is already in that order) and
    the sorted symbol codes."""
    sym_codes, _ = pd.factorize(prices["symbol"], sort=True)
    date_codes, date_uniques = pd.factorize(prices["trade_date"], sort=True)
    if (sym_codes < 0).any() or (date_codes < 0).any():
        raise ValueError("prices have rows without symbol or trade_date")
    key = sym_codes.astype(np.int64) * len(date_uniques) + date_codes
    step = np.diff(key)
    order = None
    if (step <= 0).any():
        order = np.argsort(key, kind="stable")
        key = key[order]
        sym_codes = sym_codes[order]
        step = np.diff(key)
    if (step == 0).any():
        raise ValueError("prices have duplicate (symbol, trade_date) rows")
    return order, sym_codes


def _snap(factor: np.ndarray) -> np.ndarray:
    """Round adjustment factors to 12 significant digits (NaN and inf stay as they are)."""
    scale = 10.0 ** (11.0 - np.floor(np.log10(np.abs(factor))))
    snapped = np.round(factor * scale) / scale
    return np.where(np.isfinite(snapped), snapped, factor)


class _Bars:
    """Raw columns in (symbol, trade_date) order; `adjusted(a, b)` gives one symbol's
    adjusted float64 bars (small per-symbol arrays, so the big raw columns are never copied
    when the input is already sorted)."""

    def __init__(self, prices: pd.DataFrame, order: np.ndarray | None, starts: np.ndarray) -> None:
        self.open, self.high, self.low, self.close, self.volume = (
            _column(prices, name, order) for name in ("open", "high", "low", "close", "volume"))
        self.adj_close = _column(prices, "adj_close", order) if "adj_close" in prices.columns else None
        self.split = None
        self.split_starts: frozenset[int] = frozenset()
        if "split_ratio" in prices.columns:
            self.split = _column(prices, "split_ratio", order)
            events = np.flatnonzero((self.split != 1.0) & np.isfinite(self.split) & (self.split > 0.0))
            self.split_starts = frozenset(starts[np.searchsorted(starts, events, side="right") - 1].tolist())

    def adjusted(self, a: int, b: int) -> tuple[np.ndarray, ...]:
        volume = self.volume[a:b].astype(np.float64)  # a copy, adjusted in place below
        if self.adj_close is None:
            return (*(np.asarray(x[a:b], dtype=np.float64) for x in (self.open, self.high, self.low, self.close)), volume)
        factor = _snap(self.adj_close[a:b] / self.close[a:b])
        open_, high, low, close = (x[a:b] * factor for x in (self.open, self.high, self.low, self.close))
        if self.split is None:
            volume /= factor  # no split_ratio column: the whole adj_close factor
        elif a in self.split_starts:
            split = np.asarray(self.split[a:b], dtype=np.float64)
            split = np.where(np.isfinite(split) & (split > 0.0), split, 1.0)
            later = np.cumprod(split[::-1])[::-1]  # product of split ratios over days >= t
            volume[:-1] *= later[1:]  # ... over days > t: shares of the last day
        return open_, high, low, close, volume


_MIN_ROWS_PER_THREAD = 50_000


def _workers(threads: int | None, rows: int) -> int:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        return threads
    return max(1, min(2, os.cpu_count() or 1, rows // _MIN_ROWS_PER_THREAD))


def compute_technical_features(prices: pd.DataFrame, *, threads: int | None = None) -> pd.DataFrame:
    """Wide frame (symbol, trade_date, one float64 column per feature in FEATURE_NAMES),
    sorted by (symbol, trade_date), from daily bars with PRICE_COLUMNS (`adj_close`,
    `split_ratio` and `dividend` optional, see the module docstring). `threads`: worker
    threads over symbols (default: up to 2 on large inputs; 1 computes in the caller's
    thread); the result does not depend on it."""
    missing = set(_REQUIRED) - set(prices.columns)
    if missing:
        raise ValueError(f"prices lack columns {sorted(missing)}")
    n = len(prices)
    if n == 0:
        return pd.DataFrame({"symbol": pd.Series(dtype=object), "trade_date": pd.Series(dtype=object),
                             **{name: pd.Series(dtype="float64") for name in FEATURE_NAMES}})

    order, sym_codes = _sort_order(prices)
    starts = np.flatnonzero(np.concatenate(([True], sym_codes[1:] != sym_codes[:-1])))
    ends = np.append(starts[1:], n)
    bars = _Bars(prices, order, starts)
    out = np.empty((len(FEATURE_NAMES), n), dtype=np.float64)  # every cell is written below
    t_index = np.arange(int((ends - starts).max()), dtype=np.float64)

    def run(bounds: tuple[np.ndarray, np.ndarray]) -> None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # thread local
            for a, b in zip(bounds[0].tolist(), bounds[1].tolist()):
                _symbol_features(*bars.adjusted(a, b), out[:, a:b], t_index)

    workers = _workers(threads, n)
    if workers == 1:
        run((starts, ends))
    else:
        # TA-Lib and numpy release the GIL; symbols are independent and write disjoint columns
        chunks = np.array_split(np.arange(len(starts)), workers * 8)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, [(starts[c], ends[c]) for c in chunks if len(c)]))

    frame = pd.DataFrame(out.T, columns=list(FEATURE_NAMES), copy=False)
    symbols = prices["symbol"] if order is None else prices["symbol"].take(order)
    dates = prices["trade_date"] if order is None else prices["trade_date"].take(order)
    frame.insert(0, "trade_date", dates.to_numpy())
    frame.insert(0, "symbol", symbols.to_numpy())
    return frame
