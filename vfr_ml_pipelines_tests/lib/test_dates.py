"""`lib/dates.py` by hand: the parsers, day numbers both ways, the (symbol, day) keys."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib import dates

D = date(2024, 1, 31)


@pytest.mark.parametrize("value", [
    D, datetime(2024, 1, 31, 23, 59), pd.Timestamp("2024-01-31 09:30"), np.datetime64("2024-01-31"),
    "2024-01-31", " 2024-01-31 ", "2024-01-31T16:00:00", "2024-01-31 16:00:00+00:00",
])
def test_parse_day_takes_dates_timestamps_and_iso_text(value):
    assert dates.parse_day(value) == D


@pytest.mark.parametrize("value", [None, float("nan"), pd.NaT, np.datetime64("NaT"), "", "   "])
def test_parse_day_gives_none_for_a_missing_value(value):
    assert dates.parse_day(value) is None


@pytest.mark.parametrize("value", ["01/02/2024", "2024-13-01", "yesterday", 20240131, 3.5])
def test_parse_day_refuses_anything_else_saying_what_it_got(value):
    with pytest.raises(ValueError, match=f"not a date: {value!r}"):
        dates.parse_day(value)


def test_as_date_is_strict_and_names_the_argument():
    assert dates.as_date(None, "start") is None
    assert dates.as_date("2024-01-31", "start") == D
    assert dates.as_date(pd.Timestamp("2024-01-31 10:00"), "start") == D
    assert dates.as_date(np.datetime64("2024-01-31"), "start") == D
    with pytest.raises(TypeError, match="end must be a date, got int"):
        dates.as_date(20240131, "end")
    with pytest.raises(ValueError, match=r"day must be a date \(YYYY-MM-DD\), got '31/01/2024'"):
        dates.as_date("31/01/2024", "day")


def test_day_numbers_count_from_1970_both_ways():
    assert dates.day_number(date(1970, 1, 1)) == 0
    assert dates.day_number(date(1970, 1, 2)) == 1
    assert dates.day_number(date(1969, 12, 31)) == -1
    for number in (-40_000, -1, 0, 1, 19_753, 60_000):
        assert dates.day_number(dates.day_from_number(number)) == number
    assert dates.iso_day(19_753) == "2024-01-31" == D.isoformat()


def test_day_numbers_of_a_column_whatever_the_date_type():
    values = pd.Series([D, None, pd.Timestamp("2024-01-31 22:00"), "1969-12-31", np.datetime64("1970-01-01")],
                       dtype=object)
    assert dates.day_numbers(values).tolist() == [19_753, dates.MISSING_DAY, 19_753, -1, 0]
    # a tz-aware time stamp counts on its own local day (22:00 in New York is the next day in UTC)
    local = pd.Series(pd.to_datetime(["2024-01-31 22:00"]).tz_localize("America/New_York"))
    assert dates.day_numbers(local).tolist() == [19_753]
    assert dates.day_numbers(np.array([], dtype=object)).tolist() == []


def test_symbol_day_keys_sort_by_symbol_then_day_before_1970_too():
    symbols = np.array([1, 0, 1, 0], dtype=np.int64)
    days = np.array([-5, 19_753, -6, -40_000], dtype=np.int64)
    keys = dates.symbol_day_keys(symbols, days)
    assert np.argsort(keys).tolist() == [3, 1, 2, 0]
    assert (keys >= 0).all()


def test_utc_now_is_iso_to_the_millisecond_in_utc():
    stamp = dates.utc_now_iso()
    parsed = datetime.fromisoformat(stamp)
    assert parsed.tzinfo is not None and parsed.utcoffset() == timezone.utc.utcoffset(None)
    assert len(stamp.split(".")[1]) == len("123+00:00")
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 60


def test_the_first_row_without_a_symbol_or_a_day():
    days = np.array([3, dates.MISSING_DAY, 5], dtype=np.int64)
    assert dates.first_row_without_key(np.array([0, 1, -1]), days) == 1
    assert dates.first_row_without_key(np.array([0, -1, 2]), np.array([3, 4, 5])) == 1
    assert dates.first_row_without_key(np.array([0, 1, 2]), np.array([3, 4, 5])) is None
