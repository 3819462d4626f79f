"""A small synthetic market and its three feature blocks, as the feature tests set them
up: the whole market, or the price-only one (no fundamentals, no news) of a vendor's
prices-only export."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.features import fundamental, sentiment, technical
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, SyntheticMarketProvider, generate_prices


class Market(NamedTuple):
    provider: SyntheticMarketProvider
    universe: pd.DataFrame
    symbols: list[str]
    prices: pd.DataFrame  # adjusted, as the `adjusted_prices` snapshot holds them


def synthetic_market(config: SyntheticMarketConfig) -> Market:
    provider = SyntheticMarketProvider(config)
    universe = provider.universe(config.as_of)
    symbols = universe["symbol"].tolist()
    return Market(provider, universe, symbols, adjust_prices(provider.prices(symbols, config.start, config.as_of)))


def feature_blocks(market: Market, *, price_only: bool = False) -> dict[str, pd.DataFrame]:
    """The technical, fundamental and sentiment blocks by feature-set version; `price_only`:
    computed as if no fundamentals and no news were stored."""
    provider, _, symbols, prices = market
    config = provider.config
    reports = provider.fundamentals(symbols, config.start, config.as_of)
    news = provider.news(symbols, config.start, config.as_of)
    if price_only:
        reports, news = reports.iloc[:0], news.iloc[:0]
    return {
        technical.FEATURE_SET_VERSION: technical.compute_technical_features(prices),
        fundamental.FEATURE_SET_VERSION: fundamental.compute_fundamental_features(prices, reports),
        sentiment.FEATURE_SET_VERSION: sentiment.compute_sentiment_features(news, prices),
    }


def store_price_only_market(engine: Engine, config: SyntheticMarketConfig) -> None:
    """A warehouse holding the market's raw prices and nothing else."""
    generate_prices(config).assign(source="test").to_sql("raw_prices", engine, schema="vfr_ml", if_exists="append", index=False)
