"""Fundamental features: valuation, profitability, health, growth and shareholder returns
from quarterly reports, joined to daily prices strictly point in time.

Point in time
-------------
A report becomes visible on its `filing_date` (schema.py). At trade date D a symbol's row
uses only reports with ``filing_date <= D``: the reports are attached to the price rows with
``pd.merge_asof(..., by=symbol, direction="backward", allow_exact_matches=True)`` on
`filing_date`. Every per-report quantity below (TTM sums, year-over-year growth) is computed
from the report and the reports filed *before* it, so nothing filed after D can reach D.

* Reports are ordered per symbol by (filing_date, period_end); "the last 4 filed quarters"
  are the report visible at D and the three filed before it.
* TTM (trailing twelve months) of a flow (revenue, gross_profit, operating_income, ebitda,
  net_income, interest_expense, free_cash_flow, dividends_paid, eps) is the sum of the last 4
  filed quarters. It is NaN when fewer than 4 are filed, when any of the 4 values is missing,
  or when the 4 are not consecutive quarters (each period_end 60..120 days after the one
  before it): a gap would silently make a 15-month "TTM".
* Year-over-year growth compares the latest filed quarter with the same quarter a year
  earlier: the symbol's report whose period_end is nearest to 365 days before (within 25
  days) and that was filed no later than the latest one (so it is visible too); NaN when
  there is none. Quarter-over-quarter growth does the same 91 days back.
* Balance-sheet values (book_value, total_assets, total_debt, cash, current_assets,
  current_liabilities, inventory, shares_outstanding) are those of the latest filed report.
* Two reports of the same symbol and period_end are rejected (ValueError naming them), as
  are reports without a filing_date or period_end: a restatement needs its own visibility
  rule, and guessing one would leak it into the past.

Prices, shares and splits
-------------------------
Market cap uses the UNADJUSTED `close` of day D (the price as traded) times the share count
of the latest filed report. Both must be on the same share basis: when a split takes effect
between the filing and D, the filed share count is pre-split while `close` is post-split.
When the prices carry `split_ratio`, the filed values are moved to D's share basis:

    shares_D = shares_outstanding * prod(split_ratio of the symbol's days in (filing_date, D])
    eps_D    = eps / prod(split_ratio of the symbol's days in (filing_date_of_that_quarter, D])

(each of the 4 TTM quarters with its own filing date). A split taking effect on the filing
day itself is taken as already reflected in the report. Caveats: only splits inside the
price frame are seen (a split before the frame's first row with a report filed even earlier
is missed), and a report is assumed to state shares and EPS on the share basis of its
filing date (not restated for splits between period_end and filing). Without a
`split_ratio` column no adjustment is made, and a split between filing and D then distorts
market cap and the per-share ratios (by the split ratio) until the next report.

Denominators
------------
A ratio whose denominator is zero, missing, or negative where the ratio is meaningless is
NaN (listed per feature in its description: "NaN if ..."). Infinities never leave the module.
`dividends_paid` is used as a magnitude (vendors often report it as a negative cash flow).

Performance
-----------
Per-report quantities are computed once on the (small) report table with numpy shifts;
price rows get them through one merge_asof on integer symbol codes and one gather. No
per-row Python, no groupby.apply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.features.spec import FeatureSpec, spec_maker

FEATURE_SET_VERSION = "fundamental-v1"

_f = spec_maker("fundamental", "fundamentals+prices")


FUNDAMENTAL_FEATURES: tuple[FeatureSpec, ...] = (
    # valuation (market cap = unadjusted close * split-adjusted shares of the latest filed report)
    _f("pe_ttm", "price / EPS TTM (sum of the last 4 filed quarters' EPS, split adjusted); NaN if EPS TTM <= 0"),
    _f("peg_ttm", "pe_ttm / (EPS year-over-year growth in percent); NaN if that growth <= 0 or pe_ttm is NaN"),
    _f("pb", "market cap / book value; NaN if book value <= 0"),
    _f("ps_ttm", "market cap / revenue TTM; NaN if revenue TTM <= 0"),
    _f("pfcf_ttm", "market cap / free cash flow TTM; NaN if free cash flow TTM <= 0"),
    _f("ev_ebitda_ttm", "enterprise value / EBITDA TTM, EV = market cap + total_debt - cash; NaN if EBITDA TTM <= 0"),
    _f("ev_sales_ttm", "enterprise value / revenue TTM; NaN if revenue TTM <= 0"),
    _f("earnings_yield_ttm", "EPS TTM / price (1 / P/E, still defined, negative, for losses); NaN if price <= 0"),
    _f("fcf_yield_ttm", "free cash flow TTM / market cap (defined for negative cash flow); NaN if market cap <= 0"),
    _f("book_to_market", "book value / market cap (defined for negative book value); NaN if market cap <= 0"),
    _f("log_market_cap", "ln(market cap) (size); NaN if market cap <= 0"),
    # profitability
    _f("roe_ttm", "net income TTM / book value of the latest report; NaN if book value <= 0"),
    _f("roa_ttm", "net income TTM / total assets; NaN if total assets <= 0"),
    _f("gross_margin_ttm", "gross profit TTM / revenue TTM; NaN if revenue TTM <= 0"),
    _f("operating_margin_ttm", "operating income TTM / revenue TTM; NaN if revenue TTM <= 0"),
    _f("net_margin_ttm", "net income TTM / revenue TTM; NaN if revenue TTM <= 0"),
    _f("fcf_margin_ttm", "free cash flow TTM / revenue TTM; NaN if revenue TTM <= 0"),
    # financial health
    _f("debt_to_equity", "total debt / book value; NaN if book value <= 0"),
    _f("current_ratio", "current assets / current liabilities; NaN if current liabilities <= 0"),
    _f("quick_ratio", "(current assets - inventory) / current liabilities; NaN if current liabilities <= 0 or inventory missing"),
    _f("interest_coverage_ttm", "operating income TTM / interest expense TTM; NaN if interest expense TTM <= 0"),
    _f("cash_to_assets", "cash / total assets; NaN if total assets <= 0"),
    _f("net_debt_to_ebitda_ttm", "(total debt - cash) / EBITDA TTM; NaN if EBITDA TTM <= 0"),
    # growth (latest filed quarter vs the same quarter a year earlier / the quarter before)
    _f("revenue_yoy", "revenue of the latest filed quarter / revenue of the same quarter a year earlier - 1; NaN if that base <= 0"),
    _f("eps_yoy", "EPS of the latest filed quarter / EPS of the same quarter a year earlier - 1 (split adjusted); NaN if that base <= 0"),
    _f("revenue_qoq", "revenue of the latest filed quarter / revenue of the quarter before - 1; NaN if that base <= 0"),
    _f("shares_yoy", "split-adjusted shares outstanding / those of the same quarter a year earlier - 1 (dilution; negative = buybacks); NaN if that base <= 0"),
    # shareholder returns
    _f("dividend_yield_ttm", "dividends paid TTM per share / price = |dividends_paid| TTM / market cap; NaN if market cap <= 0"),
    _f("payout_ratio_ttm", "|dividends_paid| TTM / net income TTM; NaN if net income TTM <= 0"),
    # from the price frame's dividend events alone: it has a source in a price-only export
    _f("trailing_dividend_yield_252", "sum of the per-share cash dividends going ex in the last 252 sessions (split adjusted, from the price frame's `dividend`) / close; NaN in the first 251 rows of a symbol or without a `dividend` column", source="prices"),
    # quality and staleness
    _f("accruals_ttm", "(net income TTM - free cash flow TTM) / total assets; NaN if total assets <= 0"),
    _f("days_since_filing", "calendar days from the latest visible filing_date to the trade date (staleness, >= 0)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FUNDAMENTAL_FEATURES)

_PRICE_REQUIRED = ("symbol", "trade_date", "close")
_FUND_REQUIRED = (
    "symbol", "period_end", "filing_date",
    "revenue", "gross_profit", "operating_income", "ebitda", "net_income", "interest_expense", "eps",
    "total_assets", "total_debt", "cash", "current_assets", "current_liabilities", "inventory",
    "book_value", "free_cash_flow", "shares_outstanding", "dividends_paid",
)
_TTM_FLOWS = ("revenue", "gross_profit", "operating_income", "ebitda", "net_income", "interest_expense",
              "free_cash_flow", "dividends_paid")
_DAY_NS = np.int64(86_400_000_000_000)
_QUARTER_GAP_DAYS = (60, 120)
_YEAR_BACK_DAYS = 365
_QUARTER_BACK_DAYS = 91
_MATCH_TOLERANCE_DAYS = 25
_DIVIDEND_WINDOW = 252


def _to_datetime64(values: pd.Series) -> np.ndarray:
    """datetime64[ns] (midnight, naive) for a column of dates, datetimes or strings;
    converts each distinct value once. Missing values become NaT."""
    codes, uniques = pd.factorize(values)
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(uniques), errors="raise"))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    idx = idx.normalize().as_unit("ns")
    out = np.full(len(codes), np.datetime64("NaT", "ns"))
    ok = codes >= 0
    out[ok] = idx.to_numpy()[codes[ok]]
    return out


def _positive(x: np.ndarray) -> np.ndarray:
    """x where x > 0, NaN elsewhere (and where missing): the denominator guard."""
    return np.where(x > 0.0, x, np.nan)


def _lag(x: np.ndarray, k: int, same: np.ndarray) -> np.ndarray:
    """x shifted k reports back within the symbol (NaN where that report does not exist)."""
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[:-k]
    out[~same] = np.nan
    return out


def _empty_output() -> pd.DataFrame:
    return pd.DataFrame({"symbol": pd.Series(dtype=object), "trade_date": pd.Series(dtype=object),
                         **{name: pd.Series(dtype="float64") for name in FEATURE_NAMES}})


def _report_table(fundamentals: pd.DataFrame, sym_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Per-report quantities in (symbol, filing_date, period_end) order, each computed from
    the report and the reports filed before it only."""
    filing = _to_datetime64(fundamentals["filing_date"])
    period = _to_datetime64(fundamentals["period_end"])
    bad = np.isnat(filing) | np.isnat(period)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = fundamentals.iloc[i]
        field = "filing_date" if np.isnat(filing[i]) else "period_end"
        raise ValueError(f"fundamentals: symbol {row['symbol']!r}, period_end {row['period_end']!r}: missing {field}")
    key = pd.DataFrame({"s": sym_codes, "p": period})
    dup = key.duplicated(keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        row = fundamentals.iloc[i]
        raise ValueError(f"fundamentals: symbol {row['symbol']!r}, period_end {row['period_end']!r}: "
                         "more than one report for the same period (field period_end)")

    order = np.lexsort((period.view("int64"), filing.view("int64"), sym_codes))
    s = sym_codes[order]
    rep: dict[str, np.ndarray] = {
        "sym": s,
        "filing": filing[order],
        "period": period[order],
    }
    for col in _FUND_REQUIRED[3:]:
        rep[col] = pd.to_numeric(fundamentals[col], errors="coerce").to_numpy(dtype="float64")[order]
    rep["dividends_paid"] = np.abs(rep["dividends_paid"])

    n = len(s)
    pos = np.arange(n)
    first = np.concatenate(([True], s[1:] != s[:-1])) if n else np.zeros(0, bool)
    seg_start = np.maximum.accumulate(np.where(first, pos, 0)) if n else pos
    same = {k: pos - k >= seg_start for k in range(1, 4)}
    pdays = rep["period"].view("int64") // _DAY_NS
    lo, hi = _QUARTER_GAP_DAYS
    gap = pdays - _lag(pdays.astype("float64"), 1, same[1])
    quarter_ok = (gap >= lo) & (gap <= hi)  # this report is the quarter right after the one before it
    q = quarter_ok.astype("float64")
    # the last 4 filed reports are 4 consecutive quarters
    ttm_ok = same[3] & quarter_ok & (_lag(q, 1, same[1]) == 1.0) & (_lag(q, 2, same[2]) == 1.0)
    rep["_same"] = same  # type: ignore[assignment]
    rep["_ttm_ok"] = ttm_ok
    rep["_year_base"] = _earlier_report(rep, _YEAR_BACK_DAYS)
    rep["_quarter_base"] = _earlier_report(rep, _QUARTER_BACK_DAYS)
    return rep


def _ttm(x: np.ndarray, rep: dict) -> np.ndarray:
    same = rep["_same"]
    total = x + _lag(x, 1, same[1]) + _lag(x, 2, same[2]) + _lag(x, 3, same[3])
    return np.where(rep["_ttm_ok"], total, np.nan)


def _earlier_report(rep: dict, days_back: int) -> np.ndarray:
    """Per report, the index of the same symbol's report whose period_end is nearest to
    `days_back` days earlier (within the tolerance) and that was filed no later; -1 if none."""
    n = len(rep["sym"])
    rid = np.arange(n)
    left = pd.DataFrame({"sym": rep["sym"], "on": rep["period"] - np.timedelta64(days_back, "D"), "rid": rid})
    right = pd.DataFrame({"sym": rep["sym"], "on": rep["period"], "base": rid})
    merged = pd.merge_asof(left.sort_values("on", kind="stable"), right.sort_values("on", kind="stable"),
                           on="on", by="sym", direction="nearest",
                           tolerance=pd.Timedelta(days=_MATCH_TOLERANCE_DAYS))
    base = np.full(n, -1, dtype=np.int64)
    base[merged["rid"].to_numpy()] = merged["base"].fillna(-1).to_numpy(dtype=np.int64)
    found = (base >= 0) & (rep["filing"][np.maximum(base, 0)] <= rep["filing"])
    return np.where(found, base, -1)


def _growth(x: np.ndarray, base: np.ndarray) -> np.ndarray:
    """x / x of the base report - 1; NaN without a base report or when its value <= 0."""
    prior = np.where(base >= 0, x[np.maximum(base, 0)], np.nan)
    return x / _positive(prior) - 1.0


def compute_fundamental_features(prices: pd.DataFrame, fundamentals: pd.DataFrame) -> pd.DataFrame:
    """Wide frame (symbol, trade_date, one float64 column per feature in FEATURE_NAMES): one
    row per (symbol, trade_date) of `prices`, sorted by (symbol, trade_date). `prices` needs
    symbol, trade_date, close (split_ratio and dividend optional, see the module docstring);
    `fundamentals` has FUNDAMENTAL_COLUMNS (fiscal_period unused). Days before a symbol's
    first filing, and symbols without reports, get NaN features."""
    missing = set(_PRICE_REQUIRED) - set(prices.columns)
    if missing:
        raise ValueError(f"prices lack columns {sorted(missing)}")
    missing = set(_FUND_REQUIRED) - set(fundamentals.columns)
    if missing:
        raise ValueError(f"fundamentals lack columns {sorted(missing)}")
    n = len(prices)
    if n == 0:
        return _empty_output()

    # ---- prices in (symbol, trade_date) order, symbol codes shared with the reports
    p_sym_raw = prices["symbol"].to_numpy(dtype=object)
    f_sym_raw = fundamentals["symbol"].to_numpy(dtype=object)
    codes, _ = pd.factorize(np.concatenate([p_sym_raw, f_sym_raw]), sort=True)
    p_codes, f_codes = codes[:n].astype(np.int64), codes[n:].astype(np.int64)
    if (p_codes < 0).any():
        raise ValueError("prices have rows without symbol")
    if (f_codes < 0).any():
        raise ValueError("fundamentals have rows without symbol")
    p_date = _to_datetime64(prices["trade_date"])
    if np.isnat(p_date).any():
        raise ValueError("prices have rows without trade_date")
    p_int = p_date.view("int64")
    order = np.lexsort((p_int, p_codes))
    p_codes, p_date, p_int = p_codes[order], p_date[order], p_int[order]
    dup = (np.diff(p_codes) == 0) & (np.diff(p_int) == 0)
    if dup.any():
        i = order[int(np.flatnonzero(dup)[0])]
        raise ValueError(f"prices have duplicate (symbol, trade_date) rows: {prices['symbol'].iloc[i]!r}, {prices['trade_date'].iloc[i]!r}")
    first = np.concatenate(([True], p_codes[1:] != p_codes[:-1]))
    pos = np.arange(n)
    seg_start = np.maximum.accumulate(np.where(first, pos, 0))

    close = pd.to_numeric(prices["close"], errors="coerce").to_numpy(dtype="float64")[order]
    price = _positive(close)
    if "split_ratio" in prices.columns:
        split = pd.to_numeric(prices["split_ratio"], errors="coerce").to_numpy(dtype="float64")[order]
        split = np.where(np.isfinite(split) & (split > 0.0), split, 1.0)
        # cumulative split factor per symbol: C_t = product of split_ratio over days <= t
        cum_split = pd.Series(split).groupby(p_codes).cumprod().to_numpy()
    else:
        cum_split = np.ones(n)

    out = np.full((len(FEATURE_NAMES), n), np.nan)
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # ---- trailing ex-dividend yield from the price frame (needs no report)
        if "dividend" in prices.columns:
            div = pd.to_numeric(prices["dividend"], errors="coerce").to_numpy(dtype="float64")[order]
            div = np.where(np.isfinite(div), div, 0.0) * cum_split  # per base share
            cs = np.concatenate(([0.0], np.cumsum(div)))
            w = _DIVIDEND_WINDOW
            full = pos - seg_start >= w - 1
            lo = np.maximum(pos + 1 - w, seg_start)
            trailing = (cs[pos + 1] - cs[lo]) / cum_split  # back to the share basis of day t
            out[col["trailing_dividend_yield_252"]] = np.where(full, trailing / price, np.nan)

        if len(fundamentals):
            rep = _report_table(fundamentals, f_codes)
            n_rep = len(rep["sym"])
            # split factor at each filing: C of the symbol's last price row on or before the filing day
            at_filing = pd.merge_asof(
                pd.DataFrame({"sym": rep["sym"], "on": rep["filing"], "rid": np.arange(n_rep)}).sort_values("on", kind="stable"),
                pd.DataFrame({"sym": p_codes, "on": p_date, "c": cum_split}).sort_values("on", kind="stable"),
                on="on", by="sym", direction="backward", allow_exact_matches=True,
            ).sort_values("rid")["c"].to_numpy()
            c_filing = np.where(np.isnan(at_filing), 1.0, at_filing)

            eps_base = rep["eps"] * c_filing  # EPS per share on the symbol's base (pre-split-events) share count
            shares_base = rep["shares_outstanding"] / c_filing
            rev_ttm = _ttm(rep["revenue"], rep)
            gp_ttm = _ttm(rep["gross_profit"], rep)
            oi_ttm = _ttm(rep["operating_income"], rep)
            ebitda_ttm = _ttm(rep["ebitda"], rep)
            ni_ttm = _ttm(rep["net_income"], rep)
            ie_ttm = _ttm(rep["interest_expense"], rep)
            fcf_ttm = _ttm(rep["free_cash_flow"], rep)
            div_ttm = _ttm(rep["dividends_paid"], rep)
            eps_base_ttm = _ttm(eps_base, rep)
            eps_yoy = _growth(eps_base, rep["_year_base"])

            book, assets = rep["book_value"], rep["total_assets"]
            debt, cash = rep["total_debt"], rep["cash"]
            cur_a, cur_l = rep["current_assets"], rep["current_liabilities"]
            rev_pos = _positive(rev_ttm)
            book_pos, assets_pos, cur_l_pos = _positive(book), _positive(assets), _positive(cur_l)
            ebitda_pos = _positive(ebitda_ttm)
            # report-level features (no price in them)
            report_features = {
                "roe_ttm": ni_ttm / book_pos,
                "roa_ttm": ni_ttm / assets_pos,
                "gross_margin_ttm": gp_ttm / rev_pos,
                "operating_margin_ttm": oi_ttm / rev_pos,
                "net_margin_ttm": ni_ttm / rev_pos,
                "fcf_margin_ttm": fcf_ttm / rev_pos,
                "debt_to_equity": debt / book_pos,
                "current_ratio": cur_a / cur_l_pos,
                "quick_ratio": (cur_a - rep["inventory"]) / cur_l_pos,
                "interest_coverage_ttm": oi_ttm / _positive(ie_ttm),
                "cash_to_assets": cash / assets_pos,
                "net_debt_to_ebitda_ttm": (debt - cash) / ebitda_pos,
                "revenue_yoy": _growth(rep["revenue"], rep["_year_base"]),
                "eps_yoy": eps_yoy,
                "revenue_qoq": _growth(rep["revenue"], rep["_quarter_base"]),
                "shares_yoy": _growth(shares_base, rep["_year_base"]),
                "payout_ratio_ttm": div_ttm / _positive(ni_ttm),
                "accruals_ttm": (ni_ttm - fcf_ttm) / assets_pos,
            }

            # ---- point in time: the latest report with filing_date <= trade_date, per symbol
            left = pd.DataFrame({"sym": p_codes, "on": p_date, "row": pos}).sort_values("on", kind="stable")
            right = pd.DataFrame({"sym": rep["sym"], "on": rep["filing"], "rid": np.arange(n_rep)}).sort_values("on", kind="stable")
            merged = pd.merge_asof(left, right, on="on", by="sym", direction="backward", allow_exact_matches=True)
            rid = np.full(n, -1, dtype=np.int64)
            rid[merged["row"].to_numpy()] = merged["rid"].fillna(-1).to_numpy(dtype=np.int64)
            has = rid >= 0
            r = rid[has]

            for name, values in report_features.items():
                out[col[name], has] = values[r]

            c_now = cum_split[has]
            px = price[has]
            shares_now = _positive(shares_base[r]) * c_now
            mcap = px * shares_now
            mcap_pos = _positive(mcap)
            eps_ttm_now = eps_base_ttm[r] / c_now
            ev = mcap + debt[r] - cash[r]
            pe = px / _positive(eps_ttm_now)
            out[col["pe_ttm"], has] = pe
            out[col["peg_ttm"], has] = pe / _positive(eps_yoy[r] * 100.0)
            out[col["pb"], has] = mcap / book_pos[r]
            out[col["ps_ttm"], has] = mcap / rev_pos[r]
            out[col["pfcf_ttm"], has] = mcap / _positive(fcf_ttm[r])
            out[col["ev_ebitda_ttm"], has] = ev / ebitda_pos[r]
            out[col["ev_sales_ttm"], has] = ev / rev_pos[r]
            out[col["earnings_yield_ttm"], has] = eps_ttm_now / px
            out[col["fcf_yield_ttm"], has] = fcf_ttm[r] / mcap_pos
            out[col["book_to_market"], has] = book[r] / mcap_pos
            out[col["log_market_cap"], has] = np.log(mcap_pos)
            out[col["dividend_yield_ttm"], has] = div_ttm[r] / mcap_pos
            out[col["days_since_filing"], has] = (p_int[has] - rep["filing"].view("int64")[r]) // _DAY_NS

        out[~np.isfinite(out)] = np.nan

    frame = pd.DataFrame(out.T, columns=list(FEATURE_NAMES), copy=False)
    frame.insert(0, "trade_date", prices["trade_date"].to_numpy()[order])
    frame.insert(0, "symbol", p_sym_raw[order])
    return frame
