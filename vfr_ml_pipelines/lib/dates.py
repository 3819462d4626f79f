"""Calendar days as the code passes them around: parsed from what providers, frames and
callers hand in, and as integer day numbers (days since 1970-01-01) for numpy keys, Parquet
statistics and file names.

* `is_missing`: None, NaN, NaT or blank text;
* `parse_day`: lenient, for raw provider values (missing -> None, ISO date or timestamp text);
* `parse_timestamp`: lenient, for a provider's time stamps (ISO 8601, RFC 2822);
* `as_date`: strict, for an argument of an API (None -> None; a malformed value is an error
  naming the argument);
* `day_numbers`: a whole column at once (missing -> MISSING_DAY);
* `day_number` / `day_from_number` / `iso_day`: one day and its number;
* `symbol_day_keys`: (symbol code, day number) packed into one sortable int64 key
  (`first_row_without_key`: a row that has no such key);
* `utc_now_iso`: the time stamp written into manifests and snapshots."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd

EPOCH = date(1970, 1, 1)
MISSING_DAY = np.iinfo(np.int64).min  # day_numbers of a missing date

# day numbers + DAY_KEY_OFFSET are positive for any plausible date (13,000 years either
# side of 1970), and below SYMBOL_KEY_STRIDE, so symbol * stride + day never collides
DAY_KEY_OFFSET = np.int64(5_000_000)
SYMBOL_KEY_STRIDE = np.int64(10_000_000)


def is_missing(value: object) -> bool:
    """None, NaN, NaT or blank text: a value a vendor left out."""
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.datetime64) and np.isnat(value):
        return True
    return isinstance(value, str) and not value.strip()


def _date_of(value: object) -> date | None:
    """The calendar date of a date, datetime, Timestamp or datetime64 (None for another type)."""
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return None


def parse_day(value: object) -> date | None:
    """A calendar date from a date, a timestamp or an ISO string (`2024-01-31`, optionally
    with a time part). None for a missing value; ValueError for anything else, including
    `01/02/2024`, whose day and month order is a guess."""
    if is_missing(value):
        return None
    day = _date_of(value)
    if day is not None:
        return day
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            try:
                return datetime.fromisoformat(text).date()
            except ValueError:
                raise ValueError(f"not a date: {value!r}") from None
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


def as_date(value: object, name: str) -> date | None:
    """`value` (a date, datetime, Timestamp, datetime64 or `YYYY-MM-DD` string) as a date;
    None stays None. TypeError naming `name` for another type, ValueError for a string that
    is no ISO date."""
    if value is None:
        return None
    day = _date_of(value)
    if day is not None:
        return day
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from None
    raise TypeError(f"{name} must be a date, got {type(value).__name__}")


def day_number(day: date) -> int:
    """Days since 1970-01-01 (negative before it)."""
    return (day - EPOCH).days


def day_from_number(number: int) -> date:
    """The date `number` days after 1970-01-01 (the inverse of `day_number`)."""
    return date.fromordinal(EPOCH.toordinal() + number)


def iso_day(number: int) -> str:
    """`YYYY-MM-DD` of a day number."""
    return day_from_number(number).isoformat()


def utc_now_iso() -> str:
    """Now, in UTC, ISO 8601 to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def day_numbers(values: pd.Series | np.ndarray) -> np.ndarray:
    """Calendar day of each value as int64 days since 1970-01-01 (negative before it;
    MISSING_DAY where missing): dates, datetimes, Timestamps (tz-aware ones on their local
    day) and strings alike."""
    codes, uniques = pd.factorize(pd.Series(values) if not isinstance(values, pd.Series) else values)
    out = np.full(len(codes), MISSING_DAY, dtype=np.int64)
    if len(uniques) == 0:
        return out
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(uniques)))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    days = idx.normalize().as_unit("ns").asi8 // np.int64(86_400_000_000_000)
    ok = codes >= 0
    out[ok] = days[codes[ok]]
    return out


def first_row_without_key(symbol_codes: np.ndarray, days: np.ndarray) -> int | None:
    """The first row without a symbol (code < 0) or a day (MISSING_DAY); None when every
    row has both."""
    bad = (symbol_codes < 0) | (days == MISSING_DAY)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def symbol_day_keys(symbol_codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 per (symbol code, day number), ordered by symbol then day."""
    return symbol_codes * SYMBOL_KEY_STRIDE + (days + DAY_KEY_OFFSET)
