"""Reading a vendor's values: is it missing, which day, which timestamp. Shared by the
providers (which keep what does not parse as text) and validation (which rejects it).
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd


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
