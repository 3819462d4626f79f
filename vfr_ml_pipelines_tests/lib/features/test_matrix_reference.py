"""`build_feature_matrix` pinned: fingerprints of every column of its output on a small
synthetic market, saved from the implementation before it was split into named steps
(data/feature_matrix_reference.json). A change of any value beyond floating-point noise, of
the missing values, the row order or the report fails here, naming the column.

The fingerprint of a column is its NaN count and, over the finite values, the sum, the sum
of absolute values, a sum weighted by fixed random weights (so a moved value changes it),
the minimum and the maximum, compared to 1e-11 of the column's size. Not bit for bit across machines:
numpy picks its SIMD kernels by CPU, so the last bit of a sum or a correlation differs
between machines with different vector units (7 of 117 columns did, between two machines of
this project's CI). Within one machine the layouts that must agree (one thread or two) are
still compared bit for bit.

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


RELATIVE = 1e-11  # numpy's kernels differ in the last bit (1e-16) across CPUs; a column sums ~3,000 values


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:24]


def _column_fingerprint(values: np.ndarray) -> dict:
    finite = np.isfinite(values)
    v = np.where(finite, values, 0.0)
    weights = np.random.default_rng(20261207).standard_normal(len(v))
    return {
        "nan": int((~finite).sum()),
        "sum": float(v.sum()), "abs": float(np.abs(v).sum()), "weighted": float((weights * v).sum()),
        "min": float(v[finite].min()) if finite.any() else 0.0, "max": float(v[finite].max()) if finite.any() else 0.0,
    }


def _differs(now: dict, saved: dict) -> bool:
    if now["nan"] != saved["nan"]:
        return True
    scale = max(saved["abs"], 1e-300)  # sums can cancel to ~0: tolerate noise of the column's size
    return any(not np.isclose(now[k], saved[k], rtol=RELATIVE, atol=RELATIVE * scale) for k in ("sum", "abs", "weighted", "min", "max"))


def _fingerprint(matrix: pd.DataFrame, report) -> dict:
    keys = "|".join(f"{s},{d}" for s, d in zip(matrix["symbol"], matrix["trade_date"]))
    return {
        "columns": list(matrix.columns),
        "keys": hashlib.sha256(keys.encode()).hexdigest()[:24],
        "values": {c: _column_fingerprint(matrix[c].to_numpy(dtype=np.float64)) for c in matrix.columns[2:]},
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
def test_the_matrix_is_the_saved_one(fingerprints, case):
    saved = json.loads(REFERENCE.read_text())[case]
    now = fingerprints[case]
    assert now["columns"] == saved["columns"]
    assert now["keys"] == saved["keys"]
    assert now["index_is_range"] and saved["index_is_range"]
    changed = [c for c in saved["values"] if _differs(now["values"][c], saved["values"][c])]
    assert changed == []
    assert now["report"] == saved["report"]


def test_one_thread_or_two_build_the_same_matrix_bit_for_bit():
    blocks, sectors = _blocks()
    one, _ = _build(blocks, sectors, workers=1)
    two, _ = _build(blocks, sectors, workers=2)
    assert list(one.columns) == list(two.columns)
    differing = [c for c in one.columns[2:] if _digest(one[c].to_numpy(dtype=np.float64)) != _digest(two[c].to_numpy(dtype=np.float64))]
    assert differing == []
    assert one[["symbol", "trade_date"]].equals(two[["symbol", "trade_date"]])


def test_a_changed_value_is_caught():
    """The tolerance does not hide a real change: one value moved by a millionth of itself."""
    blocks, sectors = _blocks()
    matrix, _ = _build(blocks, sectors, workers=1)
    column = matrix.columns[10]
    values = matrix[column].to_numpy(dtype=np.float64).copy()
    at = int(np.flatnonzero(np.isfinite(values) & (values != 0))[len(values) // 3])
    saved = _column_fingerprint(values)
    values[at] *= 1 + 1e-6
    assert _differs(_column_fingerprint(values), saved)


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(_fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
