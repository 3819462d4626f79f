"""A migrated database of its own for the market-data store and quality tests, emptied
after each test."""

from __future__ import annotations

import pytest
from sqlalchemy import text

MARKET_TABLES = (
    "vfr_ml.universe, vfr_ml.universe_membership, vfr_ml.raw_prices, vfr_ml.raw_fundamentals, "
    "vfr_ml.raw_news, vfr_ml.quarantine, vfr_ml_oracle.expected_returns"
)


@pytest.fixture(scope="module")
def market_database(make_engine):
    return make_engine("market_data")


@pytest.fixture
def market_engine(market_database):
    yield market_database
    with market_database.begin() as conn:
        conn.execute(text(f"TRUNCATE {MARKET_TABLES}"))
