"""The README's asset graph (the code block after "The asset graph") names every asset of the
Definitions, so a newcomer's map of the project is complete (issue 17: it once left out
`adjusted_prices`). Per-horizon names are written once with `h` (`lightgbm_h_model`), `{h}`
(`train_{h}_models`) or `*` (`champion_*_model`) and stand for each horizon."""

from __future__ import annotations

import re
from pathlib import Path

from vfr_ml_pipelines.definitions import defs
from vfr_ml_pipelines.lib.horizons import HORIZONS

README = Path(__file__).resolve().parents[2] / "README.md"


def graph_block(readme: str) -> str:
    """The first fenced block after the line introducing the asset graph."""
    intro = readme.index("The asset graph")
    start = readme.index("```", intro)
    return readme[start + 3 : readme.index("```", start + 3)]


def names_in(block: str) -> set[str]:
    """Every identifier of the block, per-horizon forms spelled out for each horizon."""
    names = set()
    for token in re.findall(r"[a-z][a-z0-9_{}*]*", block):
        forms = {token}
        if "{h}" in token or "*" in token or "_h_" in token:
            forms = {token.replace("{h}", h).replace("*", h).replace("_h_", f"_{h}_") for h in HORIZONS}
        names |= forms
    return names


def test_the_readme_graph_names_every_asset():
    named = names_in(graph_block(README.read_text()))
    assets = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert len(assets) > 40
    assert sorted(assets - named) == []


def test_the_per_horizon_forms_are_spelled_out():
    # an independent reference for the parser: a block in the README's own notation
    block = "per horizon h:\n  feature_matrix -> lightgbm_h_model -> champion_*_model, train_{h}_models\n"
    assert {"lightgbm_1d_model", "lightgbm_1m_model", "champion_1w_model", "train_1m_models", "feature_matrix"} <= names_in(block)
    assert "lightgbm_h_model" not in names_in(block)
    assert "adjusted_prices" not in names_in("raw_prices -> labels")
