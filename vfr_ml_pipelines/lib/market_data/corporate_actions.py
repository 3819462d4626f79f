"""What a vendor's `Adj Close` says about splits and dividends, and which big raw moves
nobody explains.

Two jobs, both per symbol on consecutive bars of one export:

* `derive_events`: a typical export has `Close` (as traded) and `Adj Close` (adjusted for
  later splits and dividends) but no event columns. The ratio close/adj_close steps on
  every ex-date; a step matching a common split ratio, with the raw price jumping the same
  way, is a split; any other small downward step is a cash dividend. The derived events
  reproduce the vendor's total return exactly with this project's adjustment
  (`adjust.adjust_prices`): on an ex-date, (close_t * split + dividend) / close_{t-1}
  equals adj_t / adj_{t-1}.

* `screen_jumps`: a raw move of more than 40 % in one session that the recorded events do
  not explain is judged with every signal the vendor gives. If `Adj Close` moves the same
  way (it shows no split) the move is genuine (an earnings day), unless the raw ratio is a
  common split ratio and the volume moved like a split's (then both signals may just be
  unadjusted, and the bar is in doubt). If `Adj Close` disagrees with `Close` in a way no
  split explains, the bar is in doubt. A bar in doubt and every later bar of that symbol
  are held out (quarantined with the reason): later bars would be on another price scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# a one-session raw move above this, unexplained by events, is examined
MAX_UNEXPLAINED_JUMP = 0.40
# splits seen in US equities: forward (price divided by the ratio) and reverse. A 2-for-3
# reverse split (price x1.5) is left out on purpose: it is rare, and a +50 % day is not.
SPLIT_RATIOS = (1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 8, 1 / 10, 1 / 15, 1 / 20)
# a close/adj_close step within this of a split ratio is that split (vendor rounding)
SPLIT_STEP_TOLERANCE = 0.02
# a raw price ratio within this of 1/split is "shaped like a split" (it adds the day's move)
SPLIT_PRICE_TOLERANCE = 0.04
# close/adj_close steps smaller than this (relative) are rounding, not a dividend
MIN_DIVIDEND_STEP = 2e-4
# a step down larger than this that is no split is not a dividend either
MAX_DIVIDEND_STEP = 0.25
# Adj Close "moves the same way" as the raw move when their growths agree within this
ADJ_AGREEMENT = 0.05
# volume after a split of ratio s is about s times the volume before; a bar's volume ratio
# within [s / VOLUME_SLACK, s * VOLUME_SLACK] is "like a split's"
VOLUME_SLACK = 3.0

DOUBT_PREFIX = "unexplained jump"


def _nearest_split(ratio: float, tolerance: float) -> float | None:
    for s in SPLIT_RATIOS:
        if abs(ratio / s - 1.0) <= tolerance:
            return s
    return None


def derive_events(close: np.ndarray, adj_close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dividend, split_ratio) per bar of ONE symbol's consecutive bars (ascending dates,
    positive finite closes) from the vendor's close and adj_close. Bar 0 has no event (no
    previous bar). On bar t, step = (close_{t-1}/adj_{t-1}) / (close_t/adj_t):
    * step within 2 % of a split ratio s, and the raw price moved by about 1/s (the
      split-adjusted move is below 40 %): a split of ratio s;
    * otherwise, the vendor's total return R = adj_t/adj_{t-1} gives the dividend
      D = R * close_{t-1} - s * close_t, kept when it is positive and at least 0.02 % of
      the price (smaller is rounding) and at most 25 % of it."""
    close = np.asarray(close, dtype="float64")
    adj = np.asarray(adj_close, dtype="float64")
    n = len(close)
    dividend = np.zeros(n)
    split = np.ones(n)
    for t in range(1, n):
        c0, c1, a0, a1 = close[t - 1], close[t], adj[t - 1], adj[t]
        if not (c0 > 0 and c1 > 0 and a0 > 0 and a1 > 0):
            continue
        step = (c0 / a0) / (c1 / a1)
        s = _nearest_split(step, SPLIT_STEP_TOLERANCE)
        if s is not None and abs(c1 * s / c0 - 1.0) <= MAX_UNEXPLAINED_JUMP:
            split[t] = s
        growth = a1 / a0
        cash = growth * c0 - split[t] * c1
        if MIN_DIVIDEND_STEP * c0 <= cash <= MAX_DIVIDEND_STEP * c0:
            dividend[t] = cash
    return dividend, split


