"""Realized outcomes filled into ml_predictions and VFR's ml_outcomes (with VFR's
definitions), checked against hand-computed values on a real PostgreSQL (a database of
this module's own, emptied before each test)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.outcomes import OutcomeReport, fill_outcomes
from vfr_ml_pipelines.lib.serving.vfr_tables import ensure_enhancement_definition, prediction_timestamp
from vfr_ml_pipelines_tests.lib.serving.outcome_rows import emptied, write_label, write_predictions, write_price

AS_OF = date(2031, 3, 3)  # a Monday
KNOWN = {"1d": date(2031, 3, 4), "1w": date(2031, 3, 10), "1m": date(2031, 4, 1)}


@pytest.fixture(scope="module")
def module_engine(make_engine):
    return make_engine("outcomes")


@pytest.fixture
def db(module_engine):
    return emptied(module_engine, "ml_predictions, vfr_ml.labels, vfr_ml.ml_prediction_sessions, vfr_ml.outcome_fills, "
                                  "vfr_ml.raw_prices")


def predict(conn, horizon: str, rows: list[tuple[str, float, float, float]], as_of: date = AS_OF) -> None:
    write_predictions(conn, horizon, as_of, rows)


def label(conn, horizon: str, symbol: str, forward_return: float, trade_date: date = AS_OF, known: date | None = None) -> None:
    write_label(conn, horizon, symbol, trade_date, known or KNOWN[horizon], forward_return)


def outcomes(conn) -> dict[tuple[str, str], tuple]:
    rows = conn.execute(
        text(
            "SELECT ticker, prediction_horizon, predicted_value, actual_value, actual_timestamp, prediction_error, "
            "direction_correct FROM ml_predictions"
        )
    ).all()
    return {(r.ticker, r.prediction_horizon): tuple(r[2:]) for r in rows}


def vfr_outcomes(conn) -> dict[tuple[str, int], tuple]:
    rows = conn.execute(
        text(
            "SELECT ticker, days_elapsed, predicted_direction, predicted_value, predicted_confidence, initial_price, "
            "final_price, actual_return, actual_direction, direction_correct, return_error, market_return, "
            "sector_return, relative_performance, data_complete, outlier_flag, outcome_timestamp FROM ml_outcomes"
        )
    ).all()
    return {(r.ticker, r.days_elapsed): tuple(r[2:]) for r in rows}


def test_outcomes_filled_by_hand_computation_and_pending_rows_stay_null(db):
    with db.begin() as conn:
        predict(conn, "1d", [("AAA", 100.0, 0.02, 0.4), ("BBB", 50.0, -0.01, 0.1), ("CCC", 20.0, 0.0, 0.0),
                             ("DDD", 10.0, 0.02, 0.25), ("EEE", 30.0, 0.01, 0.2)])
        predict(conn, "1w", [("AAA", 100.0, 0.05, 0.3), ("FFF", 40.0, 0.01, 0.1)])
        predict(conn, "1m", [("AAA", 100.0, 0.1, 0.6)])
        label(conn, "1d", "AAA", 0.015)
        label(conn, "1d", "BBB", -0.03)
        label(conn, "1d", "CCC", 0.01)
        label(conn, "1d", "DDD", -0.01)
        # EEE has no label at all (e.g. delisted)
        label(conn, "1w", "AAA", 0.0)
        label(conn, "1w", "FFF", 0.123456789012)
        label(conn, "1m", "AAA", 0.2)  # known 2031-04-01, after `today`
    with db.begin() as conn:
        report = fill_outcomes(conn, today=KNOWN["1w"])
        got = outcomes(conn)
        vfr = vfr_outcomes(conn)
    assert report == OutcomeReport(rows_updated=6, horizons={"1d": 4, "1w": 2}, pending=2, oldest_pending=AS_OF,
                                   outcomes_written=6, outcomes_skipped=0)
    close_1d, close_1w = prediction_timestamp(KNOWN["1d"]), prediction_timestamp(KNOWN["1w"])
    D = Decimal
    # ml_predictions (predicted, actual, actual_timestamp, error, direction_correct) by hand:
    # predicted_value = +P(up) for BUY (p = 0.5 + confidence / 2), -P(down) for SELL, 0 for
    # HOLD; actual = the forward return; error = realized - expected return; correct = VFR's
    # 0.001 dead band on both sides, NULL for a HOLD (no call)
    assert got[("AAA", "1d")] == (D("0.70000000"), D("0.01500000"), close_1d, D("-0.00500000"), True)
    assert got[("BBB", "1d")] == (D("-0.55000000"), D("-0.03000000"), close_1d, D("-0.02000000"), True)  # SELL at p 0.45
    assert got[("CCC", "1d")] == (D("0.00000000"), D("0.01000000"), close_1d, D("0.01000000"), None)  # HOLD
    assert got[("DDD", "1d")] == (D("0.62500000"), D("-0.01000000"), close_1d, D("-0.03000000"), False)
    assert got[("AAA", "1w")] == (D("0.65000000"), D("0E-8"), close_1w, D("-0.05000000"), False)  # flat = NEUTRAL
    assert got[("FFF", "1w")] == (D("0.55000000"), D("0.12345679"), close_1w, D("0.11345679"), True)  # BUY at p 0.55
    assert got[("EEE", "1d")][1:] == (None, None, None, None)
    assert got[("AAA", "1m")][1:] == (None, None, None, None)
    assert str(close_1d.tzinfo) == "America/New_York" and close_1d.hour == 16
    # ml_outcomes, VFR's columns: market = mean forward return of the session's labelled
    # symbols (1d: (0.015 - 0.03 + 0.01 - 0.01) / 4 = -0.00375; 1w: 0.123456789012 / 2)
    m1d, m1w = D("-0.00375"), D("0.061728394506")
    assert vfr[("AAA", 1)] == ("UP", D("0.70000000"), D("0.4000"), D("100.0000"), D("101.5000"), D("0.015000"), "UP", True,
                               D("0.685000"), D("-0.003750"), None, D("0.018750"), True, False, close_1d)
    assert vfr[("BBB", 1)][:9] == ("DOWN", D("-0.55000000"), D("0.1000"), D("50.0000"), D("48.5000"), D("-0.030000"), "DOWN",
                                   True, D("0.520000"))
    assert vfr[("CCC", 1)][:9] == ("NEUTRAL", D("0E-8"), D("0.0000"), D("20.0000"), D("20.2000"), D("0.010000"), "UP",
                                   False, D("0.010000"))
    assert vfr[("DDD", 1)][7:12] == (False, D("0.635000"), m1d.quantize(D("1E-6")), None, (D("-0.01") - m1d).quantize(D("1E-6")))
    # 1w: 7 calendar days; AAA flat is NEUTRAL, its UP call wrong; FFF's return rounds to 6 places
    assert vfr[("AAA", 7)][5:9] == (D("0.000000"), "NEUTRAL", False, D("0.650000"))
    assert vfr[("FFF", 7)][5:7] == (D("0.123457"), "UP") and vfr[("FFF", 7)][9] == m1w.quantize(D("1E-6"))
    assert len(vfr) == 6 and all(v[-1] in (close_1d, close_1w) for v in vfr.values())


def test_rerun_is_idempotent_and_later_days_fill_the_longer_horizon(db):
    with db.begin() as conn:
        for horizon in ("1d", "1w", "1m"):
            predict(conn, horizon, [("AAA", 100.0, 0.01, 0.2), ("BBB", 50.0, -0.02, 0.3)])
            label(conn, horizon, "AAA", 0.02)
            label(conn, horizon, "BBB", 0.01)
    with db.begin() as conn:
        first = fill_outcomes(conn, today=KNOWN["1d"])
        before = outcomes(conn)
    assert first == OutcomeReport(rows_updated=2, horizons={"1d": 2}, pending=4, oldest_pending=AS_OF, outcomes_written=2)
    with db.begin() as conn:
        again = fill_outcomes(conn, today=KNOWN["1d"])
        assert again == OutcomeReport(rows_updated=0, horizons={}, pending=4, oldest_pending=AS_OF)
        assert outcomes(conn) == before
    with db.begin() as conn:
        assert fill_outcomes(conn, today=KNOWN["1w"]).horizons == {"1w": 2}
        last = fill_outcomes(conn, today=KNOWN["1m"])
        after = outcomes(conn)
    assert last == OutcomeReport(rows_updated=2, horizons={"1m": 2}, pending=0, oldest_pending=None, outcomes_written=2)
    # AAA: BUY (p 0.6), realized +2 %: right, error 0.02 - 0.01; BBB: SELL (p 0.35), realized +1 %: wrong
    for horizon in ("1d", "1w", "1m"):
        assert after[("AAA", horizon)][1:] == (Decimal("0.02000000"), prediction_timestamp(KNOWN[horizon]), Decimal("0.01000000"), True)
        assert after[("BBB", horizon)][1:] == (Decimal("0.01000000"), prediction_timestamp(KNOWN[horizon]), Decimal("0.03000000"), False)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ml_outcomes")).scalar_one() == 6


def test_rounding_is_half_to_even_like_the_python_writers(db):
    # 1.0000 x 1.00005 = 1.00005 and 1.0000 x 0.99985 = 0.99985: exact ties at final_price's 5th decimal
    with db.begin() as conn:
        predict(conn, "1d", [("TIEUP", 1.0, 0.01, 0.1), ("TIEDN", 1.0, 0.01, 0.1)])
        label(conn, "1d", "TIEUP", 0.00005)
        label(conn, "1d", "TIEDN", -0.00015)
        fill_outcomes(conn, today=KNOWN["1d"])
        final = dict(conn.execute(text("SELECT ticker, final_price FROM ml_outcomes")).all())
    assert final["TIEUP"] == Decimal("1.0000")  # half away from zero would give 1.0001
    assert final["TIEDN"] == Decimal("0.9998")  # and 0.9999
    for symbol, fr in (("TIEUP", "0.00005"), ("TIEDN", "-0.00015")):
        assert final[symbol] == (1 + Decimal(fr)).quantize(Decimal("1E-4"), rounding=ROUND_HALF_EVEN)


def test_corrected_labels_and_rewritten_predictions_are_picked_up(db):
    with db.begin() as conn:
        predict(conn, "1w", [("AAA", 100.0, 0.01, 0.2)])
        label(conn, "1w", "AAA", 0.02)
        write_price(conn, "AAA", date(2031, 3, 6), 100.0)
        fill_outcomes(conn, today=KNOWN["1w"])
    with db.begin() as conn:
        # a restated price inside the label's window (re-loaded after the outcome was written)
        # and the label rebuilt from it
        conn.execute(text("DELETE FROM vfr_ml.raw_prices WHERE symbol = 'AAA'"))
        write_price(conn, "AAA", date(2031, 3, 6), 97.0)
        conn.execute(text("UPDATE vfr_ml.labels SET forward_return = -0.04 WHERE symbol = 'AAA'"))
        report = fill_outcomes(conn, today=KNOWN["1w"])
        assert (report.rows_updated, report.outcomes_written) == (1, 1)
        assert (report.mode, report.restated_from, report.considered) == ("incremental", date(2031, 3, 6), 1)
        assert outcomes(conn)[("AAA", "1w")][1:] == (
            Decimal("-0.04000000"), prediction_timestamp(KNOWN["1w"]), Decimal("-0.05000000"), False)
        assert vfr_outcomes(conn)[("AAA", 7)][5:8] == (Decimal("-0.040000"), "DOWN", False)
    with db.begin() as conn:
        # a re-run of the session's prediction with another call clears the stale outcome ...
        predict(conn, "1w", [("AAA", 100.0, -0.03, 0.2)])
        assert outcomes(conn)[("AAA", "1w")] == (Decimal("-0.60000000"), None, None, None, None)
        assert vfr_outcomes(conn) == {}
        # ... and the next fill scores the new forecast (SELL, realized -4 %: right)
        assert fill_outcomes(conn, today=KNOWN["1w"]).rows_updated == 1
        assert outcomes(conn)[("AAA", "1w")][3:] == (Decimal("-0.01000000"), True)
        assert vfr_outcomes(conn)[("AAA", 7)][:2] == ("DOWN", Decimal("-0.60000000"))
    with db.begin() as conn:
        # an identical re-write keeps the outcome
        predict(conn, "1w", [("AAA", 100.0, -0.03, 0.2)])
        assert outcomes(conn)[("AAA", "1w")][1] == Decimal("-0.04000000")
        assert len(vfr_outcomes(conn)) == 1


def test_rows_of_other_enhancement_definitions_are_untouched(db):
    with db.begin() as conn:
        ours = ensure_enhancement_definition(conn, "1w")
        theirs = conn.execute(
            text(
                "INSERT INTO ml_enhancement_definitions (enhancement_name, enhancement_type, prediction_horizon) "
                "VALUES ('vfr_native_price_1w', 'price_prediction', '1w') "
                "ON CONFLICT (enhancement_name) DO UPDATE SET is_active = true RETURNING enhancement_id"
            )
        ).scalar_one()
        assert theirs != ours
        conn.execute(
            text(
                "INSERT INTO ml_predictions (ticker, prediction_timestamp, enhancement_id, prediction_horizon, "
                "prediction_type, predicted_value, confidence_score, current_price) "
                "VALUES ('AAA', :ts, :e, '1w', 'price_target', 101, 0.5, 100)"
            ),
            {"ts": prediction_timestamp(AS_OF), "e": theirs},
        )
        predict(conn, "1w", [("AAA", 100.0, 0.01, 0.2)])
        label(conn, "1w", "AAA", 0.02)
        assert fill_outcomes(conn, today=KNOWN["1w"]).rows_updated == 1
        values = dict(conn.execute(text("SELECT enhancement_id, actual_value FROM ml_predictions")).all())
        tickers = conn.execute(text("SELECT p.enhancement_id FROM ml_outcomes o JOIN ml_predictions p USING (prediction_id)")).all()
    assert values == {ours: Decimal("0.02000000"), theirs: None}
    assert [t.enhancement_id for t in tickers] == [ours]


def test_bad_labels_and_overflows_raise_before_writing(db):
    with db.begin() as conn:
        predict(conn, "1d", [("AAA", 100.0, 0.01, 0.2), ("BIG", 90_000_000.0, 0.1, 0.2)])
        label(conn, "1d", "AAA", 0.02)
        label(conn, "1d", "BIG", 0.2)  # 9e7 * 1.2 = 1.08e8 does not fit final_price's decimal(12,4)
    with pytest.raises(ValueError, match=r"decimal\(12,4\) \(BIG 1d 2031-03-03: final_price 108000000\.0+\)"):
        with db.begin() as conn:
            fill_outcomes(conn, today=KNOWN["1d"])
    with db.begin() as conn:
        conn.execute(text("UPDATE vfr_ml.labels SET forward_return = 'NaN' WHERE symbol = 'BIG'"))
    with pytest.raises(ValueError, match="BIG 1d 2031-03-03: nan"):
        with db.begin() as conn:
            fill_outcomes(conn, today=KNOWN["1d"])
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ml_predictions WHERE actual_value IS NOT NULL")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM ml_outcomes")).scalar_one() == 0
    with pytest.raises(ValueError, match="today must be a date"):
        with db.begin() as conn:
            fill_outcomes(conn, today="2031-03-04")


def test_one_enhancement_definition_per_horizon_and_rows_for_each(db):
    with db.begin() as conn:
        ids = {h: ensure_enhancement_definition(conn, h) for h in ("1d", "1w", "1m")}
        assert {h: ensure_enhancement_definition(conn, h) for h in ids} == ids  # the same row again
        for horizon in ids:
            predict(conn, horizon, [("AAA", 100.0, 0.01, 0.2), ("BBB", 50.0, -0.02, 0.3)])
        definitions = conn.execute(
            text(
                "SELECT enhancement_name, enhancement_id, enhancement_type, target_factor, prediction_horizon, "
                "min_confidence_threshold, is_active, tier_requirement FROM ml_enhancement_definitions "
                "WHERE enhancement_name LIKE 'vfr_ml_pipelines_%' ORDER BY 1"
            )
        ).all()
        rows = conn.execute(
            text("SELECT enhancement_id, prediction_horizon, prediction_type, count(*) FROM ml_predictions GROUP BY 1, 2, 3")
        ).all()
    assert [tuple(d) for d in definitions] == [
        (f"vfr_ml_pipelines_{h}", ids[h], "direction_classification", "composite", h, Decimal("0.1000"), True, "premium")
        for h in ("1d", "1m", "1w")
    ]
    assert sorted(tuple(r) for r in rows) == sorted((ids[h], h, "direction", 2) for h in ids)


def test_enhancement_definition_keeps_operator_tuning_and_refuses_unknown_horizons(db):
    with db.begin() as conn:
        enhancement_id = ensure_enhancement_definition(conn, "1d")
        conn.execute(
            text("UPDATE ml_enhancement_definitions SET min_confidence_threshold = 0.3, is_active = false WHERE enhancement_id = :e"),
            {"e": enhancement_id},
        )
        assert ensure_enhancement_definition(conn, "1d") == enhancement_id
        row = conn.execute(
            text("SELECT min_confidence_threshold, is_active FROM ml_enhancement_definitions WHERE enhancement_id = :e"),
            {"e": enhancement_id},
        ).one()
        assert tuple(row) == (Decimal("0.3000"), True)
    with pytest.raises(ValueError, match="horizon '2w'"):
        with db.begin() as conn:
            ensure_enhancement_definition(conn, "2w")
    with pytest.raises(ValueError, match="horizon '2w'"):
        with db.begin() as conn:
            predict(conn, "2w", [("AAA", 100.0, 0.01, 0.2)])
    with pytest.raises(ValueError, match=r"more than once: \['AAA'\]"):
        with db.begin() as conn:
            predict(conn, "1d", [("AAA", 100.0, 0.01, 0.2), ("AAA", 100.0, 0.02, 0.2)])


def test_a_second_fill_computes_only_new_rows_and_a_full_recompute_all(db):
    later = date(2031, 3, 4)
    with db.begin() as conn:
        write_price(conn, "AAA", AS_OF, 100.0)
        predict(conn, "1d", [("AAA", 100.0, 0.01, 0.2), ("BBB", 50.0, -0.02, 0.3)])
        label(conn, "1d", "AAA", 0.02)
        label(conn, "1d", "BBB", 0.01)
        first = fill_outcomes(conn, today=KNOWN["1d"])
    assert (first.mode, first.considered, first.rows_updated) == ("full", 2, 2)  # the first fill: every known row
    with db.begin() as conn:
        # the next session: its predictions and labels (no price re-loaded before it)
        predict(conn, "1d", [("AAA", 102.0, 0.01, 0.2), ("BBB", 50.5, 0.01, 0.3)], as_of=later)
        label(conn, "1d", "AAA", -0.01, trade_date=later, known=date(2031, 3, 5))
        label(conn, "1d", "BBB", 0.03, trade_date=later, known=date(2031, 3, 5))
        # a label of the first session changed WITHOUT a re-loaded price (not how labels
        # change: they are rebuilt from prices): the incremental fill does not look at it
        conn.execute(text("UPDATE vfr_ml.labels SET forward_return = 0.05 WHERE symbol = 'AAA' AND trade_date = :d"),
                     {"d": AS_OF})
        second = fill_outcomes(conn, today=date(2031, 3, 5))
        assert (second.mode, second.restated_from, second.considered, second.rows_updated) == ("incremental", None, 2, 2)
        first_session = conn.execute(text(
            "SELECT actual_value FROM ml_predictions p JOIN vfr_ml.ml_prediction_sessions s USING (prediction_id) "
            "WHERE s.symbol = 'AAA' AND s.as_of_date = :d"), {"d": AS_OF}).scalar_one()
        assert first_session == Decimal("0.02000000")
        # a full recompute (backfills) computes every known row and corrects that one
        full = fill_outcomes(conn, today=date(2031, 3, 5), full_recompute=True)
        assert (full.mode, full.considered, full.rows_updated) == ("full", 4, 1)
        assert conn.execute(text(
            "SELECT actual_value FROM ml_predictions p JOIN vfr_ml.ml_prediction_sessions s USING (prediction_id) "
            "WHERE s.symbol = 'AAA' AND s.as_of_date = :d"), {"d": AS_OF}).scalar_one() == Decimal("0.05000000")
        # nothing pending and nothing re-loaded: the next fill computes nothing
        assert fill_outcomes(conn, today=date(2031, 3, 5)).considered == 0


def test_a_price_load_that_commits_after_a_fill_with_an_earlier_loaded_at_is_seen_next(db):
    """Concurrent loads: load A starts (its loaded_at is its start), load B starts later and
    commits, a fill runs and commits, then A commits a restated price. The next fill still
    recomputes the outcomes A's price reaches (the watermark stayed below A's start)."""
    with db.begin() as conn:
        write_price(conn, "AAA", AS_OF, 100.0)
        predict(conn, "1d", [("AAA", 100.0, 0.01, 0.2)])
        label(conn, "1d", "AAA", 0.02)
        assert fill_outcomes(conn, today=KNOWN["1d"]).mode == "full"
    late = db.connect()
    try:
        load_a = late.begin()
        late.execute(text("UPDATE vfr_ml.raw_prices SET open = 101.0, high = 101.0, low = 101.0, close = 101.0, adj_close = 101.0, loaded_at = now() WHERE symbol = 'AAA'"))
        with db.begin() as conn:  # load B, later, committed first
            write_price(conn, "BBB", KNOWN["1d"], 50.0)
        with db.begin() as conn:
            seen = fill_outcomes(conn, today=KNOWN["1d"])
            assert (seen.mode, seen.restated_from) == ("incremental", KNOWN["1d"])  # B's price
        load_a.commit()
    finally:
        late.close()
    with db.begin() as conn:
        after = fill_outcomes(conn, today=KNOWN["1d"])
    assert (after.mode, after.restated_from) == ("incremental", AS_OF), "A's restated price, loaded before B's, is seen"
    assert after.considered == 1
