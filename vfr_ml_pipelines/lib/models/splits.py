"""Purged walk-forward splits with an embargo, on the frame's own trading sessions.

Sessions are the sorted distinct ``trade_date`` values present in the frame (not a
calendar): "k sessions" always means k of those.

Layout of one test fold (``e`` = ``embargo_days``)::

    [ training window ][ e ][ val_days sessions of validation ][ e ][ test fold ]

* The ``n_folds`` test folds are contiguous, do not overlap, and together cover the last
  ``round(test_fraction * n_sessions)`` sessions, in order (``numpy.array_split`` sizes:
  the earlier folds get the extra session when the count does not divide evenly).
* The validation window of a test fold is the ``val_days`` sessions that end ``e``
  sessions before the test fold starts. The training window ends right before the
  validation window: it starts at the first session ("expanding") or is the last
  ``train_days`` sessions before the validation window ("rolling"; shorter when the data
  does not reach back that far). The embargo sessions belong to the window before them,
  so the purge and embargo below remove them.
* The final (production) fold has no test: its validation window is the last
  ``val_days`` sessions of the data and its training window ends right before it.

Purge and embargo, applied at each boundary B (B = ``val_start`` for the training rows,
B = ``test_start`` for the validation rows of a test fold):

* **Purge**: a row is kept only if ``known_date < B``: its label is fully known before the
  next segment begins, so no label of one segment overlaps the next (the dropped rows are
  at least the horizon's last sessions, by construction of ``known_date``).
* **Embargo**: a row is kept only if ``trade_date < session(B) - e``, i.e. its trade date
  is before the e-th session preceding B. Exactly ``e`` sessions lie strictly between the
  last session a kept row may have and B (``embargo_days=0``: no embargo).

Rows failing the purge are counted in ``purged_rows``; rows that pass the purge but fail
the embargo are counted in ``embargoed_rows`` (with an embargo no longer than the horizon,
the purge already removes most of them). The validation rows of the final fold are not
purged: nothing follows them. All row counts are after purge and embargo, and the dates
of a ``Fold`` are the first and last ``trade_date`` of the rows actually kept, except
``val_start`` and ``test_start``, which are the first sessions of their windows (the purge
boundaries; rows do exist on them unless a purge removed them all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from numbers import Integral, Real

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.dates import MISSING_DAY, day_numbers

SCHEMES = ("expanding", "rolling")
_EPOCH = date(1970, 1, 1)


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class WalkForwardConfig:
    scheme: str = "expanding"  # "expanding" | "rolling"
    n_folds: int = 3  # number of test folds (walk-forward steps)
    test_fraction: float = 0.3  # share of the labelled sessions covered by all test folds together
    val_days: int = 40  # validation window, in sessions, before each test fold
    embargo_days: int = 5  # sessions dropped before each purge boundary
    train_days: int | None = None  # rolling window length in sessions (required for "rolling")
    min_train_days: int = 60  # fewer training sessions than this -> ValueError naming the fold

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"WalkForwardConfig.scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not _is_int(self.n_folds) or self.n_folds < 1:
            raise ValueError(f"WalkForwardConfig.n_folds must be an integer >= 1, got {self.n_folds!r}")
        if (not isinstance(self.test_fraction, Real) or isinstance(self.test_fraction, bool)
                or not 0.0 < float(self.test_fraction) < 1.0):
            raise ValueError(f"WalkForwardConfig.test_fraction must be a number in (0, 1), got {self.test_fraction!r}")
        if not _is_int(self.val_days) or self.val_days < 1:
            raise ValueError(f"WalkForwardConfig.val_days must be an integer >= 1, got {self.val_days!r}")
        if not _is_int(self.embargo_days) or self.embargo_days < 0:
            raise ValueError(f"WalkForwardConfig.embargo_days must be an integer >= 0, got {self.embargo_days!r}")
        if not _is_int(self.min_train_days) or self.min_train_days < 1:
            raise ValueError(f"WalkForwardConfig.min_train_days must be an integer >= 1, got {self.min_train_days!r}")
        if self.scheme == "rolling":
            if not _is_int(self.train_days) or self.train_days < 1:
                raise ValueError(f"WalkForwardConfig.train_days must be an integer >= 1 for the rolling scheme, "
                                 f"got {self.train_days!r}")
            if self.train_days - self.embargo_days < self.min_train_days:
                raise ValueError(
                    f"WalkForwardConfig.train_days={self.train_days} leaves fewer than min_train_days="
                    f"{self.min_train_days} sessions after the embargo of {self.embargo_days} sessions")
        elif self.train_days is not None:
            raise ValueError(f"WalkForwardConfig.train_days is only used by the rolling scheme; "
                             f"got train_days={self.train_days!r} with scheme='expanding'")


@dataclass(frozen=True)
class Fold:
    index: int  # 0..n_folds-1 for test folds; n_folds for the final (production) fold
    train_start: date
    train_end: date
    val_start: date
    val_end: date
    test_start: date | None  # None for the final fold
    test_end: date | None
    train_rows: int
    val_rows: int
    test_rows: int
    purged_rows: int  # rows dropped because their label becomes known in/after the next segment
    embargoed_rows: int  # rows that passed the purge but were dropped by the embargo

    @property
    def is_final(self) -> bool:
        return self.test_start is None

    def as_dict(self) -> dict[str, str | int | None]:
        """ISO dates and counts, for logging and run metadata."""
        def iso(value: date | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "index": self.index,
            "train_start": iso(self.train_start),
            "train_end": iso(self.train_end),
            "val_start": iso(self.val_start),
            "val_end": iso(self.val_end),
            "test_start": iso(self.test_start),
            "test_end": iso(self.test_end),
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "test_rows": self.test_rows,
            "purged_rows": self.purged_rows,
            "embargoed_rows": self.embargoed_rows,
        }


def _to_date(day_number: int | np.integer) -> date:
    return _EPOCH + timedelta(days=int(day_number))


class _Sessions:
    """The frame's rows as session indices (0..n_sessions-1) and label-known day numbers."""

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [c for c in ("trade_date", "known_date") if c not in frame.columns]
        if missing:
            raise ValueError(f"walk-forward split: the frame has no column(s) {missing}")
        if frame.empty:
            raise ValueError("walk-forward split: the frame has no rows")
        trade = day_numbers(frame["trade_date"])
        known = day_numbers(frame["known_date"])
        for name, values in (("trade_date", trade), ("known_date", known)):
            bad = values == MISSING_DAY
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"walk-forward split: {int(bad.sum())} row(s) have no {name} (first at row {i})")
        early = known <= trade
        if early.any():
            i = int(np.flatnonzero(early)[0])
            raise ValueError(
                f"walk-forward split: {int(early.sum())} row(s) have known_date <= trade_date (a forward "
                f"label is known only after its trade date; first at row {i}: trade_date "
                f"{frame['trade_date'].iloc[i]}, known_date {frame['known_date'].iloc[i]})")
        self.days, self.index = np.unique(trade, return_inverse=True)  # sessions; each row's session index
        self.known = known

    def __len__(self) -> int:
        return len(self.days)

    def date(self, i: int) -> date:
        return _to_date(self.days[i])

    def kept(self, first: int, last_nominal: int, boundary: int | None, embargo: int) -> tuple[np.ndarray, int, int]:
        """Rows of sessions first..last_nominal kept under the purge and embargo against the
        session index `boundary` (None: no boundary, nothing dropped); with the purged and
        embargoed counts."""
        in_window = (self.index >= first) & (self.index <= last_nominal)
        if boundary is None:
            return in_window, 0, 0
        unpurged = in_window & (self.known < self.days[boundary])
        kept = unpurged & (self.index < boundary - embargo)
        return kept, int(in_window.sum() - unpurged.sum()), int(unpurged.sum() - kept.sum())


