"""What the pipeline publishes of a backtest or risk report: a markdown table of the headline
figures, the PNG plots as markdown images (base64 data URIs: the Dagster UI shows them with no
file server), and the full table and plots as MLflow artifact files (path -> bytes)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence

import pandas as pd

# the columns of the strategy x metric table shown in the UI (every column is in the artifacts)
HEADLINE = (
    "annual_return", "sharpe", "information_ratio", "max_drawdown", "annual_turnover", "annual_costs",
    "share_of_oracle", "deflated_sharpe", "leak_suspected",
)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):  # counts (sessions, days) read as counts, not 4-decimal figures
        return str(value)
    if isinstance(value, float | int):
        return "" if not math.isfinite(float(value)) else f"{float(value):.4f}"
    return "" if value is None or value is pd.NA else str(value)


def markdown_table(table: pd.DataFrame, columns: Sequence[str] | None = HEADLINE) -> str:
    """Markdown of `table` (index: strategy), with the `columns` it has (None: all)."""
    shown = [c for c in table.columns if columns is None or c in columns]
    if columns is not None:
        shown = [c for c in columns if c in shown]
    lines = ["| " + " | ".join([table.index.name or "strategy", *shown]) + " |", "|" + "---|" * (len(shown) + 1)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name), *(_cell(row[c]) for c in shown)]) + " |")
    return "\n".join(lines)


def markdown_images(images: Mapping[str, bytes]) -> str:
    """Each PNG as a markdown image with a base64 data URI, titled by its file name."""
    return "\n\n".join(
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})" for name, png in images.items()
    )


def artifact_files(folder: str, table: pd.DataFrame, images: Mapping[str, bytes]) -> dict[str, bytes]:
    """`{folder}/table.csv`, `{folder}/table.json` (records, NaN as null) and the PNGs under
    `{folder}/`."""
    records = json.loads(table.reset_index().to_json(orient="records"))
    files = {
        f"{folder}/table.csv": table.to_csv().encode(),
        f"{folder}/table.json": json.dumps(records, indent=1).encode(),
    }
    files.update({f"{folder}/{name}": png for name, png in images.items()})
    return files
