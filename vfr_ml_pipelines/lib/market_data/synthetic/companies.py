"""The companies of the synthetic market: sectors and the per-symbol parameters fixed for a
whole simulation (names, tickers, betas, volatilities, balance-sheet ratios, dividend and
split habits, news rates), drawn from the config's own random streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfr_ml_pipelines.lib.market_data.synthetic import text
from vfr_ml_pipelines.lib.market_data.synthetic.config import SyntheticMarketConfig, stream

SECTORS = (
    "Technology", "Healthcare", "Financials", "Energy", "Industrials",
    "ConsumerDiscretionary", "ConsumerStaples", "Utilities", "Materials", "RealEstate",
)
# book-to-market median, assets/book, revenue/assets per year, gross margin, inventory/assets
SECTOR_PROFILE = {
    "Technology": (0.25, 1.6, 0.60, 0.60, 0.05),
    "Healthcare": (0.30, 1.8, 0.60, 0.65, 0.08),
    "Financials": (0.90, 9.0, 0.07, 0.90, 0.00),
    "Energy": (0.80, 2.2, 0.70, 0.35, 0.06),
    "Industrials": (0.45, 2.5, 0.80, 0.30, 0.15),
    "ConsumerDiscretionary": (0.35, 2.6, 1.20, 0.38, 0.18),
    "ConsumerStaples": (0.35, 2.6, 1.10, 0.35, 0.14),
    "Utilities": (0.65, 3.2, 0.30, 0.45, 0.03),
    "Materials": (0.60, 2.2, 0.70, 0.28, 0.14),
    "RealEstate": (0.75, 2.8, 0.12, 0.60, 0.00),
}


@dataclass
class Static:
    """Per-symbol parameters, fixed for the whole simulation."""

    symbols: list[str]
    names: list[str]
    sectors: list[str]
    sector_idx: np.ndarray
    beta: np.ndarray
    idio_vol: np.ndarray
    price0: np.ndarray
    shares0: np.ndarray
    turnover: np.ndarray
    book_to_market0: np.ndarray
    roe: np.ndarray
    leverage: np.ndarray
    asset_turnover: np.ndarray
    gross_margin: np.ndarray
    inventory_ratio: np.ndarray
    cash_ratio: np.ndarray
    current_ratio: np.ndarray
    debt_share: np.ndarray
    da_rate: np.ndarray
    capex_ratio: np.ndarray
    payer: np.ndarray
    dividend_yield: np.ndarray
    ex_phase: np.ndarray
    ex_session: np.ndarray
    split_threshold: np.ndarray
    event_rate: np.ndarray
    routine_rate: np.ndarray


def static_params(config: SyntheticMarketConfig) -> Static:
    n = config.n_symbols
    names_rng = stream(config, 0)
    symbols = text.tickers(names_rng, n)
    sector_idx = np.arange(n) % len(SECTORS)
    sectors = [SECTORS[k] for k in sector_idx]
    names = text.company_names(names_rng, sectors)
    profile = np.array([SECTOR_PROFILE[s] for s in sectors])

    rng = stream(config, 1)
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    return Static(
        symbols=symbols, names=names, sectors=sectors, sector_idx=sector_idx,
        beta=np.clip(rng.normal(1.0, 0.3, n), 0.3, 2.0),
        idio_vol=u(0.011, 0.024),
        price0=np.exp(rng.normal(np.log(45.0), 0.8, n)),
        shares0=np.round(np.exp(rng.normal(np.log(2e8), 1.0, n)), -3),
        turnover=u(0.003, 0.012),
        book_to_market0=profile[:, 0] * np.exp(rng.normal(0.0, 0.5, n)),
        roe=np.clip(rng.normal(0.11, 0.07, n), -0.06, 0.35),
        leverage=np.maximum(profile[:, 1] * np.exp(rng.normal(0.0, 0.2, n)), 1.2),
        asset_turnover=profile[:, 2] * np.exp(rng.normal(0.0, 0.2, n)),
        gross_margin=np.clip(profile[:, 3] + rng.normal(0.0, 0.06, n), 0.1, 0.95),
        inventory_ratio=profile[:, 4] * u(0.6, 1.4),
        cash_ratio=u(0.03, 0.18),
        current_ratio=u(1.0, 2.5),
        debt_share=u(0.2, 0.75),
        da_rate=u(0.02, 0.06),
        capex_ratio=u(0.02, 0.10),
        payer=rng.random(n) < 0.45,
        dividend_yield=u(0.01, 0.045),
        ex_phase=rng.integers(0, 3, n),
        ex_session=rng.integers(3, 15, n),
        split_threshold=np.exp(rng.normal(np.log(200.0), 0.3, n)),
        event_rate=u(0.08, 0.25),
        routine_rate=u(0.05, 0.25),
    )