def derive_events_frame(prices: pd.DataFrame) -> pd.DataFrame:
    """`derive_events` applied per symbol to a price frame (rows of a symbol ascending);
    returns a copy with `dividend` and `split_ratio` replaced. Rows whose close or adj_close
    is not a positive number are skipped (no event on them; the next good row is compared
    with the previous good one)."""
    out = prices.copy()
    out["dividend"] = 0.0
    out["split_ratio"] = 1.0
    close = pd.to_numeric(out["close"], errors="coerce").to_numpy(dtype="float64")
    adj = pd.to_numeric(out["adj_close"], errors="coerce").to_numpy(dtype="float64")
    usable = np.isfinite(close) & np.isfinite(adj) & (close > 0) & (adj > 0)
    for _, index in out.groupby("symbol", sort=False).indices.items():
        rows = index[usable[index]]
        if len(rows) < 2:
            continue
        dividend, split = derive_events(close[rows], adj[rows])
        out.iloc[rows, out.columns.get_loc("dividend")] = dividend
        out.iloc[rows, out.columns.get_loc("split_ratio")] = split
    return out


@dataclass(frozen=True)
class Bar:
    close: float
    adj_close: float
    volume: float
    dividend: float = 0.0
    split_ratio: float = 1.0


def judge_jump(previous: Bar, bar: Bar) -> str | None:
    """None when the move from `previous` to `bar` is explained (small, recorded events, or
    a genuine move the vendor's Adj Close confirms); otherwise why it is in doubt."""
    growth = (bar.close * bar.split_ratio + bar.dividend) / previous.close
    if abs(growth - 1.0) <= MAX_UNEXPLAINED_JUMP:
        return None
    move = f"close {previous.close:g} -> {bar.close:g} ({growth - 1.0:+.0%} after recorded events)"
    adj_growth = bar.adj_close / previous.adj_close
    if abs(adj_growth / growth - 1.0) > ADJ_AGREEMENT:
        return (
            f"{move}, but Adj Close moved {adj_growth - 1.0:+.0%}: the vendor's Close and Adj Close disagree "
            "and no recorded split explains it"
        )
    raw_ratio = bar.close / previous.close
    s = _nearest_split(1.0 / raw_ratio, SPLIT_PRICE_TOLERANCE)
    if s is None or bar.split_ratio != 1.0:
        return None  # a genuine move: Adj Close shows no split and the ratio is no split's
    volume_ratio = bar.volume / previous.volume if previous.volume > 0 else np.inf
    if not (s / VOLUME_SLACK <= volume_ratio <= s * VOLUME_SLACK):
        return None  # shaped like a split by price, but volume did not move like one
    kind = f"{s:g}-for-1 split" if s >= 1 else f"1-for-{1 / s:g} reverse split"
    return (
        f"{move} looks like an unadjusted {kind} (volume x{volume_ratio:.1f}) that Adj Close does not show either"
    )


def screen_jumps(
    prices: pd.DataFrame, previous: pd.DataFrame | None = None, open_doubts: dict | None = None,
    confirmed: set[tuple[str, object]] | frozenset = frozenset(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split validated bars into (kept, held_out). `prices` has symbol, trade_date, close,
    adj_close, volume, dividend, split_ratio; `previous` the last stored bar of each symbol
    before the range (same columns), compared with the range's first bar; `open_doubts`
    maps a symbol to the (day, reason) of a doubt recorded by an earlier load that no later
    stored bar resolved: all its bars are held out; `confirmed` holds (symbol, session)
    pairs the user confirmed as genuine moves (never in doubt). `held_out` has the columns
    of `prices` plus `reason` (prefixed `DOUBT_PREFIX`)."""
    open_doubts = open_doubts or {}
    prices = prices.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)
    last = {}
    if previous is not None and not previous.empty:
        last = {r.symbol: Bar(r.close, r.adj_close, r.volume) for r in previous.itertuples(index=False)}
    held: list[tuple[int, str]] = []
    for symbol, index in prices.groupby("symbol", sort=False).indices.items():
        doubt = open_doubts.get(symbol)
        reference = last.get(symbol)
        for i in index:
            r = prices.iloc[i]
            bar = Bar(float(r["close"]), float(r["adj_close"]), float(r["volume"]), float(r["dividend"]), float(r["split_ratio"]))
            if doubt is None and reference is not None and (symbol, r["trade_date"]) not in confirmed:
                why = judge_jump(reference, bar)
                if why is not None:
                    doubt = (r["trade_date"], why)
                    held.append((i, f"{DOUBT_PREFIX} on {r['trade_date']}: {why}; {symbol} is held out from that session on"))
                    continue
            if doubt is not None:
                held.append((i, f"{DOUBT_PREFIX} on {doubt[0]}: held out after it ({doubt[1]})"))
                continue
            reference = bar
    rows = [i for i, _ in held]
    held_out = prices.iloc[rows].assign(reason=[why for _, why in held]).reset_index(drop=True)
    kept = prices.drop(index=rows).reset_index(drop=True)
    return kept, held_out
