"""vfr_store/outcomes.py on a migrated PostgreSQL database of this module's own: each statement
on predictions written by the real writer, against hand-computed values (the meaning of each
column is tested through `fill_outcomes` in ../test_outcomes.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.outcomes import outcome_parameters
from vfr_ml_pipelines.lib.serving.vfr_store import outcomes as store
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import write_label, write_predictions, write_price

AS_OF, KNOWN = date(2031, 3, 3), date(2031, 3, 10)


TABLES = ("ml_predictions, vfr_ml.labels, vfr_ml.ml_prediction_sessions, ml_outcomes, vfr_ml.outcome_fills, "
          "vfr_ml.raw_prices")  # emptied before each test (conftest.py)


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
        assert store.write_outcomes(conn, params) == ({"1w": 2}, {"written": 1, "skipped": 1, "considered": 2})
        store.refresh_performance_views(conn)
        final = conn.execute(text("SELECT ticker, final_price FROM ml_outcomes")).all()
        pending = store.pending_outcomes(conn, params)
        assert store.write_outcomes(conn, params) == ({}, {"written": 0, "skipped": 1, "considered": 2})
        # incremental: only the rows still without an outcome (CCC, whose label is unknown)
        incremental = outcome_parameters(KNOWN, full=False)
        assert store.write_outcomes(conn, incremental) == ({}, {"written": 0, "skipped": 0, "considered": 0})
        # ... and those whose label window reaches a restated price day
        restated = outcome_parameters(KNOWN, full=False, restated_from=KNOWN)
        assert store.write_outcomes(conn, restated)[1]["considered"] == 2
        daily = conn.execute(text("SELECT count(*) FROM ml_daily_performance")).scalar_one()
    assert [tuple(r) for r in final] == [("AAA", Decimal("10.5000"))]  # 10 x (1 + 0.05)
    assert (pending.pending, pending.oldest) == (1, AS_OF)  # CCC has no label yet
    assert daily >= 1


def test_the_fill_record_and_the_first_price_day_loaded_since(db):
    with db.begin() as conn:
        assert store.last_fill(conn) is None and store.prices_seen(conn) is None
        write_price(conn, "AAA", date(2031, 3, 4), 10.0)
        write_price(conn, "BBB", date(2031, 3, 5), 10.0)
        seen = store.prices_seen(conn)
        assert store.restated_from(conn, None) == date(2031, 3, 4)  # no watermark: every price is new
        store.record_fill(conn, mode="full", seen=seen, restated=None, considered=3, updated=2, written=1)
    with db.connect() as conn:
        assert store.restated_from(conn, seen) is None  # nothing loaded since
    with db.begin() as conn:  # a later transaction: a later loaded_at
        conn.execute(text("DELETE FROM vfr_ml.raw_prices WHERE symbol = 'BBB'"))
        write_price(conn, "BBB", date(2031, 3, 5), 11.0)
        assert store.last_fill(conn).prices_seen_until == seen
        assert store.restated_from(conn, seen) == date(2031, 3, 5)
