"""A deterministic synthetic equity market with planted, documented signals and their oracle
(docs/synthetic_market.md).

Modules: `config.py` (SyntheticMarketConfig, the one source of the market's defaults, and
its random streams), `companies.py` (sectors and per-symbol parameters), `simulation.py`
(the engine), `fundamentals.py` (filings and statements), `text.py` (names, tickers,
headlines), `provider.py` (the MarketDataProvider and the frames it serves).
"""

from vfr_ml_pipelines.lib.market_data.synthetic.companies import SECTORS
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig
from vfr_ml_pipelines.lib.market_data.synthetic.provider import (
    SyntheticMarketProvider,
    generate_fundamentals,
    generate_news,
    generate_oracle,
    generate_prices,
    generate_universe,
)

__all__ = [
    "SECTORS", "SyntheticMarketConfig", "SyntheticMarketProvider", "generate_universe",
    "generate_prices", "generate_fundamentals", "generate_news", "generate_oracle",
]
