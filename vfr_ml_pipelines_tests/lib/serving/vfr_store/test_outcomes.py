"""vfr_store/outcomes.py on a migrated PostgreSQL database of this module's own: each statement
on predictions written by the real writer, against hand-computed values (the meaning of each
column is tested through `fill_outcomes` in ../test_outcomes.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.outcomes import outcome_parameters
from vfr_ml_pipelines.lib.serving.vfr_store import outcomes as store
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import write_label, write_predictions

AS_OF, KNOWN = date(2031, 3, 3), date(2031, 3, 10)


TABLES = "ml_predictions, vfr_ml.labels, vfr_ml.ml_prediction_sessions, ml_outcomes"  # emptied before each test (conftest.py)


def test_float_digits_restored_only_for_the_transaction(db):
    with db.connect() as conn:
        conn.execute(text("SET extra_float_digits = 0"))
        conn.commit()
        with conn.begin():
            store.keep_shortest_float_digits(conn)
            assert conn.execute(text("SHOW extra_float_digits")).scalar_one() == "1"
        assert conn.execute(text("SHOW extra_float_digits")).scalar_one() == "0"


def test_bad_labels_and_overflows_are_listed_before_anything_is_written(db):
    with db.begin() as conn:
        write_predictions(conn, "1w", AS_OF, [("AAA", 10.0, 0.01, 0.2), ("BBB", 9e7, 0.01, 0.2), ("CCC", 10.0, 0.01, 0.2)])
        write_label(conn, "1w", "AAA", AS_OF, KNOWN, float("nan"))
        write_label(conn, "1w", "BBB", AS_OF, KNOWN, 0.5)
        write_label(conn, "1w", "CCC", AS_OF, KNOWN, 0.1)
        params = outcome_parameters(KNOWN)
        assert [(r.symbol, r.trade_date) for r in store.not_finite_labels(conn, params)] == [("AAA", AS_OF)]
        overflows = store.final_price_overflows(conn, params)
        assert [(r.ticker, r.final_price) for r in overflows] == [("BBB", Decimal("135000000.000"))]


def test_write_counts_per_horizon_then_nothing_on_a_rerun(db):
    with db.begin() as conn:
        write_predictions(conn, "1w", AS_OF, [("AAA", 10.0, 0.01, 0.2), ("BBB", 20.0, -0.01, 0.2), ("CCC", 5.0, 0.01, 0.2)])
        write_label(conn, "1w", "AAA", AS_OF, KNOWN, 0.05)
        write_label(conn, "1w", "BBB", AS_OF, KNOWN, 11.0)  # outside ml_outcomes' CHECK range: skipped there
        params = outcome_parameters(KNOWN)
        assert store.write_outcomes(conn, params) == ({"1w": 2}, 1, 1)
        store.refresh_performance_views(conn)
        final = conn.execute(text("SELECT ticker, final_price FROM ml_outcomes")).all()
        pending = store.pending_outcomes(conn, params)
        assert store.write_outcomes(conn, params) == ({}, 0, 1)
        daily = conn.execute(text("SELECT count(*) FROM ml_daily_performance")).scalar_one()
    assert [tuple(r) for r in final] == [("AAA", Decimal("10.5000"))]  # 10 x (1 + 0.05)
    assert (pending.pending, pending.oldest) == (1, AS_OF)  # CCC has no label yet
    assert daily >= 1
