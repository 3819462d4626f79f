"""Which models serve (per horizon: the champion, and the challenger as a shadow) and where
their latest predictions are."""

from dataclasses import dataclass
from datetime import date

import dagster as dg
import pandas as pd

from vfr_ml_pipelines.defs.resources import MarketDataResource, MlflowResource, WarehouseResource
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.horizons import HORIZONS
from vfr_ml_pipelines.lib.features.online_store import read_latest
from vfr_ml_pipelines.lib.models.registry import CHALLENGER, CHAMPION, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.serving.vfr_tables import prediction_timestamp
from vfr_ml_pipelines.lib.warehouse import read_frame



@dataclass(frozen=True)
class ServedModel:
    horizon: str
    role: str  # "champion" | "challenger"
    version: RegisteredVersion

    @property
    def is_champion(self) -> bool:
        return self.role == CHAMPION


def served_models(mlflow: MlflowResource) -> list[ServedModel]:
    """Per horizon, the champion and (when it differs) the challenger."""
    out = []
    for horizon in HORIZONS:
        name = serving_model_name(horizon)
        champion = mlflow.registry.by_alias(name, CHAMPION)
        challenger = mlflow.registry.by_alias(name, CHALLENGER)
        if champion is not None:
            out.append(ServedModel(horizon, CHAMPION, champion))
        if challenger is not None and (champion is None or challenger.version != champion.version):
            out.append(ServedModel(horizon, CHALLENGER, challenger))
    return out


def require_models(models: list[ServedModel]) -> None:
    """Nothing registered at all (no champion, no challenger) is breakage: serving ran before
    any training. A horizon without a champion is a normal outcome (`serving_verdicts`)."""
    if not models:
        raise dg.Failure(
            "no model is registered for any horizon (no champion, no challenger): run the retraining job "
            "(or `vfr-ml run`) before serving"
        )


def serving_verdicts(models: list[ServedModel]) -> dict[str, str]:
    """Per horizon, what VFR gets, in words. A horizon whose challenger the promotion gate
    refused has no champion: nothing is written under `default` (VFR stays on its classic
    path there) and the challenger is published as a shadow under its own id only."""
    verdicts = {}
    for horizon in HORIZONS:
        champion = next((m for m in models if m.horizon == horizon and m.is_champion), None)
        shadow = next((m for m in models if m.horizon == horizon and not m.is_champion), None)
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


def latest_session(warehouse: WarehouseResource, market_data: MarketDataResource) -> date:
    frame = read_frame(
        warehouse.engine,
        "SELECT max(trade_date) AS day FROM vfr_ml.raw_prices WHERE trade_date <= :today",
        {"today": market_data.today()},
    )
    day = frame["day"].iloc[0]
    if day is None or pd.isna(day):
        raise dg.Failure(f"no prices stored on or before {market_data.today()}")
    return day


def universe(warehouse: WarehouseResource, day: date) -> list[str]:
    return read_frame(
        warehouse.engine, "SELECT symbol FROM vfr_ml.universe_membership WHERE trade_date = :d ORDER BY symbol", {"d": day}
    )["symbol"].tolist()


def session_vectors(warehouse: WarehouseResource, market_data: MarketDataResource) -> tuple[date, pd.DataFrame, list[str]]:
    """The latest session, the feature vectors of that session for its universe members,
    and the members without one (no vector, or only an older one)."""
    day = latest_session(warehouse, market_data)
    members = universe(warehouse, day)
    vectors = read_latest(warehouse.engine, catalog.MATRIX_VERSION, members)
    vectors = vectors[pd.to_datetime(vectors["trade_date"]).dt.date == day].reset_index(drop=True)
    if vectors.empty:
        raise dg.Failure(f"no feature vector of {day} for any of the {len(members)} universe symbols")
    return day, vectors, sorted(set(members) - set(vectors["symbol"]))


def close_ms(day: date) -> int:
    """The as-of time of features and predictions of `day`: its close, in ms."""
    return int(prediction_timestamp(day).timestamp() * 1000)


def latest_predictions(warehouse: WarehouseResource, model: ServedModel) -> pd.DataFrame:
    """The model's stored predictions of its latest as-of day (empty when none)."""
    return read_frame(
        warehouse.engine,
        """
        SELECT * FROM vfr_ml.predictions
        WHERE horizon = :h AND model_name = :m AND model_version = :v
          AND as_of_date = (SELECT max(as_of_date) FROM vfr_ml.predictions
                            WHERE horizon = :h AND model_name = :m AND model_version = :v)
        ORDER BY symbol
        """,
        {"h": model.horizon, "m": model.version.name, "v": model.version.version},
    )
