"""What validation hands back: the clean rows and the rejected ones (`REJECTED_COLUMNS`,
one row per bad input row with every field at fault and every reason), the error of an
input unusable as a whole (`SchemaError`), and `Problems`, which collects a frame's
row-level problems and turns them into rejected rows whose `raw` keeps the values as sent
(JSON-safe, bounded).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

REJECTED_COLUMNS = ("dataset", "symbol", "day", "field", "reason", "raw")

# JSON readers lose integers beyond 2**53: larger raw numbers are kept as their text
_JSON_EXACT_LIMIT = 2.0**53

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


def show(value: object) -> str:
    """A value as it appears in a reason: short, quoted if text."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX_CHARS else value[:_SHOW_MAX_CHARS] + "..."
        return repr(text)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def missing_kind(value: object) -> str:
    if isinstance(value, str):
        return " (blank)"
    if isinstance(value, float):
        return " (NaN)"
    return ""


def json_safe(value: object) -> object:
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


class Problems:
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
                    "raw": {str(c): json_safe(v) for c, v in rows.iloc[row].items()},
                }
            )
        return pd.DataFrame.from_records(records, columns=list(REJECTED_COLUMNS)).astype(object)
