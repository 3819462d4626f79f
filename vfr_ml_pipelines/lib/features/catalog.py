"""Every feature this project computes, by block, and how the feature matrix is built
from them (which columns are ranked, z-scored or sector-neutralised per day)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vfr_ml_pipelines.lib.features import fundamental, sentiment, technical
from vfr_ml_pipelines.lib.features.spec import FeatureSpec

MATRIX_VERSION = "feature-matrix-v1"

BLOCKS: dict[str, tuple[str, tuple[FeatureSpec, ...]]] = {
    "technical": (technical.FEATURE_SET_VERSION, technical.TECHNICAL_FEATURES),
    "fundamental": (fundamental.FEATURE_SET_VERSION, fundamental.FUNDAMENTAL_FEATURES),
    "sentiment": (sentiment.FEATURE_SET_VERSION, sentiment.SENTIMENT_FEATURES),
}

RAW_SPECS: tuple[FeatureSpec, ...] = tuple(spec for _, specs in BLOCKS.values() for spec in specs)
RAW_NAMES: tuple[str, ...] = tuple(spec.name for spec in RAW_SPECS)
FEATURE_SET_OF: dict[str, str] = {spec.name: version for version, specs in BLOCKS.values() for spec in specs}

# Per-day ranks of the signals that matter most in cross-section (momentum/reversal, value,
# tone); z-scores of scale-free technical levels; sector-neutral value and quality, whose
# levels differ by sector for reasons that do not predict returns.
RANK_COLUMNS = ("roc_5", "roc_20", "mom_60", "rsi_14", "earnings_yield_ttm", "book_to_market", "tone_mean_3", "tone_mean_10")
ZSCORE_COLUMNS = ("volatility_20", "volume_zscore_20", "sma_ratio_20", "macd_hist_pct", "atr_14_pct")
NEUTRAL_COLUMNS = ("earnings_yield_ttm", "book_to_market", "roe_ttm", "gross_margin_ttm")

# Plausible ranges used to validate exported values (VFR's `validation_status`).
RANGES: dict[str, tuple[float, float]] = {
    "rsi_14": (0.0, 100.0), "stoch_k_14": (0.0, 100.0), "stoch_d_14": (0.0, 100.0),
    "willr_14": (-100.0, 0.0), "rsv_20": (0.0, 1.0), "rsv_60": (0.0, 1.0), "linreg_rsq_20": (0.0, 1.0),
    "pv_corr_20": (-1.0, 1.0), "tone": (-1.0, 1.0), "positive_share": (0.0, 1.0), "negative_share": (0.0, 1.0),
    "negative_word_share": (0.0, 1.0), "news_count": (0.0, math.inf), "days_since_filing": (0.0, 400.0),
}

# Features that follow the calendar, not the market: drift monitoring measures them but never
# scores them (lib/monitoring/drift.py). Companies file in the same weeks of each quarter, so
# any 20-session window covers a narrow band of the filing cycle while a two-year reference
# covers all of it: its distribution "moves" every window with no change at all.
CALENDAR_CYCLE_FEATURES: dict[str, str] = {
    "days_since_filing": "calendar cycle (quarterly filing season): a short window covers one phase of it",
}

# A feature whose raw datasets (its spec's `source`, e.g. "fundamentals+prices") are not
# all stored has no source: in a price-only export (no fundamentals, no news) it would be
# NaN or a constant 0 everywhere, so it stays out of the matrix, the models and VFR's
# export. A block enters the matrix when at least one of its features does.


def datasets_of(spec: FeatureSpec) -> set[str]:
    return set(spec.source.split("+"))


def names_with_source(block: str, datasets_with_rows: Iterable[str]) -> tuple[str, ...]:
    """The features of `block` whose raw datasets are all among `datasets_with_rows`, in
    catalog order: what that block's asset computes and stores (none: the asset skips)."""
    if block not in BLOCKS:
        raise ValueError(f"unknown feature block {block!r}; expected one of {list(BLOCKS)}")
    available = set(datasets_with_rows)
    return tuple(spec.name for spec in BLOCKS[block][1] if datasets_of(spec) <= available)


@dataclass(frozen=True)
class MatrixColumns:
    """Which feature-block columns enter the matrix, raw and transformed."""

    blocks: tuple[str, ...]
    raw: tuple[str, ...]
    rank: tuple[str, ...]
    zscore: tuple[str, ...]
    neutral: tuple[str, ...]

    @property
    def versions(self) -> list[str]:
        return [BLOCKS[block][0] for block in self.blocks]


def matrix_columns(datasets_with_rows: Iterable[str] = ("prices", "fundamentals", "news")) -> MatrixColumns:
    """The matrix's columns when only `datasets_with_rows` have data (prices must be one:
    the matrix has the rows of the technical block)."""
    available = set(datasets_with_rows)
    if "prices" not in available:
        raise ValueError(f"the feature matrix needs prices; the datasets with data are {sorted(available)}")
    names = {name for block in BLOCKS for name in names_with_source(block, available)}
    blocks = tuple(block for block, (_, specs) in BLOCKS.items() if any(spec.name in names for spec in specs))
    return MatrixColumns(
        blocks=blocks,
        raw=tuple(n for n in RAW_NAMES if n in names),
        rank=tuple(n for n in RANK_COLUMNS if n in names),
        zscore=tuple(n for n in ZSCORE_COLUMNS if n in names),
        neutral=tuple(n for n in NEUTRAL_COLUMNS if n in names),
    )


def raw_names_in(columns: Iterable[str]) -> list[str]:
    """The raw feature names among `columns` (a matrix's or a stored vector's), in catalog
    order: what VFR is given, and what its completeness is measured over."""
    present = set(columns)
    return [n for n in RAW_NAMES if n in present]


def specs_in(columns: Iterable[str]) -> tuple[FeatureSpec, ...]:
    """The specs of the raw features among `columns` (for `ml_feature_definitions`)."""
    present = set(columns)
    return tuple(spec for spec in RAW_SPECS if spec.name in present)


def check_catalog() -> None:
    """Feature names are unique across blocks and every transformed column exists."""
    duplicates = {n for n in RAW_NAMES if RAW_NAMES.count(n) > 1}
    if duplicates:
        raise ValueError(f"feature names defined in two blocks: {sorted(duplicates)}")
    unknown = (set(RANK_COLUMNS) | set(ZSCORE_COLUMNS) | set(NEUTRAL_COLUMNS)) - set(RAW_NAMES)
    if unknown:
        raise ValueError(f"transformed columns that no block computes: {sorted(unknown)}")
    unknown_sources = {spec.name: spec.source for spec in RAW_SPECS if not datasets_of(spec) <= {"prices", "fundamentals", "news"}}
    if unknown_sources:
        raise ValueError(f"features with a source that is no raw dataset: {unknown_sources}")


check_catalog()
