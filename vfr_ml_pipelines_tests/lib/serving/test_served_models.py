"""Which versions serve and what VFR gets per horizon (lib/serving/served_models.py)."""

from __future__ import annotations

from datetime import date

import pytest

from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, RegisteredVersion
from vfr_ml_pipelines.lib.serving.served_models import (
    NothingToServe,
    ServedVersion,
    latest_prediction_session,
    require_served,
    serving_verdicts,
)


def _served(horizon: str, role: str, version: str) -> ServedVersion:
    return ServedVersion(horizon, role, RegisteredVersion(f"vfr-{horizon}", version, "run", {}))


def test_verdicts_say_per_horizon_what_vfr_gets():
    verdicts = serving_verdicts([_served("1w", CHAMPION, "2"), _served("1w", CHALLENGER, "3"), _served("1m", CHALLENGER, "1")])
    assert verdicts["1w"] == "served: champion vfr-1w.v2 under default"
    assert verdicts["1m"].startswith("trained, no significant skill, nothing served for 1m")
    assert verdicts["1d"] == "no model trained for 1d, nothing served"


def test_nothing_registered_at_all_cannot_serve():
    with pytest.raises(NothingToServe, match="no model is registered"):
        require_served([])
    require_served([_served("1m", CHALLENGER, "1")])


def test_no_stored_prices_means_no_session_to_predict(make_engine):
    with pytest.raises(NothingToServe, match="no prices stored on or before 2031-03-03"):
        latest_prediction_session(make_engine("served_models_empty"), date(2031, 3, 3))
