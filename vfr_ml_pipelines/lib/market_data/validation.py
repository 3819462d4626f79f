"""The one gate between any provider and storage.

Every provider returns raw rows in the columns of `schema.py`; the functions here check them
with the same rules whatever their source and split them into `clean` rows (exactly the
schema columns, with proper dtypes) and `rejected` rows. Rejected rows are never dropped:
the pipeline stores them in the quarantine table with a human-readable reason, the field at
fault and the original values, so a data engineer can see what a vendor sent and why it was
refused.

The shared machinery: `rejections.py` (ValidationResult, SchemaError, REJECTED_COLUMNS and
the collection of row problems), `row_checks.py` (the checks every dataset shares),
`lib/dates.py` (reading a day or a time stamp). This module holds each dataset's own rules.

Two kinds of failure:
- a frame that is unusable as a whole (not a frame, missing columns) raises `SchemaError`;
- a bad row becomes one row of `rejected` (`REJECTED_COLUMNS`); when a row has several
  problems, `field` lists every field at fault and `reason` every reason, `; `-separated.

Exact copies of a row are the same fact sent twice: one is kept and the others are counted
in `ValidationResult.duplicates_dropped`. Rows sharing a key but differing in any value are
contradictory and every copy is rejected, since there is no way to tell which one is right.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.rejections import Problems, ValidationResult, show
from vfr_ml_pipelines.lib.market_data.row_checks import (
    check_dates_in_range,
    check_key_conflicts,
    check_symbols,
    dates,
    drop_exact_copies,
    numbers,
    per_distinct,
    raw_text,
    require_columns,
    text,
)
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    FUNDAMENTAL_VALUE_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
)
from vfr_ml_pipelines.lib.dates import is_missing, parse_timestamp

PRICE_FLOAT_COLUMNS = ("open", "high", "low", "close", "adj_close", "dividend", "split_ratio")
POSITIVE_PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")

# Physically plausible ranges, checked on the parsed float64 before any cast to an integer
# type or a store (docs/providers.md, "Plausible ranges"): a value outside is a vendor or
# parsing error, never a fact, and would overflow int64 or swamp every feature built on it.
MAX_PRICE = 1e7  # dollars per share: the dearest US share (BRK.A) has traded below 1e6
MAX_VOLUME = 1e12  # shares a day: the busiest US sessions of any stock are near 1e10
MAX_DIVIDEND = 1e7  # per share, like a price
SPLIT_RATIO_RANGE = (1e-4, 1e4)  # a 1-for-10,000 reverse split .. a 10,000-for-1 split
MAX_INTRADAY_RANGE = 20.0  # high / low: a 1,900 % range within one session is a bad print
MAX_AMOUNT = 1e15  # |any statement amount| in dollars, eps included (the largest annual revenues are ~7e11)
MAX_SHARES = 1e12  # shares outstanding (the largest companies have ~2e10)
# open/close may sit on the high/low; allow for binary float noise, not for real excursions
_RANGE_TOLERANCE = 1e-9


# --- checks of prices alone ------------------------------------------------------------------


def _flag_above(frame: pd.DataFrame, num: dict[str, pd.Series], column: str, limit: float, problems: Problems) -> None:
    problems.flag(
        num[column] > limit, column,
        lambda r: f"{column} {raw_text(frame, column, r)} is above the plausible maximum {limit:g}",
    )


def _session_problem(day: date) -> str | None:
    try:
        if calendar.is_trading_day(day):
            return None
    except Exception:  # outside the calendar's years: the range and future checks say why
        return None
    if day.weekday() >= 5:
        return f"trade_date {day} is a {day.strftime('%A')}, not an NYSE session"
    return f"trade_date {day} is an NYSE holiday (the exchange was closed), not a session"


def _check_sessions(days: list[date | None], problems: Problems) -> None:
    """A bar on a weekend or an exchange holiday is a vendor error (a timestamp shifted by a
    time zone, a filled-in calendar): no trade happened that day."""
    for row, why in enumerate(per_distinct(days, lambda d: None if d is None else _session_problem(d))):
        if why is not None:
            problems.add(row, "trade_date", why)


# --- the datasets --------------------------------------------------------------------------


def validate_prices(
    frame: pd.DataFrame, *, start: date, end: date, today: date, known_symbols: Iterable[str] | None = None, source: str = "",
) -> ValidationResult:
    """Daily bars: every rule in docs/providers.md ("Validation and quarantine")."""
    frame = require_columns(frame, PRICE_COLUMNS, "prices", source)
    frame, dropped = drop_exact_copies(frame)
    problems = Problems()
    valid_symbol = check_symbols(frame, problems, known_symbols)
    days = dates(frame, "trade_date", problems)
    check_dates_in_range(days, "trade_date", problems, start=start, end=end, today=today)

    _check_sessions(days, problems)

    num = {c: numbers(frame, c, problems, required=True) for c in (*PRICE_FLOAT_COLUMNS, "volume")}
    for column in POSITIVE_PRICE_COLUMNS:
        problems.flag(num[column] <= 0, column, lambda r, c=column: f"{c} {show(num[c].iat[r])} is not positive")
        _flag_above(frame, num, column, MAX_PRICE, problems)
    high, low = num["high"], num["low"]
    problems.flag(high < low, "high", lambda r: f"high {show(high.iat[r])} < low {show(low.iat[r])}")
    plausible = (high <= MAX_PRICE) & (low > 0)
    problems.flag(
        plausible & (high > MAX_INTRADAY_RANGE * low), "high",
        lambda r: f"high {show(high.iat[r])} is more than {MAX_INTRADAY_RANGE:g} x low {show(low.iat[r])} "
                  "(an implausible range within one session: a bad print)",
    )
    ordered = high >= low
    for column in ("open", "close"):
        value = num[column]
        slack = _RANGE_TOLERANCE * high.abs()
        outside = ordered & ((value < low - slack) | (value > high + slack))
        problems.flag(
            outside, column,
            lambda r, c=column, v=value: f"{c} {show(v.iat[r])} is outside [low {show(low.iat[r])}, high {show(high.iat[r])}]",
        )
    volume = num["volume"]
    problems.flag(volume < 0, "volume", lambda r: f"volume {show(volume.iat[r])} is negative")
    _flag_above(frame, num, "volume", MAX_VOLUME, problems)
    problems.flag(
        (volume >= 0) & (volume <= MAX_VOLUME) & (volume % 1 != 0), "volume",
        lambda r: f"volume {show(volume.iat[r])} is not a whole number",
    )
    split, dividend = num["split_ratio"], num["dividend"]
    problems.flag(split <= 0, "split_ratio", lambda r: f"split_ratio {show(split.iat[r])} is not positive (1.0 means no split)")
    lowest, highest = SPLIT_RATIO_RANGE
    problems.flag(
        (split > 0) & ((split < lowest) | (split > highest)), "split_ratio",
        lambda r: f"split_ratio {raw_text(frame, 'split_ratio', r)} is outside the plausible range {lowest:g}..{highest:g}",
    )
    problems.flag(dividend < 0, "dividend", lambda r: f"dividend {show(dividend.iat[r])} is negative")
    _flag_above(frame, num, "dividend", MAX_DIVIDEND, problems)

    # a copy that is already rejected (a zero bar beside the real one, as vendors sometimes
    # repeat a day) does not contradict the valid copy: only valid rows can conflict
    check_key_conflicts(
        frame, (days,), valid_symbol & ~problems.bad(len(frame)), "trade_date", problems, lambda k: f"{k[0]} on {k[1]}"
    )

    good = ~problems.bad(len(frame))
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "trade_date": pd.Series([d for d, g in zip(days, good) if g], index=frame.index[good], dtype=object),
            **{c: num[c][good].astype("float64") for c in ("open", "high", "low", "close", "adj_close")},
            "volume": num["volume"][good].astype("int64"),
            "dividend": num["dividend"][good].astype("float64"),
            "split_ratio": num["split_ratio"][good].astype("float64"),
        },
        columns=list(PRICE_COLUMNS),
    )
    clean = clean.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)
    return ValidationResult(clean, problems.frame("prices", frame, days), dropped)


def validate_fundamentals(
    frame: pd.DataFrame, *, start: date, end: date, today: date, known_symbols: Iterable[str] | None = None, source: str = "",
) -> ValidationResult:
    """Quarterly reports, usable from `filing_date` on. Missing statement items (NaN) are
    allowed, since not every company reports every line (a bank has no inventory); values
    that are present must be finite numbers."""
    frame = require_columns(frame, FUNDAMENTAL_COLUMNS, "fundamentals", source)
    frame, dropped = drop_exact_copies(frame)
    problems = Problems()
    valid_symbol = check_symbols(frame, problems, known_symbols)
    period_end = dates(frame, "period_end", problems)
    filing = dates(frame, "filing_date", problems)
    for row, (period, filed) in enumerate(zip(period_end, filing)):
        if period is not None and filed is not None and filed < period:
            problems.add(row, "filing_date", f"filed before its period ended (filing_date {filed} < period_end {period})")
    check_dates_in_range(filing, "filing_date", problems, start=start, end=end, today=today)

    num = {c: numbers(frame, c, problems, required=False) for c in FUNDAMENTAL_VALUE_COLUMNS}
    shares = num["shares_outstanding"]
    problems.flag(shares <= 0, "shares_outstanding", lambda r: f"shares_outstanding {show(shares.iat[r])} is not positive")
    for column in FUNDAMENTAL_VALUE_COLUMNS:
        limit = MAX_SHARES if column == "shares_outstanding" else MAX_AMOUNT
        problems.flag(
            num[column].abs() > limit, column,
            lambda r, c=column, limit=limit: f"{c} {raw_text(frame, c, r)} is beyond the plausible magnitude {limit:g}",
        )

    # an amendment re-files the same period on a later day: a second, legitimate row
    check_key_conflicts(
        frame, (period_end, filing), valid_symbol, "period_end", problems, lambda k: f"{k[0]} period {k[1]} filed {k[2]}"
    )

    good = ~problems.bad(len(frame))
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "period_end": pd.Series([d for d, g in zip(period_end, good) if g], index=frame.index[good], dtype=object),
            "filing_date": pd.Series([d for d, g in zip(filing, good) if g], index=frame.index[good], dtype=object),
            "fiscal_period": text(frame["fiscal_period"][good], ""),
            **{c: num[c][good].astype("float64") for c in FUNDAMENTAL_VALUE_COLUMNS},
        },
        columns=list(FUNDAMENTAL_COLUMNS),
    )
    clean = clean.sort_values(["symbol", "period_end", "filing_date"], kind="stable").reset_index(drop=True)
    days = [f if f is not None else p for f, p in zip(filing, period_end)]
    return ValidationResult(clean, problems.frame("fundamentals", frame, days), dropped)


def validate_news(
    frame: pd.DataFrame, *, start: date, end: date, today: date, known_symbols: Iterable[str] | None = None, source: str = "",
) -> ValidationResult:
    """Headlines: `published_at` must carry a time zone (a naive time is ambiguous by up to
    a day around the close) and its session (`calendar.session_of`) must be in [start, end]."""
    frame = require_columns(frame, NEWS_COLUMNS, "news", source)
    frame, dropped = drop_exact_copies(frame)
    problems = Problems()
    check_symbols(frame, problems, known_symbols)

    stamps: list[pd.Timestamp | None] = []
    days: list[date | None] = []
    for row, value in enumerate(frame["published_at"].tolist()):
        stamp, day = None, None
        try:
            parsed = parse_timestamp(value)
        except (ValueError, TypeError, OverflowError):
            problems.add(row, "published_at", f"published_at {show(value)} is not a timestamp")
            parsed = None
        else:
            if parsed is None:
                problems.add(row, "published_at", "published_at is missing")
            elif parsed.tzinfo is None:
                problems.add(
                    row, "published_at", f"published_at {show(value)} has no time zone (naive timestamps are ambiguous)"
                )
                parsed = None
        if parsed is not None:
            stamp = parsed.tz_convert("UTC")
            local_day = stamp.tz_convert(calendar.MARKET_TZ).date()
            day = local_day
            if local_day > today:
                problems.add(row, "published_at", f"published_at {stamp.isoformat()} is in the future (today is {today})")
            else:
                try:
                    day = calendar.session_of(stamp)
                except Exception:  # exchange_calendars raises its own out-of-bounds errors
                    problems.add(row, "published_at", f"published_at {stamp.isoformat()} is outside the trading calendar")
                else:
                    if not (start <= day <= end):
                        problems.add(
                            row, "published_at",
                            f"published_at {stamp.isoformat()} belongs to session {day}, "
                            f"outside the requested range {start}..{end}",
                        )
        stamps.append(stamp)
        days.append(day)

    headlines = frame["headline"].tolist()
    for row, headline in enumerate(headlines):
        if is_missing(headline):
            problems.add(row, "headline", "headline is empty")

    good = ~problems.bad(len(frame))
    kept = [s for s, g in zip(stamps, good) if g]
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "published_at": pd.Series(kept, index=frame.index[good], dtype="datetime64[ns, UTC]"),
            "headline": text(frame["headline"][good], ""),
            "source": text(frame["source"][good], ""),
            "url": text(frame["url"][good], ""),
        },
        columns=list(NEWS_COLUMNS),
    )
    clean = clean.sort_values(["symbol", "published_at"], kind="stable").reset_index(drop=True)
    return ValidationResult(clean, problems.frame("news", frame, days), dropped)


def validate_universe(frame: pd.DataFrame, *, today: date | None = None, source: str = "") -> ValidationResult:
    """Symbol master rows. A missing sector becomes "Unknown" (a symbol is still tradeable
    without one); a missing `listed_on` is rejected, since membership starts there."""
    frame = require_columns(frame, UNIVERSE_COLUMNS, "universe", source)
    frame, dropped = drop_exact_copies(frame)
    problems = Problems()
    valid_symbol = check_symbols(frame, problems, None)
    listed = dates(frame, "listed_on", problems)
    delisted = dates(frame, "delisted_on", problems, required=False)
    check_dates_in_range(listed, "listed_on", problems, start=None, end=None, today=today)
    for row, (on, off) in enumerate(zip(listed, delisted)):
        if on is not None and off is not None and off < on:
            problems.add(row, "delisted_on", f"delisted before it was listed (delisted_on {off} < listed_on {on})")
    check_key_conflicts(frame, (), valid_symbol, "symbol", problems, lambda k: f"symbol {k[0]}")

    good = ~problems.bad(len(frame))
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "name": text(frame["name"][good], ""),
            "sector": text(frame["sector"][good], "Unknown"),
            "listed_on": pd.Series([d for d, g in zip(listed, good) if g], index=frame.index[good], dtype=object),
            "delisted_on": pd.Series([d for d, g in zip(delisted, good) if g], index=frame.index[good], dtype=object),
        },
        columns=list(UNIVERSE_COLUMNS),
    )
    clean = clean.sort_values("symbol", kind="stable").reset_index(drop=True)
    return ValidationResult(clean, problems.frame("universe", frame, listed), dropped)
