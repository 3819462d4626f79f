"""Which features of a block have their raw data stored: a feature block without its
dataset has no source and stays out of the matrix (`catalog.matrix_columns`) and its asset
computes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.store import datasets_with_rows


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
