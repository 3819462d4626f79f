"""The backtests' warehouse rows against the real PostgreSQL: the candidates' walk-forward
predictions (written by `lib/models/store.py`, read by `lib/backtests/store.py`) and the live
track record from served predictions with hand-computed outcomes."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from vfr_ml_pipelines.lib.backtests import store
from vfr_ml_pipelines.lib.backtests.config import BacktestConfig
from vfr_ml_pipelines.lib.backtests.live_record import MIN_SESSIONS, live_backtest, live_track_record
from vfr_ml_pipelines.lib.models import store as models_store
from vfr_ml_pipelines.lib.models.registry import RegisteredVersion
from vfr_ml_pipelines.lib.serving.outcomes import fill_outcomes
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import emptied, write_label, write_predictions


@pytest.fixture(scope="module")
def module_engine(make_engine):
    return make_engine("backtests_store")


def _predictions(fold_rows: list[tuple[int, str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(fold_rows, columns=["fold", "segment", "trade_date", "symbol", "score"])
    frame["trade_date"] = pd.to_datetime(frame["trade_date"]).dt.date
    frame["probability"], frame["expected_return"], frame["forward_return"] = 0.5, frame["score"] / 10, 0.01
    return frame


def _version(name: str, version: str) -> RegisteredVersion:
    return RegisteredVersion(name, version, f"run-{name}-{version}", {})


def test_walk_forward_predictions_replace_the_horizon_keep_the_latest_fold_and_read_one_segment(module_engine):
    db = emptied(module_engine, "vfr_ml.walk_forward_predictions")
    lightgbm = _predictions([
        (0, "val", "2030-01-02", "AAA", 0.1), (0, "test", "2030-01-03", "AAA", 0.2), (0, "test", "2030-01-06", "AAA", 0.3),
        (1, "test", "2030-01-06", "AAA", 0.4),  # fold 1's test window overlaps fold 0's: fold 1's row is kept
        (1, "test", "2030-01-07", "BBB", -0.1),
    ])
    linear = _predictions([(0, "test", "2030-01-03", "AAA", 0.0)])
    versions = {"lightgbm": _version("vfr-lightgbm-1w", "3"), "linear": _version("vfr-linear-1w", "2")}
    rows = models_store.walk_forward_rows("1w", {"lightgbm": lightgbm, "linear": linear}, versions)
    other = models_store.walk_forward_rows("1d", {"linear": linear}, {"linear": _version("vfr-linear-1d", "1")})
    with db.begin() as conn:
        assert models_store.replace_walk_forward_predictions(conn, "1w", rows) == 5
        models_store.replace_walk_forward_predictions(conn, "1d", other)

    test = store.walk_forward_predictions(db, "1w")
    assert list(test["candidate"]) == ["lightgbm"] * 3 + ["linear"]
    assert test.loc[(test["candidate"] == "lightgbm") & (test["trade_date"] == date(2030, 1, 6)), ["fold", "score"]].values.tolist() == [[1, 0.4]]
    assert set(zip(test["candidate"], test["mlflow_run_id"], test["model_version"])) == {
        ("lightgbm", "run-vfr-lightgbm-1w-3", "3"), ("linear", "run-vfr-linear-1w-2", "2")
    }
    assert test["label"].eq(0.01).all() and test["expected_return"].notna().all()
    assert list(store.walk_forward_predictions(db, "1w", "val")["score"]) == [0.1]

    # a new training of 1w replaces all of 1w's rows and none of 1d's
    retrained = models_store.walk_forward_rows("1w", {"linear": linear}, {"linear": _version("vfr-linear-1w", "4")})
    with db.begin() as conn:
        models_store.replace_walk_forward_predictions(conn, "1w", retrained)
    assert store.walk_forward_predictions(db, "1w")[["candidate", "model_version"]].values.tolist() == [["linear", "4"]]
    assert store.walk_forward_predictions(db, "1w", "val").empty
    assert len(store.walk_forward_predictions(db, "1d")) == 1
    with pytest.raises(ValueError, match="other horizons"), db.begin() as conn:
        models_store.replace_walk_forward_predictions(conn, "1m", retrained)


SESSIONS = [date(2031, 3, 3), date(2031, 3, 4), date(2031, 3, 5)]
EXPECTED = {"AAA": 0.02, "BBB": 0.01, "CCC": -0.01}
REALIZED = [  # per session: AAA, BBB, CCC
    {"AAA": 0.03, "BBB": 0.01, "CCC": -0.02},  # rank IC 1; directions 3 / 3 right
    {"AAA": -0.01, "BBB": 0.02, "CCC": 0.0},  # rank IC -0.5; 1 / 3 right (CCC's 0.0 is NEUTRAL)
    {"AAA": 0.05, "BBB": 0.02, "CCC": 0.01},  # rank IC 1; 2 / 3 right
]


def test_live_track_record_of_served_predictions_with_hand_computed_outcomes(module_engine):
    db = emptied(module_engine, "ml_predictions, ml_outcomes, vfr_ml.labels, vfr_ml.ml_prediction_sessions")
    with db.begin() as conn:
        for session, realized in zip(SESSIONS, REALIZED, strict=True):
            write_predictions(conn, "1d", session, [(s, 100.0, e, 0.5) for s, e in EXPECTED.items()])
            for symbol, value in realized.items():
                write_label(conn, "1d", symbol, session, session + timedelta(days=1), value)
        # a 1w prediction whose outcome is not known yet is not part of any record
        write_predictions(conn, "1w", SESSIONS[0], [("AAA", 100.0, 0.05, 0.5)])
        fill_outcomes(conn, today=SESSIONS[-1] + timedelta(days=1))

    rows = store.live_outcomes(db)
    assert len(rows) == 9 and set(rows["horizon"]) == {"1d"}
    served = store.served_predictions(db)  # every served row, the 1w one without an outcome too
    assert len(served) == 10 and served[served["horizon"] == "1w"][["symbol", "expected_return"]].values.tolist() == [["AAA", 0.05]]
    assert served[served["horizon"] == "1d"].equals(rows.loc[:, list(served.columns)].reset_index(drop=True))
    prices = pd.DataFrame([
        {"trade_date": session + timedelta(days=d), "symbol": s, "open": 100.0, "close": 100.0, "adj_close": 100.0, "volume": 1e6}
        for session in SESSIONS[:1] for d in range(4) for s in EXPECTED
    ])
    book = live_backtest(prices, served, "1d", BacktestConfig())
    assert book.traded_sessions == 3 and book.days_missing == MIN_SESSIONS - 3 and book.status.startswith("not enough days yet")
    record = live_track_record(rows, "1d", book)
    assert (record.days_with_outcomes, record.sampled_days) == (3, 3)
    # rank ICs 1, -0.5, 1: mean 0.5, std 0.866, t = 0.5 / (0.866 / sqrt 3) = 1
    assert record.rank_ic_mean == pytest.approx(0.5)
    assert record.rank_ic_t == pytest.approx(1.0)
    assert record.direction_accuracy == pytest.approx(6 / 9)
    assert record.row()["status"] == book.status

    empty = live_track_record(rows, "1w", live_backtest(prices, served, "1w", BacktestConfig()))
    assert empty.days_with_outcomes == 0 and math.isnan(empty.rank_ic_mean) and empty.book.traded_sessions == 3
