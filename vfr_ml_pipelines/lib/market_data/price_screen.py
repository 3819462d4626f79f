"""Which validated bars a price load may store, and which stored bars are in doubt.

A load of sessions [start, end] keeps a validated bar only if its symbol is listed that
session (the universe, `vfr_ml.universe_membership`) and its move from the symbol's previous
kept bar is explained (`corporate_actions.screen_jumps`). Everything else goes to
`vfr_ml.quarantine` with the reason, so a doubtful symbol is held out while the others go on.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.market_data import calendar, store
from vfr_ml_pipelines.lib.market_data.corporate_actions import DOUBT_PREFIX, Bar, judge_jump, screen_jumps
from vfr_ml_pipelines.lib.market_data.rejections import REJECTED_COLUMNS, ValidationResult


def _rejections(rows: pd.DataFrame, field: str) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=list(REJECTED_COLUMNS))
    raw = rows.drop(columns=["reason"])
    return pd.DataFrame(
        {
            "dataset": "prices",
            "symbol": rows["symbol"].to_numpy(),
            "day": rows["trade_date"].to_numpy(),
            "field": field,
            "reason": rows["reason"].to_numpy(),
            "raw": [json.loads(r.to_json(date_format="iso")) for _, r in raw.iterrows()],
        },
        columns=list(REJECTED_COLUMNS),
    ).astype(object)


def screen_loaded_prices(
    engine: Engine, result: ValidationResult, start: date, end: date, confirmed: set[tuple[str, date]] = frozenset(),
) -> ValidationResult:
    """The validated bars of [start, end] that may be stored: bars on sessions where their
    symbol is not listed (before its listing, after its delisting, an earlier company's use
    of the ticker) and bars in doubt for an unexplained jump are moved to `rejected`."""
    clean = result.clean
    listed = store.universe_by_session(engine, start, end)
    keys = pd.MultiIndex.from_frame(listed[["symbol", "trade_date"]]) if not listed.empty else None
    listed_that_day = (
        pd.MultiIndex.from_frame(clean[["symbol", "trade_date"]]).isin(keys) if keys is not None and not clean.empty
        else pd.Series(False, index=clean.index).to_numpy()
    )
    outside = clean[~listed_that_day].assign(
        reason=lambda f: [f"{s} is not listed on {d} (universe_membership); the bar belongs to no listing of the ticker"
                          for s, d in zip(f["symbol"], f["trade_date"])]
    )
    kept, held = screen_jumps(clean[listed_that_day], store.last_bars_before(engine, start), store.open_doubts(engine, start), confirmed)
    rejected = pd.concat(
        [frame for frame in (result.rejected, _rejections(outside, "trade_date"), _rejections(held, "close"))
         if not frame.empty] or [result.rejected],
        ignore_index=True,
    )
    return ValidationResult(kept, rejected, result.duplicates_dropped)


def held_out_symbols(rejected: pd.DataFrame) -> dict[str, str]:
    """symbol -> first day held out for an unexplained jump, from a load's rejected rows."""
    if rejected.empty:
        return {}
    doubts = rejected[rejected["reason"].astype(str).str.startswith(DOUBT_PREFIX)]
    return {s: str(min(days)) for s, days in doubts.groupby("symbol")["day"]}


def unexplained_jumps(engine: Engine, start: date, end: date, confirmed: set[tuple[str, date]] = frozenset()) -> pd.DataFrame:
    """Stored bars of [start, end] whose move from the symbol's previous stored bar is in
    doubt by the same rule as the load's (`judge_jump`): none unless data reached the table
    another way. Columns symbol, trade_date, reason."""
    stored = store.stored_bars(engine, calendar.previous_trading_day(start), end)
    found = []
    for symbol, rows in stored.groupby("symbol", sort=False):
        bars = [Bar(r.close, r.adj_close, r.volume, r.dividend, r.split_ratio) for r in rows.itertuples(index=False)]
        for day, before, bar in zip(rows["trade_date"].iloc[1:], bars, bars[1:]):
            why = judge_jump(before, bar) if day >= start and (symbol, day) not in confirmed else None
            if why:
                found.append((symbol, day, why))
    return pd.DataFrame(found, columns=["symbol", "trade_date", "reason"])