def _train_first(config: WalkForwardConfig, val_first: int) -> int:
    if config.scheme == "rolling":
        assert config.train_days is not None
        return max(0, val_first - config.train_days)
    return 0


def _segment_range(sessions: _Sessions, mask: np.ndarray) -> tuple[int, int, int, int]:
    """(first session index, last session index, distinct sessions, rows) of the kept rows."""
    idx = sessions.index[mask]
    if len(idx) == 0:
        return -1, -1, 0, 0
    return int(idx.min()), int(idx.max()), int(len(np.unique(idx))), int(len(idx))


def _build_fold(sessions: _Sessions, config: WalkForwardConfig, index: int, val_first: int,
                test_first: int | None, test_last: int | None) -> Fold:
    name = f"fold {index}" if test_first is not None else f"final fold ({index})"
    if val_first < 1:
        raise ValueError(
            f"walk-forward split, {name}: no session is left for training before the validation window "
            f"(the data has {len(sessions)} sessions; val_days={config.val_days}, embargo_days="
            f"{config.embargo_days}, test_fraction={config.test_fraction}, n_folds={config.n_folds})")
    e = config.embargo_days
    train_mask, train_purged, train_embargoed = sessions.kept(_train_first(config, val_first), val_first - 1, val_first, e)
    val_last_nominal = len(sessions) - 1 if test_first is None else test_first - 1
    val_mask, val_purged, val_embargoed = sessions.kept(val_first, val_last_nominal, test_first, e)

    train_lo, train_hi, train_sessions, train_rows = _segment_range(sessions, train_mask)
    if train_sessions < config.min_train_days:
        raise ValueError(
            f"walk-forward split, {name}: {train_sessions} training sessions after purge and embargo, fewer "
            f"than min_train_days={config.min_train_days} (validation starts {sessions.date(val_first)}; "
            f"the data has {len(sessions)} sessions)")
    _, val_hi, _, val_rows = _segment_range(sessions, val_mask)
    if val_rows == 0:
        raise ValueError(
            f"walk-forward split, {name}: no validation row is left after purge and embargo (validation "
            f"window from {sessions.date(val_first)}, val_days={config.val_days}, embargo_days={e}); "
            f"val_days must exceed the label horizon")
    test_rows = 0 if test_first is None else int(((sessions.index >= test_first) & (sessions.index <= test_last)).sum())
    return Fold(
        index=index,
        train_start=sessions.date(train_lo),
        train_end=sessions.date(train_hi),
        val_start=sessions.date(val_first),  # the purge boundary of the training rows
        val_end=sessions.date(val_hi),
        test_start=None if test_first is None else sessions.date(test_first),
        test_end=None if test_last is None else sessions.date(test_last),
        train_rows=train_rows,
        val_rows=val_rows,
        test_rows=test_rows,
        purged_rows=train_purged + val_purged,
        embargoed_rows=train_embargoed + val_embargoed,
    )


