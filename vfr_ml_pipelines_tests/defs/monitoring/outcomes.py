"""Served predictions and their labels, written to a migrated warehouse for the monitoring
tests: `skill` sets how well the expected return ranks the realized return."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features.store import LABELS_TABLE
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.serving import store
from vfr_ml_pipelines.lib.warehouse import upsert_frame

SYMBOLS = [f"S{i:02d}" for i in range(30)]
DAYS = calendar.trading_days(date(2025, 1, 2), date(2025, 4, 30))
KNOWN_AFTER = timedelta(days=7)


def write_outcomes(engine: Engine, *, model_version: str, skill: float, horizon: str = "1w", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        for day in DAYS:
            signal = rng.normal(size=len(SYMBOLS))
            realized = skill * signal + rng.normal(size=len(SYMBOLS))
            store.replace_predictions(conn, pd.DataFrame({
                "as_of_date": day, "horizon": horizon, "model_name": f"vfr-{horizon}", "model_version": model_version,
                "symbol": SYMBOLS, "expected_return": 0.01 * signal, "probability": 1 / (1 + np.exp(-signal)),
                "direction": "HOLD", "confidence": 0.2, "current_price": 10.0, "features": json.dumps({}),
                "feature_completeness": 1.0, "feature_quality_score": 0.9, "predicted_at": datetime(2025, 1, 2, tzinfo=UTC),
            }), as_of=day, horizon=horizon, model_name=f"vfr-{horizon}", model_version=model_version)
            upsert_frame(conn, LABELS_TABLE, pd.DataFrame({
                "horizon": horizon, "trade_date": day, "symbol": SYMBOLS, "forward_return": 0.02 * realized,
                "excess_return": 0.02 * realized, "known_date": day + KNOWN_AFTER,
            }), ["horizon", "trade_date", "symbol"])
