"""A realistic, price-only vendor export, for tests and demos of the `csv` provider.

`write_price_only_export(root, seed=...)` writes `root/prices/{SYMBOL}.csv` files in the
documented vendor format (`Date,Open,High,Low,Close,Adj Close,Volume`, no event columns, no
universe.csv, no fundamentals, no news), deterministic for a seed, with what real exports
contain and the synthetic market hides:

* a one-factor market with volatility clustering and fat tails, daily volatility 1-3 %,
  a weak persistent signal (an oracle 1-week Rank IC of a few hundredths, like US large caps);
* listings and delistings in mid-history (a delisted symbol's file just ends);
* a ticker reused by another company after a gap of months;
* stray junk bars months before a spin-off's regular trading;
* genuine 40-60 % days (Adj Close moves the same way, volume spikes);
* a duplicate row of zeros beside a real bar;
* an as-of bar that fails validation (high below low);
* splits (forward and reverse) and quarterly dividends visible only through Adj Close
  (adjusted the way Yahoo-style vendors do: every earlier close is multiplied by
  1 - dividend / previous close, and divided by the split ratio).

It returns a manifest of what it planted, so tests can check each is handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from vfr_ml_pipelines.lib.market_data import calendar

DEFAULT_START = date(2023, 11, 1)
DEFAULT_END = date(2026, 11, 20)
MIN_SESSIONS = 250


@dataclass
class ExportManifest:
    """What the export contains, by symbol."""

    root: Path
    start: date
    end: date
    symbols: list[str]
    listed_late: dict[str, date] = field(default_factory=dict)  # first bar
    delisted: dict[str, date] = field(default_factory=dict)  # last bar
    reused: dict[str, tuple[date, date]] = field(default_factory=dict)  # earlier company's last bar, new first bar
    junk_before_spinoff: dict[str, tuple[list[date], date]] = field(default_factory=dict)  # junk days, first regular bar
    genuine_moves: list[tuple[str, date, float]] = field(default_factory=list)
    zero_duplicates: list[tuple[str, date]] = field(default_factory=list)
    bad_as_of_bar: str = ""
    splits: list[tuple[str, date, float]] = field(default_factory=list)  # ratio: 2.0 = 2-for-1, 0.1 = 1-for-10
    dividends: dict[str, list[tuple[date, float]]] = field(default_factory=dict)


def _ticker(i: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "R" + letters[i // 26 % 26] + letters[i % 26]


def _path(rng: np.random.Generator, n: int, market: np.ndarray, vol_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total daily returns and the planted expected return of one company over n sessions."""
    beta = rng.uniform(0.6, 1.4)
    idio_vol = rng.uniform(0.010, 0.022)
    signal = np.empty(n)
    signal[0] = rng.normal()
    for t in range(1, n):  # a slowly moving, partly price-visible edge
        signal[t] = 0.97 * signal[t - 1] + np.sqrt(1 - 0.97**2) * rng.normal()
    expected = 0.0005 * signal
    noise = rng.standard_t(4, n) / np.sqrt(2.0)  # unit variance, fat tails
    returns = beta * market + expected + idio_vol * vol_scale * noise
    return np.clip(returns, -0.35, 0.35), expected


def _bars(rng: np.random.Generator, close: np.ndarray, returns: np.ndarray, base_volume: float) -> dict[str, np.ndarray]:
    n = len(close)
    sigma = np.maximum(np.abs(returns), 0.005)
    prev = np.r_[close[0] / (1 + returns[0]), close[:-1]]
    open_ = prev * (1 + rng.normal(0, 0.3, n) * sigma)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.5, n)) * sigma)
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.5, n)) * sigma)
    volume = base_volume * np.exp(rng.normal(0, 0.3, n)) * (1 + 20 * np.abs(returns))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": np.round(volume)}