def walk_forward_folds(frame: pd.DataFrame, config: WalkForwardConfig) -> list[Fold]:
    """The `config.n_folds` test folds, in time order (see the module docstring for the
    layout). Raises ValueError naming the fold when one has too little data."""
    sessions = _Sessions(frame)
    n = len(sessions)
    n_test = int(round(n * float(config.test_fraction)))
    if n_test < config.n_folds:
        raise ValueError(
            f"walk-forward split: test_fraction={config.test_fraction} of {n} sessions gives {n_test} test "
            f"sessions, fewer than n_folds={config.n_folds}")
    chunks = np.array_split(np.arange(n - n_test, n), config.n_folds)
    folds = []
    for k, chunk in enumerate(chunks):
        test_first, test_last = int(chunk[0]), int(chunk[-1])
        val_first = test_first - config.embargo_days - config.val_days
        folds.append(_build_fold(sessions, config, k, val_first, test_first, test_last))
    return folds


def final_fold(frame: pd.DataFrame, config: WalkForwardConfig) -> Fold:
    """The production fold: validation = the last `val_days` sessions of the data (for early
    stopping and calibration), training before it with the same purge and embargo, no test."""
    sessions = _Sessions(frame)
    return _build_fold(sessions, config, config.n_folds, len(sessions) - config.val_days, None, None)


def fold_frames(frame: pd.DataFrame, fold: Fold, config: WalkForwardConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) rows of `fold` in `frame` (the frame the fold was built from), with
    the purge and embargo applied; test is empty for the final fold. Raises ValueError when
    the fold does not match the frame."""
    sessions = _Sessions(frame)

    def position(value: date, what: str) -> int:
        day = int(day_numbers(pd.Series([value]))[0])
        i = int(np.searchsorted(sessions.days, day))
        if i >= len(sessions) or sessions.days[i] != day:
            raise ValueError(f"fold {fold.index}: its {what} {value} is not a session of this frame")
        return i

    train_first, train_last = position(fold.train_start, "train_start"), position(fold.train_end, "train_end")
    val_first, val_last = position(fold.val_start, "val_start"), position(fold.val_end, "val_end")
    e = config.embargo_days
    train_mask, _, _ = sessions.kept(train_first, train_last, val_first, e)
    if fold.test_start is None:
        val_mask, _, _ = sessions.kept(val_first, val_last, None, e)
        test_mask = np.zeros(len(frame), dtype=bool)
    else:
        assert fold.test_end is not None
        test_first, test_last = position(fold.test_start, "test_start"), position(fold.test_end, "test_end")
        val_mask, _, _ = sessions.kept(val_first, val_last, test_first, e)
        test_mask = (sessions.index >= test_first) & (sessions.index <= test_last)
    counts = (int(train_mask.sum()), int(val_mask.sum()), int(test_mask.sum()))
    if counts != (fold.train_rows, fold.val_rows, fold.test_rows):
        raise ValueError(
            f"fold {fold.index} does not match this frame: (train, val, test) rows {counts}, the fold says "
            f"{(fold.train_rows, fold.val_rows, fold.test_rows)}; build the folds from the same frame")
    return frame[train_mask], frame[val_mask], frame[test_mask]
