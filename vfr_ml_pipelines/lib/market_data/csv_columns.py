"""From a vendor's columns to the schema's: the price header map, dates, timestamps and
numbers read as far as they parse, and the refusals of a file whose dates cannot be used
at all. A value that does not parse stays as text, so that validation quarantines its row
showing the original.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data.provider import ProviderError
from vfr_ml_pipelines.lib.market_data.rejections import SchemaError
from vfr_ml_pipelines.lib.dates import is_missing, parse_day, parse_timestamp

# Vendor header (compared case-insensitively, "_" read as " ") -> schema column
PRICE_HEADER = {
    "date": "trade_date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "volume": "volume",
    "dividend": "dividend",
    "split ratio": "split_ratio",
}
PRICE_REQUIRED = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
# vendors leave event columns blank on days without an event
EVENT_DEFAULTS = {"dividend": 0.0, "split_ratio": 1.0}


def map_price_header(path: Path, symbol: str, header: list[str]) -> dict[int, str]:
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        column = PRICE_HEADER.get(name.lower().replace("_", " ").strip())
        if column is None:
            continue  # extra vendor columns (e.g. "Currency") are ignored
        if column in columns.values():
            raise SchemaError(f"{path}: column {name!r} appears twice (symbol {symbol})", source=str(path), symbol=symbol)
        columns[i] = column
    present = set(columns.values())
    missing = [name for name in PRICE_REQUIRED if PRICE_HEADER[name.lower()] not in present]
    if missing:
        raise SchemaError(
            f"{path}: missing columns {', '.join(missing)} (symbol {symbol}); expected "
            f"{','.join(PRICE_REQUIRED)}[,Dividend,Split Ratio], the header is {','.join(header)}",
            source=str(path), symbol=symbol, missing=missing,
        )
    return columns


def date_column(path: Path, symbol: str, header: list[str]) -> int:
    for i, name in enumerate(header):
        if PRICE_HEADER.get(name.lower().replace("_", " ").strip()) == "trade_date":
            return i
    raise SchemaError(
        f"{path}: missing columns Date (symbol {symbol}); the header is {','.join(header)}",
        source=str(path), symbol=symbol, missing=["Date"],
    )


def require_a_date(
    path: Path, symbol: str, header: list[str], index: int, rows: list[tuple[int, list[str]]], days: list[object],
) -> None:
    """A file none of whose dates reads (e.g. all `01/02/2024`) is refused as a whole,
    naming the user's column and its first value: quarantining every row for the same
    reason would hide the one fix needed."""
    if any(isinstance(d, date) for d in days):
        return
    line, first = next(((line, row[index]) for line, row in rows if row[index].strip()), (rows[0][0], ""))
    raise ProviderError(
        f"csv: {path}: no value of column {header[index]!r} is a YYYY-MM-DD date (line {line} has {first!r}; "
        f"the order of day and month in other formats would be a guess); convert the dates to ISO",
        symbol=symbol, field=header[index],
    )


def require_ascending(path: Path, symbol: str, lines: list[int], days: list[object]) -> None:
    previous: tuple[int, date] | None = None
    for line, day in zip(lines, days):
        if not isinstance(day, date):
            continue
        if previous is not None and day < previous[1]:
            raise ProviderError(
                f"csv: {path}: dates are not ascending: line {line} has {day} after {previous[1]} on line "
                f"{previous[0]} (vendor exports are sorted; the file is corrupt or two exports were concatenated)",
                symbol=symbol, day=day, field="trade_date",
            )
        previous = (line, day)


def day_or_text(value: str) -> object:
    try:
        return parse_day(value)
    except ValueError:
        return value


def aware_or_text(value: str) -> object:
    """A tz-aware UTC timestamp, or the text itself when it is unparseable or naive
    (validation rejects both and shows the original text)."""
    try:
        stamp = parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return value
    if stamp is None or stamp.tzinfo is None:
        return value if stamp is not None else None
    return stamp.tz_convert("UTC")


def numbers(values: list[str], default: float | None = None) -> pd.Series:
    """float64 if every value parses; otherwise an object column in which the values that
    do not parse stay as text."""
    out: list[object] = []
    clean = True
    for value in values:
        if is_missing(value):
            out.append(np.nan if default is None else default)
            continue
        try:
            # no thousands-separator stripping: "10,5" may be a European decimal, so it is rejected
            out.append(float(value))
        except ValueError:
            out.append(value)
            clean = False
    return pd.Series(out, dtype="float64" if clean else object)


def in_range(frame: pd.DataFrame, days: list[object], start: date, end: date) -> pd.DataFrame:
    # a row whose day could not be read is kept: validation rejects it with the reason
    keep = [not isinstance(d, date) or start <= d <= end for d in days]
    return frame[keep].reset_index(drop=True)
