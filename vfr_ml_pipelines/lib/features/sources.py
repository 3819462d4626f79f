"""Which raw datasets have data: a feature block without its dataset has no source and
stays out of the matrix (`catalog.matrix_columns`) and its asset computes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.warehouse import read_frame

_TABLES = {"prices": "vfr_ml.raw_prices", "fundamentals": "vfr_ml.raw_fundamentals", "news": "vfr_ml.raw_news"}


def datasets_with_rows(engine) -> set[str]:
    """The raw datasets (prices, fundamentals, news) with at least one stored row."""
    sql = "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {table}) AS {name}" for name, table in _TABLES.items())
    row = read_frame(engine, sql).iloc[0]
    return {name for name in _TABLES if bool(row[name])}


@dataclass(frozen=True)
class BlockSources:
    """Which features of a block have their raw data stored (`catalog.names_with_source`)."""

    block: str
    datasets: frozenset[str]  # the raw datasets with rows
    names: tuple[str, ...]  # computed and stored
    without_source: tuple[str, ...]  # left out: NaN or a constant 0 everywhere without their data


def block_sources(engine, block: str) -> BlockSources:
    """`block`'s features split by whether their raw datasets have rows in the warehouse."""
    datasets = frozenset(datasets_with_rows(engine))
    names = catalog.names_with_source(block, datasets)
    every = tuple(spec.name for spec in catalog.BLOCKS[block][1])
    return BlockSources(block, datasets, names, tuple(n for n in every if n not in names))
