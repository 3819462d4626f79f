"""Training datasets and date-based splits with a purge (no look-ahead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd


@dataclass(frozen=True)
class DateSplit:
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    purged_rows: int

    def as_dict(self) -> dict[str, str | int]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "purged_rows": self.purged_rows,
        }


def join_features_labels(features: pd.DataFrame, labels: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """Inner join on (symbol, trade_date): a row is a sample whose label is known."""
    cols = ["symbol", "trade_date", "forward_return", "excess_return", "known_date"]
    frame = features[["symbol", "trade_date", *feature_names]].merge(labels[cols], on=["symbol", "trade_date"], how="inner")
    return frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def date_split(frame: pd.DataFrame, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame, DateSplit]:
    """Split by date: the last `test_fraction` of days is the test period. Training rows
    whose label becomes known on or after the first test day are purged, so no training
    label overlaps the test period."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    days = sorted(frame["trade_date"].unique())
    if len(days) < 10:
        raise ValueError(f"need at least 10 labelled days to split, got {len(days)}")
    test_start = days[int(len(days) * (1.0 - test_fraction))]
    before = frame[frame["trade_date"] < test_start]
    train = before[before["known_date"] < test_start]
    test = frame[frame["trade_date"] >= test_start]
    if train.empty or test.empty:
        raise ValueError("date split left an empty train or test set")
    split = DateSplit(
        train_start=train["trade_date"].min(),
        train_end=train["trade_date"].max(),
        test_start=test_start,
        test_end=test["trade_date"].max(),
        purged_rows=len(before) - len(train),
    )
    return train, test, split
