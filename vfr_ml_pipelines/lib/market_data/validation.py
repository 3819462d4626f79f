"""The one gate between any provider and storage.

Every provider returns raw rows in the columns of `schema.py`; the functions here check them
with the same rules whatever their source and split them into `clean` rows (exactly the
schema columns, with proper dtypes) and `rejected` rows. Rejected rows are never dropped:
the pipeline stores them in the quarantine table with a human-readable reason, the field at
fault and the original values, so a data engineer can see what a vendor sent and why it was
refused.

Two kinds of failure:
- a frame that is unusable as a whole (not a frame, missing columns) raises `SchemaError`;
- a bad row becomes one row of `rejected` (`REJECTED_COLUMNS`); when a row has several
  problems, `field` lists every field at fault and `reason` every reason, `; `-separated.

Exact copies of a row are the same fact sent twice: one is kept and the others are counted
in `ValidationResult.duplicates_dropped`. Rows sharing a key but differing in any value are
contradictory and every copy is rejected, since there is no way to tell which one is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.schema import (
    FUNDAMENTAL_COLUMNS,
    FUNDAMENTAL_VALUE_COLUMNS,
    NEWS_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    is_valid_ticker,
)

REJECTED_COLUMNS = ("dataset", "symbol", "day", "field", "reason", "raw")

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
# JSON readers lose integers beyond 2**53: larger raw numbers are kept as their text
_JSON_EXACT_LIMIT = 2.0**53

# open/close may sit on the high/low; allow for binary float noise, not for real excursions
_RANGE_TOLERANCE = 1e-9
# raw values are kept whole up to this length (a megabyte "symbol" is an attack, not data)
_RAW_MAX_CHARS = 1000
_SHOW_MAX_CHARS = 40


class SchemaError(ValueError):
    """Input that is unusable as a whole: not a frame, missing columns, an empty file.
    The message names the source (file or endpoint), the symbol when known and what is
    missing."""

    def __init__(self, message: str, *, source: str = "", symbol: str | None = None, missing: Iterable[str] = ()):
        super().__init__(message)
        self.source = source
        self.symbol = symbol
        self.missing = tuple(missing)


@dataclass
class ValidationResult:
    clean: pd.DataFrame
    rejected: pd.DataFrame
    duplicates_dropped: int = 0


def empty_rejected() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECTED_COLUMNS})


# --- value parsing shared with the providers -------------------------------------------------


def is_missing(value: object) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return False


def parse_day(value: object) -> date | None:
    """A calendar date from a date, a timestamp or an ISO string (`2024-01-31`, optionally
    with a time part). None for a missing value; ValueError for anything else, including
    `01/02/2024`, whose day and month order is a guess."""
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            return datetime.fromisoformat(text).date()
    raise ValueError(f"not a date: {value!r}")


def parse_timestamp(value: object) -> pd.Timestamp | None:
    """A timestamp from a Timestamp/datetime or a string (ISO 8601 preferred). None for a
    missing value; ValueError if unparseable. Naive results are returned naive: the caller
    decides whether a time zone is required."""
    if is_missing(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime, np.datetime64)):
        return pd.Timestamp(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return pd.Timestamp(datetime.fromisoformat(text))
        except ValueError:
            stamp = pd.Timestamp(text)  # RFC 2822 and other vendor spellings
            if stamp is pd.NaT:
                raise ValueError(f"not a timestamp: {value!r}") from None
            return stamp
    raise ValueError(f"not a timestamp: {value!r}")


# --- the checks ------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as it appears in a reason: short, quoted if text."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX_CHARS else value[:_SHOW_MAX_CHARS] + "..."
        return repr(text)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def _missing_kind(value: object) -> str:
    if isinstance(value, str):
        return " (blank)"
    if isinstance(value, float):
        return " (NaN)"
    return ""


def _json_safe(value: object) -> object:
    if value is None or value is pd.NaT:
        return None if value is None else "NaT"
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value) if abs(int(value)) < _JSON_EXACT_LIMIT else str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        # 'nan', 'inf', '-inf', and absurd magnitudes as text ('1e+300'), exactly as parsed
        return number if math.isfinite(number) and abs(number) < _JSON_EXACT_LIMIT else repr(number)
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _RAW_MAX_CHARS else text[:_RAW_MAX_CHARS] + "...(truncated)"


class _Problems:
    """Row-level problems by row position, in the order they were found."""

    def __init__(self) -> None:
        self.found: dict[int, list[tuple[str, str]]] = {}

    def add(self, row: int, field: str, reason: str) -> None:
        self.found.setdefault(row, []).append((field, reason))

    def flag(self, mask: pd.Series, field: str, reason: Callable[[int], str]) -> None:
        for row in np.flatnonzero(mask.to_numpy(dtype=bool)):
            self.add(int(row), field, reason(int(row)))

    def bad(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[list(self.found)] = True
        return out

    def frame(self, dataset: str, rows: pd.DataFrame, days: list[date | None]) -> pd.DataFrame:
        if not self.found:
            return empty_rejected()
        records = []
        symbols = rows["symbol"].tolist() if "symbol" in rows.columns else [None] * len(rows)
        for row in sorted(self.found):
            problems = self.found[row]
            fields = list(dict.fromkeys(f for f, _ in problems))
            symbol = symbols[row]
            records.append(
                {
                    "dataset": dataset,
                    "symbol": symbol[:_RAW_MAX_CHARS] if isinstance(symbol, str) else None,
                    "day": days[row],
                    "field": ",".join(fields),
                    "reason": "; ".join(r for _, r in problems),
                    "raw": {str(c): _json_safe(v) for c, v in rows.iloc[row].items()},
                }
            )
        return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS)).astype(object)


def _require_columns(frame: object, columns: Iterable[str], dataset: str, source: str) -> pd.DataFrame:
    where = source or "input"
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{where}: {dataset} must be a DataFrame, got {type(frame).__name__}", source=source)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        symbol = _single_symbol(frame)
        about = f" for symbol {symbol}" if symbol else ""
        raise SchemaError(
            f"{where}: {dataset}{about} is missing columns {', '.join(missing)} "
            f"(has {', '.join(map(str, frame.columns)) or 'no columns'})",
            source=source, symbol=symbol, missing=missing,
        )
    return frame.reset_index(drop=True)


def _single_symbol(frame: pd.DataFrame) -> str | None:
    if "symbol" not in frame.columns:
        return None
    values = frame["symbol"].dropna().unique()
    return str(values[0]) if len(values) == 1 else None


def _drop_exact_copies(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    if frame.empty:
        return frame, 0
    try:
        copies = frame.duplicated(keep="first")  # NaN equals NaN here; 10.0 and "10.0" differ
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        copies = frame.astype(str).duplicated(keep="first")
    if not copies.any():
        return frame, 0
    return frame[~copies].reset_index(drop=True), int(copies.sum())


def _per_distinct(values: list, function: Callable[[object], object]) -> list:
    """`function` applied once per distinct value: a column repeats few distinct dates or
    symbols over many rows."""
    cache: dict = {}
    out = []
    for value in values:
        try:
            result = cache[value]
        except KeyError:
            result = cache[value] = function(value)
        except TypeError:  # unhashable
            result = function(value)
        out.append(result)
    return out


def _check_symbols(frame: pd.DataFrame, problems: _Problems, known_symbols: Iterable[str] | None) -> np.ndarray:
    symbols = frame["symbol"].tolist()
    valid = np.array(_per_distinct(symbols, is_valid_ticker), dtype=bool)
    for row in np.flatnonzero(~valid):
        value = symbols[row]
        if is_missing(value):
            problems.add(int(row), "symbol", "symbol is missing")
        else:
            problems.add(
                int(row), "symbol",
                f"symbol {_show(value)} is not a valid ticker (1-10 upper-case letters or digits, "
                "optional .X or -X class suffix)",
            )
    if known_symbols is not None:
        known = set(known_symbols)
        for row in np.flatnonzero(valid):
            if symbols[row] not in known:
                problems.add(int(row), "symbol", f"symbol {symbols[row]} is not in the universe")
    return valid


_UNPARSEABLE = object()


def _parse_day_or_marker(value: object) -> object:
    try:
        return parse_day(value)
    except (ValueError, TypeError, OverflowError):
        return _UNPARSEABLE


def _dates(frame: pd.DataFrame, column: str, problems: _Problems, *, required: bool = True) -> list[date | None]:
    values = frame[column].tolist()
    parsed = _per_distinct(values, _parse_day_or_marker)
    out: list[date | None] = []
    for row, day in enumerate(parsed):
        if day is _UNPARSEABLE:
            problems.add(row, column, f"{column} {_show(values[row])} is not a date (expected YYYY-MM-DD)")
            day = None
        elif day is None and required:
            problems.add(row, column, f"{column} is missing")
        out.append(day)
    return out


def _check_dates_in_range(
    days: list[date | None], column: str, problems: _Problems, *, start: date | None, end: date | None, today: date | None,
) -> None:
    for row, day in enumerate(days):
        if day is None:
            continue
        if today is not None and day > today:
            problems.add(row, column, f"{column} {day} is in the future (today is {today})")
        elif start is not None and end is not None and not (start <= day <= end):
            problems.add(row, column, f"{column} {day} is outside the requested range {start}..{end}")


def _numbers(frame: pd.DataFrame, column: str, problems: _Problems, *, required: bool) -> pd.Series:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    if raw.dtype == object or pd.api.types.is_bool_dtype(raw):
        # to_numeric reads True as 1.0; a flag where a price belongs is not a number
        flags = raw.map(lambda v: isinstance(v, (bool, np.bool_))).astype(bool)
        values = values.mask(flags)
        missing = raw.map(is_missing).astype(bool)
    else:
        missing = raw.isna()
    if required:
        problems.flag(missing, column, lambda r: f"{column} is missing{_missing_kind(raw.iat[r])}")
    problems.flag(values.isna() & ~missing, column, lambda r: f"{column} {_show(raw.iat[r])} is not a number")
    problems.flag(pd.Series(np.isinf(values)), column, lambda r: f"{column} is infinite ({_show(raw.iat[r])})")
    return values.where(np.isfinite(values))


def _text(values: pd.Series, default: str) -> pd.Series:
    return values.map(lambda v: default if is_missing(v) else str(v).strip()).astype(object)


def _check_key_conflicts(
    frame: pd.DataFrame, parts: tuple[list, ...], valid_symbol: np.ndarray, column: str, problems: _Problems,
    describe: Callable[[tuple], str],
) -> None:
    """Rows sharing a key (symbol plus `parts`) after exact copies were removed contradict
    each other: every copy is rejected. Rows without a complete key are already rejected."""
    keys = pd.DataFrame({"symbol": frame["symbol"], **{f"k{i}": part for i, part in enumerate(parts)}})
    complete = valid_symbol & keys.notna().all(axis=1).to_numpy()
    clashing = np.zeros(len(keys), dtype=bool)
    clashing[complete] = keys[complete].duplicated(keep=False).to_numpy()
    if not clashing.any():
        return
    rows = np.flatnonzero(clashing)
    groups = keys.iloc[rows].groupby(list(keys.columns), sort=False).indices
    for key, members in groups.items():
        key = key if isinstance(key, tuple) else (key,)
        for member in members:
            problems.add(int(rows[member]), column, f"{len(members)} different rows for {describe(key)}; every copy is rejected")


def _raw_text(frame: pd.DataFrame, column: str, row: int) -> str:
    """The value as the provider sent it: its text if it came as text, else the number's
    shortest exact repr (`1e+20`, never an int64 cast of it)."""
    return _show(frame[column].iat[row])


def _flag_above(frame: pd.DataFrame, num: dict[str, pd.Series], column: str, limit: float, problems: _Problems) -> None:
    problems.flag(
        num[column] > limit, column,
        lambda r: f"{column} {_raw_text(frame, column, r)} is above the plausible maximum {limit:g}",
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


def _check_sessions(days: list[date | None], problems: _Problems) -> None:
    """A bar on a weekend or an exchange holiday is a vendor error (a timestamp shifted by a
    time zone, a filled-in calendar): no trade happened that day."""
    for row, why in enumerate(_per_distinct(days, lambda d: None if d is None else _session_problem(d))):
        if why is not None:
            problems.add(row, "trade_date", why)


# --- the datasets --------------------------------------------------------------------------


def validate_prices(
    frame: pd.DataFrame, *, start: date, end: date, today: date, known_symbols: Iterable[str] | None = None, source: str = "",
) -> ValidationResult:
    """Daily bars: every rule in docs/providers.md ("Validation and quarantine")."""
    frame = _require_columns(frame, PRICE_COLUMNS, "prices", source)
    frame, dropped = _drop_exact_copies(frame)
    problems = _Problems()
    valid_symbol = _check_symbols(frame, problems, known_symbols)
    days = _dates(frame, "trade_date", problems)
    _check_dates_in_range(days, "trade_date", problems, start=start, end=end, today=today)

    _check_sessions(days, problems)

    num = {c: _numbers(frame, c, problems, required=True) for c in (*PRICE_FLOAT_COLUMNS, "volume")}
    for column in POSITIVE_PRICE_COLUMNS:
        problems.flag(num[column] <= 0, column, lambda r, c=column: f"{c} {_show(num[c].iat[r])} is not positive")
        _flag_above(frame, num, column, MAX_PRICE, problems)
    high, low = num["high"], num["low"]
    problems.flag(high < low, "high", lambda r: f"high {_show(high.iat[r])} < low {_show(low.iat[r])}")
    plausible = (high <= MAX_PRICE) & (low > 0)
    problems.flag(
        plausible & (high > MAX_INTRADAY_RANGE * low), "high",
        lambda r: f"high {_show(high.iat[r])} is more than {MAX_INTRADAY_RANGE:g} x low {_show(low.iat[r])} "
                  "(an implausible range within one session: a bad print)",
    )
    ordered = high >= low
    for column in ("open", "close"):
        value = num[column]
        slack = _RANGE_TOLERANCE * high.abs()
        outside = ordered & ((value < low - slack) | (value > high + slack))
        problems.flag(
            outside, column,
            lambda r, c=column, v=value: f"{c} {_show(v.iat[r])} is outside [low {_show(low.iat[r])}, high {_show(high.iat[r])}]",
        )
    volume = num["volume"]
    problems.flag(volume < 0, "volume", lambda r: f"volume {_show(volume.iat[r])} is negative")
    _flag_above(frame, num, "volume", MAX_VOLUME, problems)
    problems.flag(
        (volume >= 0) & (volume <= MAX_VOLUME) & (volume % 1 != 0), "volume",
        lambda r: f"volume {_show(volume.iat[r])} is not a whole number",
    )
    split, dividend = num["split_ratio"], num["dividend"]
    problems.flag(split <= 0, "split_ratio", lambda r: f"split_ratio {_show(split.iat[r])} is not positive (1.0 means no split)")
    lowest, highest = SPLIT_RATIO_RANGE
    problems.flag(
        (split > 0) & ((split < lowest) | (split > highest)), "split_ratio",
        lambda r: f"split_ratio {_raw_text(frame, 'split_ratio', r)} is outside the plausible range {lowest:g}..{highest:g}",
    )
    problems.flag(dividend < 0, "dividend", lambda r: f"dividend {_show(dividend.iat[r])} is negative")
    _flag_above(frame, num, "dividend", MAX_DIVIDEND, problems)

    # a copy that is already rejected (a zero bar beside the real one, as vendors sometimes
    # repeat a day) does not contradict the valid copy: only valid rows can conflict
    _check_key_conflicts(
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
    frame = _require_columns(frame, FUNDAMENTAL_COLUMNS, "fundamentals", source)
    frame, dropped = _drop_exact_copies(frame)
    problems = _Problems()
    valid_symbol = _check_symbols(frame, problems, known_symbols)
    period_end = _dates(frame, "period_end", problems)
    filing = _dates(frame, "filing_date", problems)
    for row, (period, filed) in enumerate(zip(period_end, filing)):
        if period is not None and filed is not None and filed < period:
            problems.add(row, "filing_date", f"filed before its period ended (filing_date {filed} < period_end {period})")
    _check_dates_in_range(filing, "filing_date", problems, start=start, end=end, today=today)

    num = {c: _numbers(frame, c, problems, required=False) for c in FUNDAMENTAL_VALUE_COLUMNS}
    shares = num["shares_outstanding"]
    problems.flag(shares <= 0, "shares_outstanding", lambda r: f"shares_outstanding {_show(shares.iat[r])} is not positive")
    for column in FUNDAMENTAL_VALUE_COLUMNS:
        limit = MAX_SHARES if column == "shares_outstanding" else MAX_AMOUNT
        problems.flag(
            num[column].abs() > limit, column,
            lambda r, c=column, limit=limit: f"{c} {_raw_text(frame, c, r)} is beyond the plausible magnitude {limit:g}",
        )

    # an amendment re-files the same period on a later day: a second, legitimate row
    _check_key_conflicts(
        frame, (period_end, filing), valid_symbol, "period_end", problems, lambda k: f"{k[0]} period {k[1]} filed {k[2]}"
    )

    good = ~problems.bad(len(frame))
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "period_end": pd.Series([d for d, g in zip(period_end, good) if g], index=frame.index[good], dtype=object),
            "filing_date": pd.Series([d for d, g in zip(filing, good) if g], index=frame.index[good], dtype=object),
            "fiscal_period": _text(frame["fiscal_period"][good], ""),
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
    frame = _require_columns(frame, NEWS_COLUMNS, "news", source)
    frame, dropped = _drop_exact_copies(frame)
    problems = _Problems()
    _check_symbols(frame, problems, known_symbols)

    stamps: list[pd.Timestamp | None] = []
    days: list[date | None] = []
    for row, value in enumerate(frame["published_at"].tolist()):
        stamp, day = None, None
        try:
            parsed = parse_timestamp(value)
        except (ValueError, TypeError, OverflowError):
            problems.add(row, "published_at", f"published_at {_show(value)} is not a timestamp")
            parsed = None
        else:
            if parsed is None:
                problems.add(row, "published_at", "published_at is missing")
            elif parsed.tzinfo is None:
                problems.add(
                    row, "published_at", f"published_at {_show(value)} has no time zone (naive timestamps are ambiguous)"
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
            "headline": _text(frame["headline"][good], ""),
            "source": _text(frame["source"][good], ""),
            "url": _text(frame["url"][good], ""),
        },
        columns=list(NEWS_COLUMNS),
    )
    clean = clean.sort_values(["symbol", "published_at"], kind="stable").reset_index(drop=True)
    return ValidationResult(clean, problems.frame("news", frame, days), dropped)


def validate_universe(frame: pd.DataFrame, *, today: date | None = None, source: str = "") -> ValidationResult:
    """Symbol master rows. A missing sector becomes "Unknown" (a symbol is still tradeable
    without one); a missing `listed_on` is rejected, since membership starts there."""
    frame = _require_columns(frame, UNIVERSE_COLUMNS, "universe", source)
    frame, dropped = _drop_exact_copies(frame)
    problems = _Problems()
    valid_symbol = _check_symbols(frame, problems, None)
    listed = _dates(frame, "listed_on", problems)
    delisted = _dates(frame, "delisted_on", problems, required=False)
    _check_dates_in_range(listed, "listed_on", problems, start=None, end=None, today=today)
    for row, (on, off) in enumerate(zip(listed, delisted)):
        if on is not None and off is not None and off < on:
            problems.add(row, "delisted_on", f"delisted before it was listed (delisted_on {off} < listed_on {on})")
    _check_key_conflicts(frame, (), valid_symbol, "symbol", problems, lambda k: f"symbol {k[0]}")

    good = ~problems.bad(len(frame))
    clean = pd.DataFrame(
        {
            "symbol": frame["symbol"][good].astype(str).astype(object),
            "name": _text(frame["name"][good], ""),
            "sector": _text(frame["sector"][good], "Unknown"),
            "listed_on": pd.Series([d for d, g in zip(listed, good) if g], index=frame.index[good], dtype=object),
            "delisted_on": pd.Series([d for d, g in zip(delisted, good) if g], index=frame.index[good], dtype=object),
        },
        columns=list(UNIVERSE_COLUMNS),
    )
    clean = clean.sort_values("symbol", kind="stable").reset_index(drop=True)
    return ValidationResult(clean, problems.frame("universe", frame, listed), dropped)
