"""Long frames -> the aligned (dates x symbols) arrays the engine reads.

`prices` has trade_date, symbol, open, close, adj_close, volume (one row per bar). Adjusted open
= open * adj_close / close, so every return is on the adjusted series. A symbol has a bar on a
session when its close is finite and its volume > 0; without one it cannot be traded that
session, its price is carried forward and its return that session is 0 (the move shows on its
next bar, from the last close it had).

Return arrays, for session t (row t):
* `gap_return`: adjusted close of the previous bar -> adjusted open of t;
* `intraday_return`: adjusted open of t -> adjusted close of t;
* `close_return`: previous close -> close of t (= (1 + gap) * (1 + intraday) - 1).
`delisted` is True after a symbol's last bar in the data (delisted, or the data ends for it):
a position still held then is paid out at its last close (it becomes cash).
`adv` and `daily_vol` on row t only use sessions before t (the order is sized before the
session's volume is known): the mean dollar volume (volume * close) and the std of close
returns over the last `window` bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("trade_date", "symbol", "open", "close", "adj_close", "volume")


@dataclass(frozen=True)
class MarketPanel:
    dates: pd.DatetimeIndex
    symbols: pd.Index
    has_bar: np.ndarray
    gap_return: np.ndarray
    intraday_return: np.ndarray
    close_return: np.ndarray
    adv: np.ndarray
    daily_vol: np.ndarray
    delisted: np.ndarray
    sectors: pd.Series | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.has_bar.shape

    def frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.dates, columns=self.symbols)

    def equal_weight_returns(self) -> pd.Series:
        """The equal-weight universe, before costs: each session the mean close-to-close return
        of the symbols with a bar (the benchmark of excess returns)."""
        counts = self.has_bar.sum(axis=1)
        total = np.where(self.has_bar, self.close_return, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, total / np.maximum(counts, 1), 0.0)
        mean[0] = 0.0
        return pd.Series(mean, index=self.dates, name="equal_weight_universe")


def _require(frame: pd.DataFrame, columns, where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; got {list(frame.columns)}")


def _pivot(frame: pd.DataFrame, column: str, dates: pd.DatetimeIndex, symbols: pd.Index) -> np.ndarray:
    wide = frame.pivot(index="trade_date", columns="symbol", values=column)
    return wide.reindex(index=dates, columns=symbols).to_numpy(dtype=float)


def build_panel(prices: pd.DataFrame, *, sectors: pd.Series | None = None, window: int = 20) -> MarketPanel:
    """The panel of `prices` (see the module docstring); `sectors` maps symbol -> sector."""
    _require(prices, PRICE_COLUMNS, "build_panel")
    if prices.empty:
        raise ValueError("build_panel: no price rows")
    frame = prices.loc[:, list(PRICE_COLUMNS)].copy()
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    duplicated = frame.duplicated(["trade_date", "symbol"])
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise ValueError(f"build_panel: {int(duplicated.sum())} duplicated bar(s), e.g. {row['symbol']} on {row['trade_date'].date()}")
    dates = pd.DatetimeIndex(sorted(frame["trade_date"].unique()), name="trade_date")
    symbols = pd.Index(sorted(frame["symbol"].unique()), name="symbol")
    open_, close, adj_close, volume = (_pivot(frame, c, dates, symbols) for c in ("open", "close", "adj_close", "volume"))
    with np.errstate(invalid="ignore", divide="ignore"):
        has_bar = np.isfinite(close) & np.isfinite(adj_close) & (close > 0) & np.isfinite(volume) & (volume > 0)
        adj_open = np.where(has_bar & np.isfinite(open_) & (open_ > 0), open_ * adj_close / close, adj_close)
        last_close = pd.DataFrame(np.where(has_bar, adj_close, np.nan)).ffill().to_numpy()
        previous = np.vstack([np.full((1, len(symbols)), np.nan), last_close[:-1]])
        gap = np.where(has_bar & np.isfinite(previous), adj_open / previous - 1.0, 0.0)
        intraday = np.where(has_bar, adj_close / adj_open - 1.0, 0.0)
        close_ret = (1.0 + gap) * (1.0 + intraday) - 1.0
    dollar_volume = pd.DataFrame(np.where(has_bar, volume * close, np.nan))
    adv = dollar_volume.rolling(window, min_periods=1).mean().shift(1).to_numpy()
    bar_returns = pd.DataFrame(np.where(has_bar & np.isfinite(previous), close_ret, np.nan))
    daily_vol = bar_returns.rolling(window, min_periods=2).std().shift(1).to_numpy()
    last_bar = len(dates) - 1 - np.argmax(has_bar[::-1], axis=0)
    delisted = np.arange(len(dates))[:, None] > last_bar[None, :]
    delisted[-1] = False  # the last session of the data is no delisting
    if sectors is not None:
        sectors = pd.Series(sectors).reindex(symbols)
    return MarketPanel(dates, symbols, has_bar, gap, intraday, close_ret, adv, daily_vol, delisted, sectors)


def score_matrix(panel: MarketPanel, scores: pd.DataFrame, column: str = "score") -> np.ndarray:
    """`scores` (trade_date, symbol, `column`) as a (dates x symbols) array on the panel's axes;
    NaN where a symbol has no score. Rows on dates or symbols outside the panel are dropped
    (they could not be traded anyway)."""
    _require(scores, ("trade_date", "symbol", column), "score_matrix")
    frame = scores.loc[:, ["trade_date", "symbol", column]].copy()
    frame["trade_date"] = pd.to_datetime(frame["trade_date"])
    duplicated = frame.duplicated(["trade_date", "symbol"])
    if duplicated.any():
        row = frame.loc[duplicated].iloc[0]
        raise ValueError(f"score_matrix: {int(duplicated.sum())} duplicated score(s), e.g. {row['symbol']} on {row['trade_date'].date()}")
    return _pivot(frame, column, panel.dates, panel.symbols)


def out_of_sample_scores(predictions: pd.DataFrame, *, segment: str = "test", column: str = "score") -> pd.DataFrame:
    """(trade_date, symbol, `column`) of a candidate's walk-forward predictions (the training
    pipeline's frame: fold, segment, trade_date, symbol, score, ...): only the `segment` rows
    (test by default: validation rows chose the hyperparameters and the ensemble weights, so
    they flatter the model), and where folds' test windows overlap, the latest fold's score."""
    _require(predictions, ("trade_date", "symbol", column), "out_of_sample_scores")
    rows = predictions
    if "segment" in rows.columns:
        rows = rows[rows["segment"] == segment]
    if "fold" in rows.columns:
        rows = rows.sort_values("fold", kind="stable")
    rows = rows.drop_duplicates(["trade_date", "symbol"], keep="last")
    return rows.loc[:, ["trade_date", "symbol", column]].reset_index(drop=True)