def write_price_only_export(
    root: str | Path, *, seed: int = 11, start: date = DEFAULT_START, end: date = DEFAULT_END, n_symbols: int = 32,
) -> ExportManifest:
    """Write the export under `root` (created) and return what was planted. `n_symbols`
    is at least 16 (each planted case has its own symbol) and [start, end] holds at least
    MIN_SESSIONS sessions."""
    if n_symbols < 16:
        raise ValueError(f"n_symbols must be at least 16, got {n_symbols}")
    rng = np.random.default_rng(seed)
    sessions = calendar.trading_days(start, end)
    n = len(sessions)
    if n < MIN_SESSIONS:
        raise ValueError(
            f"{start}..{end} has {n} sessions; the planted cases (a relisting after 60 sessions, junk bars "
            f"90 sessions before a spin-off) need at least {MIN_SESSIONS}"
        )
    root = Path(root)
    (root / "prices").mkdir(parents=True, exist_ok=True)
    # market: GARCH-like volatility, 0.9 % a day on average, a small drift
    market = np.empty(n)
    var = 0.009**2
    scale = np.empty(n)
    for t in range(n):
        shock = rng.standard_t(5) / np.sqrt(5 / 3)
        market[t] = 0.0003 + np.sqrt(var) * shock
        scale[t] = np.sqrt(var) / 0.009
        var = 0.000002 + 0.08 * (market[t] - 0.0003) ** 2 + 0.90 * var
    symbols = [_ticker(i) for i in range(n_symbols)]
    manifest = ExportManifest(root=root, start=start, end=end, symbols=symbols)

    # who gets which planted case (symbol index -> case)
    late = {1: n // 3, 2: n // 2, 3: 2 * n // 3}
    gone = {4: n // 4, 5: n // 2 + 7, 6: 3 * n // 4}
    reused, spinoff, bad_as_of = 7, 8, 9
    genuine = {10: (n // 5, 0.52), 11: (n // 2 + 20, -0.45), 12: (3 * n // 5, 0.41)}
    split_cases = {13: (n // 3 + 11, 2.0), 14: (n // 2 + 3, 3.0), 15: (2 * n // 3 + 5, 0.1)}
    zero_dupes = {16 % n_symbols: n // 6, 17 % n_symbols: n // 2 + 40, 18 % n_symbols: n - 30}

    for i, symbol in enumerate(symbols):
        returns, _ = _path(rng, n, market, scale)
        first, last = late.get(i, 0), gone.get(i, n - 1)
        if i in genuine:
            t, move = genuine[i]
            returns[t] = move
        price0 = rng.uniform(3.0, 8.0) if i == 15 else rng.uniform(15.0, 250.0)  # the reverse split is a penny-ish stock
        total = price0 * np.cumprod(1 + returns)
        dividend_days: list[int] = []
        dividends = np.zeros(n)
        if rng.random() < 0.5 or i in (13, 14):
            offset = int(rng.integers(5, 60))
            dividend_days = list(range(offset, n, 63))
        split_factor = np.ones(n)  # raw = total / split_factor after cash is taken out
        if i in split_cases:
            t, ratio = split_cases[i]
            split_factor[t:] = ratio
            manifest.splits.append((symbol, sessions[t], ratio))
        # cash paid out leaves the raw price: subtract the cumulative dividends' effect
        cash_factor = np.ones(n)
        for t in dividend_days:
            yield_q = 0.004 + 0.004 * (i % 3) / 2
            dividends[t] = yield_q * total[t - 1] * cash_factor[t - 1] / split_factor[t - 1]
            cash_factor[t:] *= 1 - yield_q
        raw = total * cash_factor / split_factor
        raw = np.round(raw, 2)
        bars = _bars(rng, raw, returns, base_volume=float(rng.uniform(2e5, 5e6)))
        bars["volume"] = np.round(bars["volume"] * split_factor)
        if i in genuine:
            bars["volume"][genuine[i][0]] *= 5
        for key in ("open", "high", "low"):
            bars[key] = np.round(bars[key], 2)
        bars["high"] = np.maximum.reduce([bars["high"], bars["open"], bars["close"]])
        bars["low"] = np.minimum.reduce([bars["low"], bars["open"], bars["close"]])
        # the vendor's Adj Close, Yahoo-style, from the rounded closes
        factor = np.ones(n)
        for t in range(n - 1, 0, -1):
            step = 1.0
            if dividends[t] > 0:
                paid = np.round(dividends[t], 4)
                step *= 1 - paid / bars["close"][t - 1]
            step /= split_factor[t] / split_factor[t - 1]
            factor[:t] *= step
        adj = np.round(bars["close"] * factor, 6)

        rows = [
            (sessions[t], bars["open"][t], bars["high"][t], bars["low"][t], bars["close"][t], adj[t], int(bars["volume"][t]))
            for t in range(first, last + 1)
        ]
        extra_before: list[tuple] = []
        if i in late:
            manifest.listed_late[symbol] = sessions[first]
        if i in gone:
            manifest.delisted[symbol] = sessions[last]
        if i == reused:  # company A until n/3, then 60 sessions with nothing, then company B
            a_last, b_first = n // 3, n // 3 + 61
            b_price = np.round(rng.uniform(40, 60) * np.cumprod(1 + rng.normal(0.0003, 0.015, n - b_first)), 2)
            b = _bars(rng, b_price, np.full(len(b_price), 0.015), 1e6)
            rows = rows[: a_last + 1] + [
                (sessions[b_first + k], *(round(float(b[c][k]), 2) for c in ("open", "high", "low", "close")),
                 float(b["close"][k]), int(b["volume"][k]))
                for k in range(len(b_price))
            ]
            manifest.reused[symbol] = (sessions[a_last], sessions[b_first])
        if i == spinoff:  # when-issued junk months before the regular listing
            regular = n // 2
            rows = [r for r in rows if r[0] >= sessions[regular]]
            junk = [sessions[regular - 90], sessions[regular - 89], sessions[regular - 70]]
            extra_before = [(d, 1.0, 1.0, 1.0, 1.0, 1.0, 0) for d in junk]
            manifest.junk_before_spinoff[symbol] = (junk, sessions[regular])
            manifest.listed_late[symbol] = sessions[regular]
        if i == bad_as_of:  # the last bar has high below low
            d, o, h, lo, c, a, v = rows[-1]
            rows[-1] = (d, o, lo * 0.98, h * 1.02, c, a, v)
            manifest.bad_as_of_bar = symbol
        if i in genuine:
            manifest.genuine_moves.append((symbol, sessions[genuine[i][0]], genuine[i][1]))
        written = {r[0] for r in rows}
        paid = [(sessions[t], float(np.round(dividends[t], 4))) for t in dividend_days
                if sessions[t] in written and sessions[t - 1] in written and i != reused]
        if paid:
            manifest.dividends[symbol] = paid
        lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
        for row in extra_before + rows:
            lines.append(_line(row))
            if i in zero_dupes and row[0] == sessions[zero_dupes[i]]:
                lines.append(f"{row[0].isoformat()},0,0,0,0,0,0")
                manifest.zero_duplicates.append((symbol, row[0]))
        (root / "prices" / f"{symbol}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _line(row: tuple) -> str:
    day, o, h, lo, c, a, v = row
    return f"{day.isoformat()},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{a:.6f},{int(v)}"
