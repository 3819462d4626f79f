"""The row checks every dataset's validator shares: required columns, exact copies,
tickers and the universe, dates and their range, numbers, text, and rows that contradict
each other on a key. Each check records its problems in a `Problems`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.market_data.rejections import Problems, SchemaError, missing_kind, show
from vfr_ml_pipelines.lib.market_data.schema import is_valid_ticker
from vfr_ml_pipelines.lib.dates import is_missing, parse_day


def require_columns(frame: object, columns: Iterable[str], dataset: str, source: str) -> pd.DataFrame:
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


def drop_exact_copies(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    if frame.empty:
        return frame, 0
    try:
        copies = frame.duplicated(keep="first")  # NaN equals NaN here; 10.0 and "10.0" differ
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        copies = frame.astype(str).duplicated(keep="first")
    if not copies.any():
        return frame, 0
    return frame[~copies].reset_index(drop=True), int(copies.sum())


def per_distinct(values: list, function: Callable[[object], object]) -> list:
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


def check_symbols(frame: pd.DataFrame, problems: Problems, known_symbols: Iterable[str] | None) -> np.ndarray:
    symbols = frame["symbol"].tolist()
    valid = np.array(per_distinct(symbols, is_valid_ticker), dtype=bool)
    for row in np.flatnonzero(~valid):
        value = symbols[row]
        if is_missing(value):
            problems.add(int(row), "symbol", "symbol is missing")
        else:
            problems.add(
                int(row), "symbol",
                f"symbol {show(value)} is not a valid ticker (1-10 upper-case letters or digits, "
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


def dates(frame: pd.DataFrame, column: str, problems: Problems, *, required: bool = True) -> list[date | None]:
    values = frame[column].tolist()
    parsed = per_distinct(values, _parse_day_or_marker)
    out: list[date | None] = []
    for row, day in enumerate(parsed):
        if day is _UNPARSEABLE:
            problems.add(row, column, f"{column} {show(values[row])} is not a date (expected YYYY-MM-DD)")
            day = None
        elif day is None and required:
            problems.add(row, column, f"{column} is missing")
        out.append(day)
    return out


def check_dates_in_range(
    days: list[date | None], column: str, problems: Problems, *, start: date | None, end: date | None, today: date | None,
) -> None:
    for row, day in enumerate(days):
        if day is None:
            continue
        if today is not None and day > today:
            problems.add(row, column, f"{column} {day} is in the future (today is {today})")
        elif start is not None and end is not None and not (start <= day <= end):
            problems.add(row, column, f"{column} {day} is outside the requested range {start}..{end}")


def numbers(frame: pd.DataFrame, column: str, problems: Problems, *, required: bool) -> pd.Series:
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
        problems.flag(missing, column, lambda r: f"{column} is missing{missing_kind(raw.iat[r])}")
    problems.flag(values.isna() & ~missing, column, lambda r: f"{column} {show(raw.iat[r])} is not a number")
    problems.flag(pd.Series(np.isinf(values)), column, lambda r: f"{column} is infinite ({show(raw.iat[r])})")
    return values.where(np.isfinite(values))


def text(values: pd.Series, default: str) -> pd.Series:
    return values.map(lambda v: default if is_missing(v) else str(v).strip()).astype(object)


def check_key_conflicts(
    frame: pd.DataFrame, parts: tuple[list, ...], valid_symbol: np.ndarray, column: str, problems: Problems,
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


def raw_text(frame: pd.DataFrame, column: str, row: int) -> str:
    """The value as the provider sent it: its text if it came as text, else the number's
    shortest exact repr (`1e+20`, never an int64 cast of it)."""
    return show(frame[column].iat[row])
