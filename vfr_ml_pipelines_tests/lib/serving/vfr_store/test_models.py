"""vfr_store/models.py on a migrated PostgreSQL database of this module's own: ml_models rows,
the demotions VFR's live path depends on, and the kill switch's record, read back."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text

from vfr_ml_pipelines.lib.serving.vfr_store import models as store


TABLES = "ml_models, vfr_ml.live_path_switch"  # emptied before each test (conftest.py)


def _model(conn, name: str, version: str, status: str) -> None:
    store.upsert_model_row(conn, name=name, version=version, model_type="lightgbm", horizon="1w", target="forward_return_1w",
                           validation_score=Decimal("0.041000"), test_score=None, status=status)


def _statuses(conn) -> dict[tuple[str, str], str]:
    return {(r.model_name, r.model_version): r.status for r in conn.execute(text("SELECT model_name, model_version, status FROM ml_models"))}


def test_upsert_updates_status_and_scores_and_deprecates_other_deployed_versions(db):
    with db.begin() as conn:
        _model(conn, "vfr-1w", "1", "deployed")
        _model(conn, "vfr-1w", "2", "deployed")
        assert store.deprecate_other_deployed(conn, "vfr-1w", "2") == 1
        store.upsert_model_row(conn, name="vfr-1w", version="2", model_type="lightgbm", horizon="1w", target="t",
                               validation_score=Decimal("0.050000"), test_score=Decimal("0.030000"), status="deployed")
        score = conn.execute(text("SELECT validation_score, test_score FROM ml_models WHERE model_version = '2'")).one()
        assert _statuses(conn) == {("vfr-1w", "1"): "deprecated", ("vfr-1w", "2"): "deployed"}
    assert tuple(score) == (Decimal("0.050000"), Decimal("0.030000"))


def test_demote_touches_only_the_named_models_and_spares_keep(db):
    with db.begin() as conn:
        _model(conn, "vfr-1w", "2", "deployed")
        _model(conn, "vfr-1d", "4", "deployed")
        _model(conn, "vfr-own-model", "1", "deployed")  # VFR's row
        demoted = store.demote_deployed(conn, ["vfr-1w", "vfr-1d"], "validated", keep=("vfr-1w", "2"))
        assert demoted == [("vfr-1d", "4")]
        assert _statuses(conn)[("vfr-own-model", "1")] == "deployed"
        assert store.demote_deployed(conn, ["vfr-1w", "vfr-1d"], "validated") == [("vfr-1w", "2")]
        assert store.deployed_models(conn) == [("vfr-own-model", "1")]


def test_switch_records_open_and_close_once(db):
    with db.begin() as conn:
        store.record_switched_off(conn, [("vfr-1w", "2"), ("vfr-1w", "2")])
        store.record_switched_off(conn, [])
        assert store.close_switch_records(conn) == [("vfr-1w", "2")]
        assert store.close_switch_records(conn) == []
        open_rows = conn.execute(text("SELECT count(*) FROM vfr_ml.live_path_switch WHERE restored_at IS NULL")).scalar_one()
    assert open_rows == 0


def test_deployed_models_lists_newest_first(db):
    with db.begin() as conn:
        _model(conn, "vfr-own-old", "1", "deployed")
        _model(conn, "vfr-own-new", "1", "deployed")
        conn.execute(text("UPDATE ml_models SET created_at = now() - interval '1 day' WHERE model_name = 'vfr-own-old'"))
        assert store.deployed_models(conn) == [("vfr-own-new", "1"), ("vfr-own-old", "1")]
