"""The models domain's SQL (`lib/models/store.py`) against the real PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from vfr_ml_pipelines.lib.models import store
from vfr_ml_pipelines.lib.models.champions import previous_champion


@pytest.fixture(scope="module")
def engine(make_engine):
    return make_engine("models_store")


def test_oracle_expected_returns_is_none_without_an_oracle_and_reads_one_horizon(engine):
    assert store.oracle_expected_returns(engine, "1d") is None
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO vfr_ml_oracle.expected_returns (horizon, trade_date, symbol, expected_return) VALUES (:h, :d, :s, :r)"),
            [{"h": "1d", "d": date(2026, 1, 5), "s": "AAA", "r": 0.01}, {"h": "1d", "d": date(2026, 1, 5), "s": "BBB", "r": -0.02},
             {"h": "1w", "d": date(2026, 1, 5), "s": "AAA", "r": 0.05}],
        )
    oracle = store.oracle_expected_returns(engine, "1d")
    assert list(oracle.columns) == ["trade_date", "symbol", "expected_return"]
    assert sorted(zip(oracle["symbol"], oracle["expected_return"])) == [("AAA", 0.01), ("BBB", -0.02)]
    assert store.oracle_expected_returns(engine, "1m") is None


def test_champion_history_is_appended_and_read_newest_first_per_horizon(engine):
    with engine.begin() as conn:
        for horizon, version, previous, action in [("1w", "1", None, "promote"), ("1w", "3", "1", "promote"),
                                                   ("1m", "2", None, "promote"), ("1w", "1", "3", "rollback")]:
            store.record_champion_change(
                conn, horizon=horizon, model_name=f"vfr-{horizon}", version=version, previous_version=previous,
                action=action, reason="test", run_id="run-1",
            )
        # the live model's history shares the horizon but not the model
        store.record_champion_change(conn, horizon="1w", model_name="vfr-live-1w", version="7", previous_version=None,
                                     action="promote", reason="test", run_id="run-1")
    with engine.connect() as conn:
        assert store.champion_history_versions(conn, "1w", "vfr-1w") == ["1", "3", "1"]
        assert store.champion_history_versions(conn, "1w", "vfr-live-1w") == ["7"]
        assert store.champion_history_versions(conn, "1m", "vfr-1m") == ["2"]
        assert store.champion_history_versions(conn, "1d", "vfr-1d") == []
        row = conn.execute(text(
            "SELECT model_name, previous_version, action, reason, dagster_run_id FROM vfr_ml.champion_history "
            "WHERE horizon = '1w' AND model_name = 'vfr-1w' ORDER BY id DESC LIMIT 1"
        )).one()
        assert tuple(row) == ("vfr-1w", "3", "rollback", "test", "run-1")
        # the champion before the current one (v1, back after a rollback) is v3
        assert previous_champion(conn, "1w", "1") == "3"
        assert previous_champion(conn, "1m", "2") is None


def test_an_unknown_action_is_refused_by_the_table(engine):
    with pytest.raises(Exception, match="champion_history_action_check|violates check constraint"):
        with engine.begin() as conn:
            store.record_champion_change(
                conn, horizon="1d", model_name="vfr-1d", version="1", previous_version=None,
                action="delete", reason="test", run_id=None,
            )
