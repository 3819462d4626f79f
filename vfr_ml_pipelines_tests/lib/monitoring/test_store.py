"""The monitoring domain's SQL (lib/monitoring/store.py), on a migrated PostgreSQL database of
this module's own."""

from __future__ import annotations

import pytest

from vfr_ml_pipelines.lib.models.registry import RegisteredVersion
from vfr_ml_pipelines.lib.monitoring.store import realized_outcomes
from vfr_ml_pipelines_tests.defs.monitoring.outcomes import DAYS, KNOWN_AFTER, SYMBOLS, write_outcomes

CHAMPION = RegisteredVersion("vfr-1w", "1", "run", {})
SHADOW = RegisteredVersion("vfr-1w", "2", "run", {})


@pytest.fixture(scope="module")
def db(make_engine):
    engine = make_engine("monitoring_store")
    write_outcomes(engine, model_version="1", skill=0.3)
    write_outcomes(engine, model_version="2", skill=0.0, seed=1)
    write_outcomes(engine, model_version="3", skill=0.0, seed=2)  # neither champion nor shadow
    return engine


def test_only_known_outcomes_of_the_served_versions_since_the_start(db) -> None:
    today = DAYS[-1]
    rows = realized_outcomes(db, [CHAMPION, SHADOW], today=today, since=DAYS[10])
    assert set(rows["model"]) == {"vfr-1w.v1", "vfr-1w.v2"}
    assert rows["trade_date"].min() == DAYS[10]
    assert rows["trade_date"].max() == max(d for d in DAYS if d + KNOWN_AFTER <= today)  # labels still unknown left out
    per_day = rows.groupby(["trade_date", "model"]).size()
    assert (per_day == len(SYMBOLS)).all()
    assert list(rows.columns) == ["trade_date", "symbol", "horizon", "model", "score", "probability", "realized_return"]
    assert realized_outcomes(db, [], today=today, since=DAYS[0]).empty
