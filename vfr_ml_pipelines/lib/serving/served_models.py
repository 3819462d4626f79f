"""Which model versions serve (per horizon: the champion, and the challenger as a shadow; and
the live model's champion, published under its own id: `lib/models/live_training.py`), and
the session they serve: its day, its universe, its feature vectors and each version's latest
stored predictions.

A `ServedVersion` is a registered model version under a serving alias; the estimator itself
is `lib/models/serving_model.ServingModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.models.live_training import LIVE_HORIZON, live_model_name
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, ModelRegistry, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.market_data import store as market_store
from vfr_ml_pipelines.lib.serving import store
from vfr_ml_pipelines.lib.serving.vfr_tables import prediction_timestamp


# the role of the model VFR's live path runs: published under its own id only, like a shadow,
# so that VFR's live result for it can be checked against what we publish for it
LIVE_ROLE = "live"


class NothingToServe(RuntimeError):
    """A serving run that cannot go on (no model registered at all, no prices, no feature
    vector of the session): breakage upstream, not a state VFR handles."""


@dataclass(frozen=True)
class ServedVersion:
    horizon: str
    role: str  # "champion" | "challenger" | LIVE_ROLE
    version: RegisteredVersion

    @property
    def is_champion(self) -> bool:
        return self.role == CHAMPION

    @property
    def is_active(self) -> bool:
        """What VFR's model metadata calls ACTIVE: a horizon's champion, and the live model's
        champion (deployed on VFR's live path); a shadow is INACTIVE."""
        return self.role in (CHAMPION, LIVE_ROLE)


def served_versions(registry: ModelRegistry) -> list[ServedVersion]:
    """Per horizon, the champion and (when it differs) the challenger; then the live model's
    champion, if one passed its gate."""
    out = []
    for horizon in HORIZONS:
        name = serving_model_name(horizon)
        champion = registry.by_alias(name, CHAMPION)
        challenger = registry.by_alias(name, CHALLENGER)
        if champion is not None:
            out.append(ServedVersion(horizon, CHAMPION, champion))
        if challenger is not None and (champion is None or challenger.version != champion.version):
            out.append(ServedVersion(horizon, CHALLENGER, challenger))
    live = registry.by_alias(live_model_name(LIVE_HORIZON), CHAMPION)
    if live is not None:
        out.append(ServedVersion(LIVE_HORIZON, LIVE_ROLE, live))
    return out


def require_served(versions: list[ServedVersion]) -> None:
    """Nothing registered at all (no champion, no challenger) is breakage: serving ran before
    any training. A horizon without a champion is a normal outcome (`serving_verdicts`)."""
    if not versions:
        raise NothingToServe(
            "no model is registered for any horizon (no champion, no challenger): run the retraining job "
            "(or `vfr-ml run`) before serving"
        )


def serving_verdicts(versions: list[ServedVersion]) -> dict[str, str]:
    """Per horizon, what VFR gets, in words. A horizon whose challenger the promotion gate
    refused has no champion: nothing is written under `default` (VFR stays on its classic
    path there) and the challenger is published as a shadow under its own id only."""
    verdicts = {}
    for horizon in HORIZONS:
        champion = next((m for m in versions if m.horizon == horizon and m.is_champion), None)
        shadow = next((m for m in versions if m.horizon == horizon and m.role == CHALLENGER), None)
        if champion is not None:
            verdicts[horizon] = f"served: champion {champion.version.model_id} under default"
        elif shadow is not None:
            verdicts[horizon] = (
                f"trained, no significant skill, nothing served for {horizon} "
                f"(challenger {shadow.version.model_id} published as a shadow under its own id only)"
            )
        else:
            verdicts[horizon] = f"no model trained for {horizon}, nothing served"
    return verdicts


def latest_prediction_session(engine: Engine | Connection, today: date) -> date:
    """The session predictions are made for: the last day with stored prices on or before
    `today` (the market's "today", which may be pinned), whatever the calendar says."""
    day = market_store.last_stored_session(engine, today)
    if day is None:
        raise NothingToServe(f"no prices stored on or before {today}")
    return day


def session_vectors(engine: Engine | Connection, today: date) -> tuple[date, pd.DataFrame, list[str]]:
    """The latest session, the feature vectors of that session for its universe members,
    and the members without one (no vector, or only an older one)."""
    day = latest_prediction_session(engine, today)
    members = market_store.universe(engine, day, day)
    vectors = read_latest(engine, catalog.MATRIX_VERSION, members)
    vectors = vectors[pd.to_datetime(vectors["trade_date"]).dt.date == day].reset_index(drop=True)
    if vectors.empty:
        raise NothingToServe(f"no feature vector of {day} for any of the {len(members)} universe symbols")
    return day, vectors, sorted(set(members) - set(vectors["symbol"]))


def close_ms(day: date) -> int:
    """The as-of time of features and predictions of `day`: its close, in ms."""
    return int(prediction_timestamp(day).timestamp() * 1000)


def latest_predictions(engine: Engine | Connection, served: ServedVersion) -> pd.DataFrame:
    """The version's stored predictions of its latest as-of day (empty when none)."""
    return store.latest_predictions(engine, served.horizon, served.version.name, served.version.version)
