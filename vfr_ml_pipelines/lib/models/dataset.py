"""Training datasets and date-based splits with a purge (no look-ahead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.dates import MISSING_DAY, day_numbers


@dataclass(frozen=True)
class DateSplit:
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    purged_rows: int

    def as_dict(self) -> dict[str, str | int]:
        return {
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "purged_rows": self.purged_rows,
        }


def join_features_labels(features: pd.DataFrame, labels: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    """Inner join on (symbol, trade_date): a row is a sample whose label is known."""
    cols = ["symbol", "trade_date", "forward_return", "excess_return", "known_date"]
    frame = features[["symbol", "trade_date", *feature_names]].merge(labels[cols], on=["symbol", "trade_date"], how="inner")
    return frame.sort_values(["trade_date", "symbol"]).reset_index(drop=True)


def date_split(frame: pd.DataFrame, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame, DateSplit]:
    """Split by date: the last `test_fraction` of days is the test period. Training rows
    whose label becomes known on or after the first test day are purged, so no training
    label overlaps the test period."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    days = sorted(frame["trade_date"].unique())
    if len(days) < 10:
        raise ValueError(f"need at least 10 labelled days to split, got {len(days)}")
    test_start = days[int(len(days) * (1.0 - test_fraction))]
    before = frame[frame["trade_date"] < test_start]
    train = before[before["known_date"] < test_start]
    test = frame[frame["trade_date"] >= test_start]
    if train.empty or test.empty:
        raise ValueError("date split left an empty train or test set")
    split = DateSplit(
        train_start=train["trade_date"].min(),
        train_end=train["trade_date"].max(),
        test_start=test_start,
        test_end=test["trade_date"].max(),
        purged_rows=len(before) - len(train),
    )
    return train, test, split


def normalized_target(frame: pd.DataFrame, label: str = "forward_return", clip: float = 3.0) -> pd.Series:
    """The training target: per trade_date, the cross-sectional z-score of `label`,
    ``(x - mean) / std`` with the POPULATION std (ddof=0, so each day's z-scores have unit
    root mean square), clipped to [-clip, clip].

    Why: the models rank stocks within a day, so the day's market move (shared by every
    stock) is noise for them; z-scoring removes it and puts calm and volatile days on one
    scale, and the clip keeps a few extreme names from dominating the squared loss.

    Only finite labels take part; a row with a missing label gets NaN (the trainers reject
    it loudly). A day with fewer than 2 finite labels, or whose labels are all equal (std 0,
    or below 1e-12 of the mean's size: rounding), gets 0.0. The result is aligned with the
    frame's index and named ``f"{label}_z"``."""
    if label not in frame.columns:
        raise ValueError(f"normalized_target: the frame has no column {label!r}")
    if "trade_date" not in frame.columns:
        raise ValueError("normalized_target: the frame has no column 'trade_date'")
    if not clip > 0:
        raise ValueError(f"normalized_target: clip must be > 0, got {clip!r}")
    days = day_numbers(frame["trade_date"])
    if (days == MISSING_DAY).any():
        raise ValueError(f"normalized_target: {int((days == MISSING_DAY).sum())} row(s) have no trade_date")
    codes, uniques = pd.factorize(days)
    x = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x)
    xs = np.where(ok, x, 0.0)
    n_days = len(uniques)
    count = np.bincount(codes, weights=ok.astype(np.float64), minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(codes, weights=xs, minlength=n_days) / count
        # two passes (deviations from the day's mean): no cancellation error of sum(x^2) - n*mean^2
        dev = np.where(ok, x - mean[codes], 0.0)
        std = np.sqrt(np.bincount(codes, weights=dev * dev, minlength=n_days) / count)
        degenerate = (count < 2) | ~(std > 1e-12 * np.abs(mean))
        z = np.where(degenerate[codes], 0.0, dev / std[codes])
    z = np.clip(z, -clip, clip)
    z[~ok] = np.nan
    return pd.Series(z, index=frame.index, name=f"{label}_z")


def rank_gauss_target(frame: pd.DataFrame, label: str = "forward_return") -> pd.Series:
    """The rank-gauss training target: per trade_date, the label's rank mapped through the
    normal quantile function, ``Phi^-1((rank - 0.5) / n)`` (average ranks for ties), then
    divided by the day's root mean square so each day has unit scale, as the z-score has.

    Why: it keeps only the cross-sectional ORDER, which is what Rank IC scores, so a few
    fat-tailed returns cannot pull a squared loss towards them, while the Gaussian shape
    keeps the squared loss well behaved (a uniform rank would weigh the middle as much as
    the tails). Rows with a non-finite label get NaN; a day with fewer than 2 finite labels
    or all labels equal gets 0.0. Aligned with the frame's index, named ``f"{label}_rg"``."""
    from scipy.special import ndtri

    if label not in frame.columns or "trade_date" not in frame.columns:
        raise ValueError(f"rank_gauss_target: the frame needs columns 'trade_date' and {label!r}")
    x = pd.to_numeric(frame[label], errors="coerce").astype(np.float64)
    finite = x.where(np.isfinite(x))
    groups = finite.groupby(frame["trade_date"], sort=False)
    n = groups.transform("count").to_numpy(dtype=np.float64)
    ranks = groups.rank(method="average").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = ndtri((ranks - 0.5) / n)
    g = np.where(n >= 2, g, 0.0)
    out = pd.Series(g, index=frame.index)
    rms = np.sqrt((out * out).groupby(frame["trade_date"], sort=False).transform("mean")).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(rms > 1e-12, out.to_numpy() / rms, 0.0)
    values[~np.isfinite(finite.to_numpy())] = np.nan
    return pd.Series(values, index=frame.index, name=f"{label}_rg")


TARGETS = ("zscore", "rank_gauss")


def training_target(frame: pd.DataFrame, kind: str, label: str = "forward_return") -> pd.Series:
    """The training target named `kind` (`TARGETS`): "zscore" (`normalized_target`) or
    "rank_gauss" (`rank_gauss_target`)."""
    if kind == "zscore":
        return normalized_target(frame, label)
    if kind == "rank_gauss":
        return rank_gauss_target(frame, label)
    raise ValueError(f"unknown training target {kind!r}; expected one of {TARGETS}")


NON_FEATURE_COLUMNS = ("symbol", "trade_date", "completeness", "quality_score")


def model_feature_names(matrix_columns: list[str]) -> list[str]:
    """Every feature-matrix column but the keys and the row-quality columns."""
    return [c for c in matrix_columns if c not in NON_FEATURE_COLUMNS]


def load_training_dataset(engine, offline_store, horizon: str) -> tuple[pd.DataFrame, list[str]]:
    """The feature matrix (offline store) joined with the horizon's labels (warehouse): one
    row per (symbol, session) whose label is known. LookupError when either is missing."""
    from vfr_ml_pipelines.lib.features import catalog
    from vfr_ml_pipelines.lib.warehouse import read_frame

    features = offline_store.read(catalog.MATRIX_VERSION)
    names = model_feature_names(list(features.columns))
    labels = read_frame(engine, "SELECT * FROM vfr_ml.labels WHERE horizon = :h", {"h": horizon})
    if labels.empty:
        raise LookupError(f"no {horizon} labels stored; materialize `labels` first")
    return join_features_labels(features, labels, names), names

