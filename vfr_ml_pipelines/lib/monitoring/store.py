"""SQL of the monitoring domain: the realized outcomes of our stored predictions.

`realized_outcomes` joins `vfr_ml.predictions` (every served version's predictions, champion
and shadow challenger alike, with the expected return that ranks them) with `vfr_ml.labels`
(the forward return, once its `known_date` has passed): the rows `live_performance.py` reads.
The expected return is the score: the calibration is monotone, so its ranks are the model's.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Engine, text

from vfr_ml_pipelines.lib.models.registry import RegisteredVersion

_OUTCOMES = text("""
SELECT p.as_of_date AS trade_date, p.symbol, p.horizon, p.model_name || '.v' || p.model_version AS model,
       p.expected_return AS score, p.probability, l.forward_return AS realized_return
FROM vfr_ml.predictions p
JOIN vfr_ml.labels l ON l.horizon = p.horizon AND l.trade_date = p.as_of_date AND l.symbol = p.symbol
WHERE l.known_date <= :today AND p.as_of_date >= :since
  AND (p.model_name, p.model_version) IN (SELECT * FROM unnest(CAST(:names AS text[]), CAST(:versions AS text[])))
ORDER BY p.as_of_date, p.horizon, model, p.symbol
""")


def realized_outcomes(engine: Engine, versions: list[RegisteredVersion], *, today: date, since: date) -> pd.DataFrame:
    """One row per prediction of `versions` made on or after `since` whose label is known by
    `today`: trade_date, symbol, horizon, model (`name.vN`), score, probability, realized_return."""
    params = {"today": today, "since": since, "names": [v.name for v in versions], "versions": [v.version for v in versions]}
    with engine.connect() as conn:
        return pd.read_sql_query(_OUTCOMES, conn, params=params)
