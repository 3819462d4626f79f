"""`build_feature_matrix` pinned bit for bit: digests of every column of its output on a
small synthetic market, saved from the implementation before it was split into named
steps (data/feature_matrix_reference.json). A refactoring that changes the last bit of
any value, the row order or the report fails here, naming the column.

Regenerate the file only for an intended change of the values:
`python -m vfr_ml_pipelines_tests.lib.features.test_matrix_reference`."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.matrix import build_feature_matrix
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig
from vfr_ml_pipelines_tests.feature_market import feature_blocks, synthetic_market

REFERENCE = Path(__file__).with_name("data") / "feature_matrix_reference.json"

# the ways a build is laid out: one thread or two, each day as wide as the widest, or wider
# (a part of the history laid out as wide as the whole), with every transform kind
CASES = {
    "one_thread": dict(workers=1),
    "two_threads": dict(workers=2),
    "wide_panel": dict(workers=1, panel_width=40),
    "no_sectors_min_3": dict(workers=1, min_names_per_day=3, neutral=False),
}


def _blocks() -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """The three blocks of a 14-symbol market over ten months (recent listings make the
    days ragged), with the awkward parts of real data: a shuffled block with absent rows,
    an infinity, a thin session, a symbol without a sector."""
    market = synthetic_market(SyntheticMarketConfig(as_of=date(2025, 3, 31), start=date(2024, 6, 3), n_symbols=14))
    universe = market.universe
    tech, fund, sent = feature_blocks(market).values()
    thin_day = sorted(tech["trade_date"].unique())[150]
    tech = tech.drop(index=tech.index[tech["trade_date"] == thin_day][3:]).reset_index(drop=True)
    fund = fund.sample(frac=0.95, random_state=11)
    fund.loc[fund.index[5], "book_to_market"] = np.inf
    return [tech, fund, sent], universe[["symbol", "sector"]].iloc[1:]


def _build(blocks: list[pd.DataFrame], sectors: pd.DataFrame, *, neutral: bool = True, **options) -> tuple:
    return build_feature_matrix(
        blocks, sectors, raw_columns=list(catalog.RAW_NAMES), rank_columns=list(catalog.RANK_COLUMNS),
        zscore_columns=list(catalog.ZSCORE_COLUMNS), neutral_columns=list(catalog.NEUTRAL_COLUMNS) if neutral else [],
        **options,
    )


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:24]


def _fingerprint(matrix: pd.DataFrame, report) -> dict:
    keys = "|".join(f"{s},{d}" for s, d in zip(matrix["symbol"], matrix["trade_date"]))
    return {
        "columns": list(matrix.columns),
        "keys": hashlib.sha256(keys.encode()).hexdigest()[:24],
        "values": {c: _digest(matrix[c].to_numpy(dtype=np.float64)) for c in matrix.columns[2:]},
        "index_is_range": bool(matrix.index.equals(pd.RangeIndex(len(matrix)))),
        "report": {
            "rows": report.rows, "days": report.days, "columns": list(report.columns),
            "dropped_days": [str(d) for d in report.dropped_days], "min_names_per_day": report.min_names_per_day,
            "missing_share": {c: float(v).hex() for c, v in report.missing_share.items()},
        },
    }


def _fingerprints() -> dict:
    blocks, sectors = _blocks()
    return {name: _fingerprint(*_build(blocks, sectors, **options)) for name, options in CASES.items()}


@pytest.fixture(scope="module")
def fingerprints() -> dict:
    return _fingerprints()


@pytest.mark.parametrize("case", list(CASES))
def test_the_matrix_is_the_saved_one_bit_for_bit(fingerprints, case):
    saved = json.loads(REFERENCE.read_text())[case]
    now = fingerprints[case]
    assert now["columns"] == saved["columns"]
    assert now["keys"] == saved["keys"]
    assert now["index_is_range"] and saved["index_is_range"]
    changed = [c for c in saved["values"] if now["values"][c] != saved["values"][c]]
    assert changed == []
    assert now["report"] == saved["report"]


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(_fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
