"""Purged walk-forward splits with an embargo: hand-built frames with known answers, and
the invariants on a realistic synthetic dataset."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_prices
from vfr_ml_pipelines.lib.models.dataset import join_features_labels
from vfr_ml_pipelines.lib.models.splits import Fold, WalkForwardConfig, final_fold, fold_frames, walk_forward_folds


def _sessions(n: int, start: date = date(2024, 1, 1)) -> list[date]:
    """n weekdays from `start` (a Monday): gaps of 1 or 3 calendar days, like a market."""
    days, day = [], start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _tiny(n_sessions: int = 30, horizon: int = 2, symbols: tuple[str, ...] = ("AAA", "BBB")) -> tuple[pd.DataFrame, list[date]]:
    """Every symbol trades every session; a label is known `horizon` sessions later (past
    the end: calendar days after the last session)."""
    sessions = _sessions(n_sessions + horizon)
    rows = [{"symbol": s, "trade_date": sessions[i], "known_date": sessions[i + horizon], "x": float(i),
             "forward_return": 0.01 * i, "excess_return": 0.0}
            for i in range(n_sessions) for s in symbols]
    return pd.DataFrame(rows), sessions[:n_sessions]


TINY = WalkForwardConfig(n_folds=2, test_fraction=0.2, val_days=4, embargo_days=3, min_train_days=5)


def test_hand_built_expanding_folds_have_the_known_boundaries_and_counts():
    frame, s = _tiny()
    folds = walk_forward_folds(frame, TINY)
    # 30 sessions, 6 test sessions in 2 folds: [24..26], [27..29]; horizon 2, embargo 3, val 4.
    # Fold 0: val window 17..20 (+ embargo 21..23), train 0..16 -> purge keeps known < s[17]
    # (i <= 14), embargo keeps i < 17 - 3 = 14 -> 0..13; val: purge i <= 21, embargo i <= 20.
    assert folds[0] == Fold(
        index=0, train_start=s[0], train_end=s[13], val_start=s[17], val_end=s[20],
        test_start=s[24], test_end=s[26], train_rows=28, val_rows=8, test_rows=6,
        purged_rows=4 + 4,  # train i=15,16 and val i=22,23, two symbols each
        embargoed_rows=2 + 2,  # train i=14 and val i=21 (their labels are known in time)
    )
    assert folds[1] == Fold(
        index=1, train_start=s[0], train_end=s[16], val_start=s[20], val_end=s[23],
        test_start=s[27], test_end=s[29], train_rows=34, val_rows=8, test_rows=6,
        purged_rows=8, embargoed_rows=4,
    )
    assert not folds[0].is_final
    assert folds[0].as_dict() == {
        "index": 0, "train_start": s[0].isoformat(), "train_end": s[13].isoformat(),
        "val_start": s[17].isoformat(), "val_end": s[20].isoformat(),
        "test_start": s[24].isoformat(), "test_end": s[26].isoformat(),
        "train_rows": 28, "val_rows": 8, "test_rows": 6, "purged_rows": 8, "embargoed_rows": 4,
    }


def test_hand_built_final_fold_validates_on_the_last_sessions():
    frame, s = _tiny()
    fold = final_fold(frame, TINY)
    # val = the last 4 sessions 26..29, nothing purged after it; train 0..25 -> purge keeps
    # known < s[26] (i <= 23), embargo keeps i < 23 -> 0..22
    assert fold == Fold(
        index=2, train_start=s[0], train_end=s[22], val_start=s[26], val_end=s[29],
        test_start=None, test_end=None, train_rows=46, val_rows=8, test_rows=0,
        purged_rows=4, embargoed_rows=2,
    )
    assert fold.is_final
    assert fold.as_dict()["test_start"] is None
    train, val, test = fold_frames(frame, fold, TINY)
    assert test.empty
    assert val["trade_date"].max() == s[-1]
    assert sorted(train["trade_date"].unique()) == s[:23]


def test_hand_built_rolling_window_starts_train_days_before_validation():
    frame, s = _tiny()
    config = WalkForwardConfig(scheme="rolling", train_days=10, n_folds=2, test_fraction=0.2, val_days=4,
                               embargo_days=3, min_train_days=5)
    folds = walk_forward_folds(frame, config)
    # the window is the 10 sessions before validation (7..16, then 10..19), cut by purge/embargo
    assert [(f.train_start, f.train_end, f.train_rows) for f in folds] == [(s[7], s[13], 14), (s[10], s[16], 14)]
    assert [f.val_start for f in folds] == [s[17], s[20]]
    train, _, _ = fold_frames(frame, folds[1], config)
    assert sorted(train["trade_date"].unique()) == s[10:17]


def test_embargo_zero_leaves_only_the_purge():
    frame, s = _tiny()
    config = WalkForwardConfig(n_folds=1, test_fraction=0.1, val_days=4, embargo_days=0, min_train_days=5)
    (fold,) = walk_forward_folds(frame, config)
    # test 27..29, val 23..26 purged to known < s[27] -> 23..24; train 0..22 purged to i <= 20
    assert (fold.train_end, fold.val_start, fold.val_end, fold.test_start) == (s[20], s[23], s[24], s[27])
    assert (fold.purged_rows, fold.embargoed_rows) == (4 + 4, 0)


def test_fold_frames_apply_exactly_the_rules_row_by_row():
    frame, s = _tiny(n_sessions=40, horizon=3, symbols=("AAA", "BBB", "CCC"))
    # a symbol with gaps: its label is known later than the others'
    frame = frame[~((frame["symbol"] == "CCC") & frame["trade_date"].isin(s[20:23]))].reset_index(drop=True)
    config = WalkForwardConfig(n_folds=2, test_fraction=0.25, val_days=5, embargo_days=2, min_train_days=5)
    sessions = sorted(frame["trade_date"].unique())
    position = {d: i for i, d in enumerate(sessions)}
    for fold in [*walk_forward_folds(frame, config), final_fold(frame, config)]:
        train, val, test = fold_frames(frame, fold, config)
        v = position[fold.val_start]
        # train: known before val_start, and trade_date before the embargo's first session
        expected_train = frame[(frame["trade_date"] < fold.val_start) & (frame["known_date"] < fold.val_start)
                               & (frame["trade_date"] < sessions[v - 2]) & (frame["trade_date"] >= fold.train_start)]
        pd.testing.assert_frame_equal(train, expected_train)
        if fold.is_final:
            pd.testing.assert_frame_equal(val, frame[frame["trade_date"] >= fold.val_start])
            continue
        t = position[fold.test_start]
        expected_val = frame[(frame["trade_date"] >= fold.val_start) & (frame["known_date"] < fold.test_start)
                             & (frame["trade_date"] < sessions[t - 2])]
        pd.testing.assert_frame_equal(val, expected_val)
        pd.testing.assert_frame_equal(test, frame[(frame["trade_date"] >= fold.test_start) & (frame["trade_date"] <= fold.test_end)])
        assert (len(train), len(val), len(test)) == (fold.train_rows, fold.val_rows, fold.test_rows)


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    prices = generate_prices(SyntheticMarketConfig(as_of=date(2025, 6, 27), start=date(2023, 1, 2), n_symbols=12))
    features = compute_technical_features(prices)
    return join_features_labels(features, compute_labels(prices, "1w"), list(FEATURE_NAMES))


@pytest.mark.parametrize("scheme,train_days", [("expanding", None), ("rolling", 200)])
def test_walk_forward_invariants_on_a_realistic_dataset(dataset, scheme, train_days):
    config = WalkForwardConfig(scheme=scheme, train_days=train_days, n_folds=4, test_fraction=0.3, val_days=30,
                               embargo_days=7, min_train_days=60)
    folds = walk_forward_folds(dataset, config)
    sessions = sorted(dataset["trade_date"].unique())
    position = {d: i for i, d in enumerate(sessions)}
    n_test = round(len(sessions) * 0.3)
    assert [f.index for f in folds] == [0, 1, 2, 3]

    # the test folds tile the last 30 % of the sessions, in order, without gaps or overlap
    assert folds[0].test_start == sessions[len(sessions) - n_test]
    assert folds[-1].test_end == sessions[-1]
    for before, after in zip(folds, folds[1:]):
        assert position[after.test_start] == position[before.test_end] + 1
    tested = pd.concat([fold_frames(dataset, f, config)[2] for f in folds])
    assert len(tested) == len(dataset[dataset["trade_date"] >= folds[0].test_start])
    assert not tested.index.duplicated().any()

    for fold in folds:
        train, val, test = fold_frames(dataset, fold, config)
        # purge: every label is known before the next segment starts
        assert train["known_date"].max() < fold.val_start
        assert val["known_date"].max() < fold.test_start
        # embargo: exactly 7 sessions strictly between the last kept session and the boundary
        # (the 1w horizon is 5 sessions, so the embargo, not the purge, sets the gap)
        assert position[fold.val_start] - position[train["trade_date"].max()] - 1 == 7
        assert position[fold.test_start] - position[val["trade_date"].max()] - 1 == 7
        assert val["trade_date"].min() == fold.val_start
        assert position[fold.val_end] - position[fold.val_start] + 1 == 30
        assert (train["trade_date"].min(), train["trade_date"].max()) == (fold.train_start, fold.train_end)
        assert test["trade_date"].max() == fold.test_end
        assert fold.purged_rows > 0 and fold.embargoed_rows > 0
        if scheme == "expanding":
            assert fold.train_start == sessions[0]
        else:
            assert fold.train_start == sessions[position[fold.val_start] - 200]
            assert train["trade_date"].nunique() == 200 - 7

    final = final_fold(dataset, config)
    train, val, test = fold_frames(dataset, final, config)
    assert final.index == 4 and final.val_end == sessions[-1] and test.empty
    assert val["trade_date"].nunique() == 30
    assert train["known_date"].max() < final.val_start


def test_too_little_data_names_the_fold(dataset):
    with pytest.raises(ValueError, match=r"fold 0: \d+ training sessions .* fewer than min_train_days=400"):
        walk_forward_folds(dataset, WalkForwardConfig(min_train_days=400))
    with pytest.raises(ValueError, match="fold 0: no session is left for training"):
        walk_forward_folds(dataset, WalkForwardConfig(val_days=500, test_fraction=0.5))
    with pytest.raises(ValueError, match=r"final fold \(3\).*min_train_days"):
        final_fold(dataset, WalkForwardConfig(val_days=500, min_train_days=200))
    frame, _ = _tiny(horizon=5)
    with pytest.raises(ValueError, match="fold 0: no validation row is left"):
        walk_forward_folds(frame, WalkForwardConfig(n_folds=1, test_fraction=0.1, val_days=2, embargo_days=0, min_train_days=5))
    with pytest.raises(ValueError, match="fewer than n_folds=5"):
        walk_forward_folds(frame, WalkForwardConfig(n_folds=5, test_fraction=0.1))


@pytest.mark.parametrize("kwargs,message", [
    ({"scheme": "sliding"}, "scheme must be one of"),
    ({"n_folds": 0}, "n_folds must be an integer >= 1"),
    ({"n_folds": 2.0}, "n_folds must be an integer >= 1"),
    ({"test_fraction": 1.0}, r"test_fraction must be a number in \(0, 1\)"),
    ({"test_fraction": 0}, r"test_fraction must be a number in \(0, 1\)"),
    ({"val_days": 0}, "val_days must be an integer >= 1"),
    ({"embargo_days": -1}, "embargo_days must be an integer >= 0"),
    ({"min_train_days": 0}, "min_train_days must be an integer >= 1"),
    ({"scheme": "rolling"}, "train_days must be an integer >= 1 for the rolling scheme"),
    ({"scheme": "rolling", "train_days": 60, "embargo_days": 5}, "leaves fewer than min_train_days=60"),
    ({"train_days": 100}, "train_days is only used by the rolling scheme"),
    ({"val_days": True}, "val_days must be an integer >= 1"),
])
def test_bad_config_is_rejected_with_the_field_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WalkForwardConfig(**kwargs)


def test_bad_frames_are_rejected():
    frame, _ = _tiny()
    with pytest.raises(ValueError, match=r"no column\(s\) \['known_date'\]"):
        walk_forward_folds(frame.drop(columns="known_date"), TINY)
    with pytest.raises(ValueError, match="has no rows"):
        walk_forward_folds(frame.iloc[:0], TINY)
    broken = frame.copy()
    broken.loc[5, "known_date"] = broken.loc[5, "trade_date"]
    with pytest.raises(ValueError, match=r"1 row\(s\) have known_date <= trade_date .*first at row 5: trade_date 2024-01-03"):
        walk_forward_folds(broken, TINY)
    missing = frame.copy()
    missing["known_date"] = missing["known_date"].astype(object)
    missing.loc[3, "known_date"] = None
    with pytest.raises(ValueError, match=r"1 row\(s\) have no known_date \(first at row 3\)"):
        final_fold(missing, TINY)


def test_fold_frames_refuse_a_fold_of_another_frame():
    frame, s = _tiny()
    fold = walk_forward_folds(frame, TINY)[0]
    with pytest.raises(ValueError, match="does not match this frame"):
        fold_frames(frame[frame["symbol"] == "AAA"], fold, TINY)
    with pytest.raises(ValueError, match="is not a session of this frame"):
        fold_frames(frame[frame["trade_date"] != s[17]], fold, TINY)


def test_timestamps_work_like_dates():
    frame, _ = _tiny()
    stamped = frame.assign(trade_date=pd.to_datetime(frame["trade_date"]), known_date=pd.to_datetime(frame["known_date"]))
    assert walk_forward_folds(stamped, TINY) == walk_forward_folds(frame, TINY)
    fold = final_fold(stamped, TINY)
    train, _, _ = fold_frames(stamped, fold, TINY)
    np.testing.assert_array_equal(train.index, fold_frames(frame, fold, TINY)[0].index)
