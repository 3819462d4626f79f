"""Which raw datasets have data: a feature block without its dataset has no source and
stays out of the matrix (`catalog.matrix_columns`)."""

from __future__ import annotations

from vfr_ml_pipelines.lib.warehouse import read_frame

_TABLES = {"prices": "vfr_ml.raw_prices", "fundamentals": "vfr_ml.raw_fundamentals", "news": "vfr_ml.raw_news"}


def datasets_with_rows(engine) -> set[str]:
    """The raw datasets (prices, fundamentals, news) with at least one stored row."""
    sql = "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {table}) AS {name}" for name, table in _TABLES.items())
    row = read_frame(engine, sql).iloc[0]
    return {name for name in _TABLES if bool(row[name])}
