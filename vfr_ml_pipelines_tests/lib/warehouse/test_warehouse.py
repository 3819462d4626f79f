"""Migrations, idempotent bulk upserts and VFR-table constraints on a real PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from vfr_ml_pipelines.lib import settings
from vfr_ml_pipelines.lib.serving.vfr_tables import fit_decimal, write_ml_predictions
from vfr_ml_pipelines.lib.warehouse import (
    MigrationError,
    apply_migrations,
    create_warehouse_engine,
    normalize_database_url,
    upsert_frame,
)
from vfr_ml_pipelines_tests.helpers import prediction_frame

VFR_TABLES = {
    "ml_enhancement_definitions", "ml_feature_definitions", "ml_feature_store",
    "ml_predictions", "ml_models", "ml_performance_metrics",
}


def test_concurrent_migrators_apply_each_file_exactly_once(make_database):
    url = make_database("migrate")
    engines = [create_warehouse_engine(url) for _ in range(4)]
    results, errors = [], []

    def migrate(engine):
        try:
            results.append(apply_migrations(engine, settings.sql_dir()))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = sorted(p.name for p in settings.sql_dir().glob("*.sql"))
    assert sorted(name for applied in results for name in applied) == files
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vfr_ml_schema_migrations")).scalar_one() == len(files)
        tables = {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
    assert VFR_TABLES <= tables
    assert apply_migrations(engines[0], settings.sql_dir()) == []
    for e in engines:
        e.dispose()


def test_an_edited_applied_migration_is_refused(make_database, tmp_path):
    url = make_database("edited")
    engine = create_warehouse_engine(url)
    sql = tmp_path / "sql"
    shutil.copytree(settings.sql_dir(), sql)
    apply_migrations(engine, sql)
    first = sorted(sql.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(engine, sql)
    engine.dispose()


def test_a_failing_migration_names_the_file_and_is_not_recorded(make_database, tmp_path):
    engine = create_warehouse_engine(make_database("failing"))
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (sql / "002_broken.sql").write_text("CREATE TABLE broken (id int; -- syntax error")
    with pytest.raises(MigrationError, match="002_broken.sql"):
        apply_migrations(engine, sql)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT array_agg(version) FROM vfr_ml_schema_migrations")).scalar_one() == [1]
    engine.dispose()


def test_database_url_forms():
    assert normalize_database_url("postgres://u:p@h:5/db").startswith("postgresql+psycopg://u:p@h:5/db")
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="PostgreSQL"):
        normalize_database_url("sqlite:///x.db")


def test_upsert_is_idempotent_and_updates_in_place(engine):
    frame = pd.DataFrame({"symbol": ["AAA", "BBB"], "sector": ["Energy", "Utilities"], "listed_on": [date(2024, 1, 2)] * 2, "source": "t"})
    upsert_frame(engine, "vfr_ml.universe", frame, ["symbol"])
    upsert_frame(engine, "vfr_ml.universe", frame.assign(sector="Materials"), ["symbol"])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT symbol, sector FROM vfr_ml.universe WHERE symbol IN ('AAA', 'BBB') ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [("AAA", "Materials"), ("BBB", "Materials")]
    with pytest.raises(ValueError, match="duplicate keys"):
        upsert_frame(engine, "vfr_ml.universe", pd.concat([frame, frame]), ["symbol"])


def test_invalid_prices_are_rejected_by_the_table_itself(engine):
    bad = pd.DataFrame(
        {"symbol": ["AAA"], "trade_date": [date(2024, 1, 2)], "open": [10.0], "high": [9.0], "low": [9.5],
         "close": [9.8], "adj_close": [9.8], "volume": [100], "source": ["t"]}
    )
    with pytest.raises(IntegrityError):
        upsert_frame(engine, "vfr_ml.raw_prices", bad, ["symbol", "trade_date"])


def test_fit_decimal_refuses_overflow_instead_of_rounding():
    assert fit_decimal(0.123456789, 5, 4, "x") == Decimal("0.1235")
    with pytest.raises(ValueError, match="decimal\\(12,4\\)"):
        fit_decimal(123456789.0, 12, 4, "current_price")
    with pytest.raises(ValueError, match="finite"):
        fit_decimal(float("nan"), 5, 4, "confidence")


def test_ml_predictions_rows_upsert_per_symbol_and_day(engine):
    day = date(2026, 11, 20)
    rows = prediction_frame([("AAA", 100.0, 0.01, 0.3), ("BBB", 50.0, -0.02, 0.99999)], day)
    with engine.begin() as conn:
        assert write_ml_predictions(conn, rows, "1w", day) == 2
    with engine.begin() as conn:
        # the same session again, another call for AAA (HOLD) and BBB: the same two rows
        again = prediction_frame([("AAA", 100.0, 0.0, 0.0), ("BBB", 50.0, -0.02, 0.5)], day)
        write_ml_predictions(conn, again, "1w", day)
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT ticker, prediction_type, predicted_value, confidence_score FROM ml_predictions "
                 "WHERE ticker IN ('AAA','BBB') ORDER BY 1")
        ).all()
    # VFR's meaning: +P(up) for BUY, -P(down) for SELL, 0 for HOLD
    assert [(r.ticker, r.prediction_type, float(r.predicted_value)) for r in got] == [("AAA", "direction", 0.0), ("BBB", "direction", -0.75)]
    assert got[1].confidence_score == Decimal("0.5000")
    with pytest.raises(ValueError, match="AAA.*confidence_score"):
        with engine.begin() as conn:
            write_ml_predictions(conn, rows.assign(confidence=[1.2, 0.5]), "1w", date(2026, 11, 21))

