"""Quarterly reports of the synthetic market: when they are filed and what they say.

The engine (`simulation.py`) simulates the core of each report at the quarter's last
session: net income, book value, dividends paid and shares outstanding. This module
schedules the filings and builds the full statements around that core, so that margins,
EPS, the balance sheet and the cash flow agree with each other.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from vfr_ml_pipelines.lib.market_data.synthetic.companies import Static

TAX_RATE, DEBT_RATE = 0.21, 0.055


def quarter_end(day: date) -> date:
    """The last calendar day of `day`'s quarter."""
    month = 3 * ((day.month - 1) // 3 + 1)
    nxt = date(day.year + (month == 12), 1 if month == 12 else month + 1, 1)
    return nxt - timedelta(days=1)


def _quarter_rows(days: list[date], day_after: date) -> list[int]:
    """Rows of the last session of each calendar quarter (`day_after` follows the last day)."""
    nxt = days[1:] + [day_after]
    return [t for t, d in enumerate(days) if quarter_end(d) != quarter_end(nxt[t])]


def count_quarters(days: list[date], day_after: date) -> int:
    return len(_quarter_rows(days, day_after))


def quarter_schedule(days: list[date], day_after: date, lag_draw: np.ndarray, noise: np.ndarray) -> dict:
    """Quarter ends and, per symbol, the row of the session its report is filed on: the
    first session on or after period end + 25..45 days (45..60 for the annual report).
    `lag_draw` (quarters, symbols) holds uniforms, `noise` (quarters, symbols, 8) normals;
    the arrays for the simulated core are filled in by the engine."""
    rows = _quarter_rows(days, day_after)
    period_end = [quarter_end(days[t]) for t in rows]
    n_q, n = lag_draw.shape
    annual = np.array([p.month == 12 for p in period_end], dtype=bool)[:, None]
    lag = np.where(annual, 45 + np.floor(lag_draw * 16), 25 + np.floor(lag_draw * 21)).astype(np.int64)
    ordinals = np.array([d.toordinal() for d in days])
    target = np.array([p.toordinal() for p in period_end], dtype=np.int64)[:, None] + lag
    filing_row = np.searchsorted(ordinals, target, side="left")
    # filings by the row they become visible on: {row: [(quarter, symbol indices), ...]}
    filings: dict[int, list[tuple[int, np.ndarray]]] = {}
    for qi in range(n_q):
        for row in np.unique(filing_row[qi]):
            if row < len(days):
                filings.setdefault(int(row), []).append((qi, np.flatnonzero(filing_row[qi] == row)))
    return {
        "row": rows, "period_end": period_end, "filing_row": filing_row, "filings": filings, "noise": noise,
        **{key: np.full((n_q, n), np.nan) for key in ("book", "net_income", "dividends_paid", "shares")},
    }


def statements(st: Static, q: dict) -> dict[str, np.ndarray]:
    """Every FUNDAMENTAL_VALUE_COLUMNS array (quarters, symbols), plus the schedule
    (`_row`, `_period_end`, `_filing_row`). The balance sheet comes from the book value and
    the firm's leverage. The income statement is worked backwards from net income (tax
    only on profits), so operating income <= gross profit <= revenue and
    EPS = net income / shares."""
    z = q["noise"]
    book, ni = q["book"], q["net_income"]
    assets = book * st.leverage * np.exp(0.04 * z[:, :, 1])
    debt = st.debt_share * (assets - book)
    revenue = assets * st.asset_turnover / 4 * np.exp(0.05 * z[:, :, 2])
    interest = debt * DEBT_RATE / 4
    pretax = np.where(ni > 0, ni / (1 - TAX_RATE), ni)
    operating = pretax + interest
    revenue = np.maximum(revenue, 1.5 * operating)  # an operating margin above 2/3 is not credible
    da = st.da_rate * assets / 4
    margin = np.clip(st.gross_margin + 0.01 * z[:, :, 3], 0.05, 0.97)
    gross = np.minimum(np.maximum(revenue * margin, operating + 0.03 * revenue), revenue)
    inventory = st.inventory_ratio * assets
    cash = st.cash_ratio * assets * np.exp(0.1 * z[:, :, 4])
    current_assets = cash + inventory + 0.5 * revenue  # receivables: about 45 days of sales
    current_liabilities = current_assets / (st.current_ratio * np.exp(0.05 * z[:, :, 5]))
    fcf = ni + da - st.capex_ratio * revenue * np.exp(0.2 * z[:, :, 6]) + 0.01 * assets * z[:, :, 7]
    return {
        "revenue": revenue, "gross_profit": gross, "operating_income": operating, "ebitda": operating + da,
        "net_income": ni, "interest_expense": interest, "eps": ni / q["shares"], "total_assets": assets,
        "total_debt": debt, "cash": cash, "current_assets": current_assets, "current_liabilities": current_liabilities,
        "inventory": inventory, "book_value": book, "free_cash_flow": fcf, "shares_outstanding": q["shares"],
        "dividends_paid": q["dividends_paid"],
        "_row": np.array(q["row"]), "_period_end": np.array(q["period_end"], dtype=object), "_filing_row": q["filing_row"],
    }
