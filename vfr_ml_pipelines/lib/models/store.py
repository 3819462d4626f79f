"""The models domain's SQL: the synthetic market's oracle that training measures models
against."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.warehouse import read_frame


def oracle_expected_returns(engine: Engine, horizon: str) -> pd.DataFrame | None:
    """The oracle's expected return per (trade_date, symbol) of `horizon`; None when the
    market data provider has no oracle (only the synthetic market writes one)."""
    oracle = read_frame(
        engine,
        "SELECT trade_date, symbol, expected_return FROM vfr_ml_oracle.expected_returns WHERE horizon = :h",
        {"h": horizon},
    )
    return None if oracle.empty else oracle
