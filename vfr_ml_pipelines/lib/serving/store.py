"""The serving domain's queries on this project's warehouse tables: the stored predictions
(`vfr_ml.predictions`); prices and the universe are read through the market-data store. The SQL on
VFR's own tables is in `vfr_store/`.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine, text

from vfr_ml_pipelines.lib.warehouse import read_frame, upsert_frame

PREDICTIONS_TABLE = "vfr_ml.predictions"
PREDICTION_KEY_COLUMNS = ["as_of_date", "horizon", "model_name", "model_version", "symbol"]


def latest_predictions(engine: Engine | Connection, horizon: str, model_name: str, model_version: str) -> pd.DataFrame:
    """A model version's stored predictions of its latest as-of day (empty when none)."""
    return read_frame(
        engine,
        """
        SELECT * FROM vfr_ml.predictions
        WHERE horizon = :h AND model_name = :m AND model_version = :v
          AND as_of_date = (SELECT max(as_of_date) FROM vfr_ml.predictions
                            WHERE horizon = :h AND model_name = :m AND model_version = :v)
        ORDER BY symbol
        """,
        {"h": horizon, "m": model_name, "v": model_version},
    )


def replace_predictions(
    conn: Connection, rows: pd.DataFrame, *, as_of: date, horizon: str, model_name: str, model_version: str
) -> None:
    """`rows` become the model version's predictions of `as_of`: a re-run leaves no row of a
    symbol it no longer predicts."""
    conn.execute(
        text(
            "DELETE FROM vfr_ml.predictions WHERE as_of_date = :d AND horizon = :h AND model_name = :m AND model_version = :v"
        ),
        {"d": as_of, "h": horizon, "m": model_name, "v": model_version},
    )
    upsert_frame(conn, PREDICTIONS_TABLE, rows, PREDICTION_KEY_COLUMNS)
