"""Leakage canaries: checks a training run must pass before its model can be trusted.

* Shuffled labels: the labels are permuted within each date (each day keeps its label
  distribution, every link to the features is destroyed) and the SAME pipeline is trained
  and evaluated out of sample again, for a few seeds. Any skill it still shows came from
  the pipeline itself (labels or test rows reaching training, a feature computed from the
  future, ...), so the average out-of-sample Rank IC must stay within noise
  (|Rank IC| <= 0.02 by default).
* Oracle ceiling: the synthetic market knows every symbol's true expected return (its
  oracle). No model can rank the realised returns better than the true expectation unless
  it has seen the future, so a model whose Rank IC beats the oracle's on the same test
  dates by more than `z` standard errors of the paired daily difference fails the run.

Each canary returns a `CanaryResult` with a one-sentence message saying what was measured
and why it passed or failed; the pipeline logs it and fails the run on `passed=False`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models.comparison import newey_west_standard_error
from vfr_ml_pipelines.lib.models.metrics import daily_ic

SHUFFLED_LABELS = "shuffled_labels"
ORACLE_CEILING = "oracle_ceiling"
PREDICTION_COLUMNS = ("trade_date", "symbol", "score")


@dataclass(frozen=True)
class CanaryResult:
    name: str  # SHUFFLED_LABELS | ORACLE_CEILING
    passed: bool
    statistic: float  # the measured value compared with `threshold`
    threshold: float
    detail: dict[str, float] = field(default_factory=dict)  # JSON-serialisable numbers
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "passed": self.passed, "statistic": self.statistic,
            "threshold": self.threshold, "detail": dict(self.detail), "message": self.message,
        }


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; has {list(frame.columns)}")


# ----------------------------------------------------------------------------- shuffled labels


def shuffle_labels_within_days(frame: pd.DataFrame, columns: list[str], *, seed: int, by: str = "trade_date") -> pd.DataFrame:
    """A copy of `frame` whose `columns` are permuted within each `by` group.

    One permutation per day is applied to all the label columns together, so labels that
    belong together (forward_return and excess_return of one symbol) stay consistent with
    each other while losing every link to that row's features. Each day keeps exactly its
    own label values. Deterministic for a seed."""
    if not columns:
        raise ValueError("shuffle_labels_within_days: no label columns given")
    _require_columns(frame, [by, *columns], "shuffle_labels_within_days")
    codes, _ = pd.factorize(frame[by], sort=True)
    if (codes < 0).any():
        raise ValueError(f"shuffle_labels_within_days: {int((codes < 0).sum())} row(s) have no {by}")
    rng = np.random.default_rng(seed)
    # rows grouped by day in their original order, and the same rows grouped by day in a
    # random order: position k of the first receives the labels of position k of the second
    by_day = np.argsort(codes, kind="stable")
    shuffled = np.lexsort((rng.random(len(frame)), codes))
    out = frame.copy()
    for column in columns:
        values = frame[column].to_numpy(copy=True)
        values[by_day] = frame[column].to_numpy()[shuffled]
        out[column] = values
    return out


def _mean_rank_ic(predictions: pd.DataFrame, label: str, where: str) -> tuple[float, float, int]:
    """Mean daily Rank IC, its standard error over days and the number of days."""
    _require_columns(predictions, [*PREDICTION_COLUMNS, label], where)
    per_day = daily_ic(predictions, "score", label)["rank_ic"].dropna()
    n = len(per_day)
    if n == 0:
        return math.nan, math.nan, 0
    se = float(per_day.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(per_day.mean()), se, n


def shuffled_label_canary(
    run: Callable[[pd.DataFrame, int], pd.DataFrame],
    frame: pd.DataFrame,
    *,
    label_columns: list[str],
    seeds: Sequence[int] = (11, 12, 13),
    threshold: float = 0.02,
    label: str = "forward_return",
) -> CanaryResult:
    """Train and evaluate the pipeline on labels shuffled within days, once per seed.

    `run(shuffled_frame, seed)` must train and predict out of sample exactly like the real
    pipeline and return its out-of-sample predictions (trade_date, symbol, score, `label`).
    Each seed gives the mean daily Rank IC of those predictions; the canary passes when the
    average over the seeds is within `threshold` of zero. `detail` holds each seed's mean
    Rank IC, its standard error over days and number of days, and the standard error of
    the average (from the daily standard errors, the seeds being independent)."""
    if not seeds:
        raise ValueError("shuffled_label_canary: no seeds given")
    if not threshold > 0:
        raise ValueError(f"shuffled_label_canary: threshold must be positive, got {threshold}")
    detail: dict[str, float] = {}
    means: list[float] = []
    ses: list[float] = []
    for seed in seeds:
        shuffled = shuffle_labels_within_days(frame, label_columns, seed=int(seed))
        predictions = run(shuffled, int(seed))
        if not isinstance(predictions, pd.DataFrame):
            raise ValueError(f"shuffled_label_canary: run() returned {type(predictions).__name__} for seed {seed}, expected a DataFrame")
        mean, se, n_days = _mean_rank_ic(predictions, label, f"shuffled_label_canary (predictions of seed {seed})")
        detail[f"seed_{seed}_rank_ic"] = mean
        detail[f"seed_{seed}_rank_ic_se"] = se
        detail[f"seed_{seed}_n_days"] = float(n_days)
        means.append(mean)
        ses.append(se)

    average = float(np.mean(means))
    average_se = float(math.sqrt(sum(s * s for s in ses)) / len(ses))
    detail["average_rank_ic"] = average
    detail["average_rank_ic_se"] = average_se
    detail["n_seeds"] = float(len(seeds))
    if not math.isfinite(average):
        return CanaryResult(
            SHUFFLED_LABELS, False, average, threshold, detail,
            "shuffled-label canary could not measure a Rank IC (a seed's predictions had no date with at least 3 "
            "distinct scores and labels), so leakage cannot be ruled out",
        )
    passed = abs(average) <= threshold
    verdict = (
        f"within the {threshold:g} noise bound: no skill without real labels"
        if passed
        else f"beyond the {threshold:g} noise bound: the pipeline finds skill in shuffled labels, so labels reach "
        f"the model some other way (a feature computed from the label, or test rows used in training)"
    )
    message = (
        f"trained on labels shuffled within days ({len(seeds)} seeds), the out-of-sample Rank IC averages "
        f"{average:.4f} (standard error {average_se:.4f}), {verdict}"
    )
    return CanaryResult(SHUFFLED_LABELS, passed, average, threshold, detail, message)


# ----------------------------------------------------------------------------- oracle ceiling


def oracle_daily_rank_ic(predictions: pd.DataFrame, oracle: pd.DataFrame, label: str = "forward_return") -> pd.DataFrame:
    """Per-date IC and Rank IC of the oracle's expected return vs the realised `label`, on
    exactly the (trade_date, symbol) rows of `predictions`.

    `oracle` has trade_date, symbol, expected_return (one horizon: filter a multi-horizon
    oracle first). Every prediction row must have an oracle value: comparing the model and
    the oracle on different rows would not be a paired comparison."""
    _require_columns(predictions, ["trade_date", "symbol", label], "oracle_daily_rank_ic (predictions)")
    _require_columns(oracle, ["trade_date", "symbol", "expected_return"], "oracle_daily_rank_ic (oracle)")
    if "horizon" in oracle.columns and oracle["horizon"].nunique() > 1:
        raise ValueError(
            f"oracle_daily_rank_ic: oracle holds several horizons {sorted(oracle['horizon'].unique())}; pass one horizon"
        )
    keys = ["trade_date", "symbol"]
    if oracle.duplicated(keys).any():
        raise ValueError(f"oracle_daily_rank_ic: oracle has {int(oracle.duplicated(keys).sum())} duplicated (trade_date, symbol) row(s)")
    merged = predictions[[*keys, label]].merge(oracle[[*keys, "expected_return"]], on=keys, how="left")
    unmatched = int(merged["expected_return"].isna().sum())
    if unmatched:
        first = merged[merged["expected_return"].isna()].iloc[0]
        raise ValueError(
            f"oracle_daily_rank_ic: {unmatched} of {len(merged)} prediction row(s) have no oracle expected return, "
            f"e.g. ({first['trade_date']}, {first['symbol']})"
        )
    return daily_ic(merged, "expected_return", label)


def oracle_ceiling_canary(
    model_daily: pd.DataFrame, oracle_daily: pd.DataFrame, *, z: float = 3.0, lag: int = 0,
) -> CanaryResult:
    """Fail when the model ranks the realised returns better than the true expected return
    beyond noise: its mean daily Rank IC exceeds the oracle's, on the same test dates
    (inner join on trade_date), by more than `z` standard errors of the paired daily
    difference. `statistic` is the gap (model - oracle), `threshold` is z standard errors.
    `lag`: the horizon in sessions when labels overlap (1w: 5, 1m: 21); the standard error
    is then Newey-West with that lag, since consecutive days share most of their returns.
    With the plain one, a 1m model on a market with no planted signal was flagged as
    leaking (the oracle's test Rank IC happened to be -0.09)."""
    _require_columns(model_daily, ["trade_date", "rank_ic"], "oracle_ceiling_canary (model_daily)")
    _require_columns(oracle_daily, ["trade_date", "rank_ic"], "oracle_ceiling_canary (oracle_daily)")
    if not z > 0:
        raise ValueError(f"oracle_ceiling_canary: z must be positive, got {z}")
    for name, frame in (("model_daily", model_daily), ("oracle_daily", oracle_daily)):
        if frame["trade_date"].duplicated().any():
            raise ValueError(f"oracle_ceiling_canary: {name} has duplicated trade_date(s)")
    paired = model_daily[["trade_date", "rank_ic"]].merge(
        oracle_daily[["trade_date", "rank_ic"]], on="trade_date", suffixes=("_model", "_oracle")
    ).dropna()
    n = len(paired)
    if n < 2:
        raise ValueError(
            f"oracle_ceiling_canary: need at least 2 dates with both a model and an oracle Rank IC, got {n}"
        )
    difference = paired["rank_ic_model"] - paired["rank_ic_oracle"]
    model_ic = float(paired["rank_ic_model"].mean())
    oracle_ic = float(paired["rank_ic_oracle"].mean())
    gap = float(difference.mean())
    if lag > 0:
        se = float(newey_west_standard_error(difference.to_numpy(), lag))
    else:
        se = float(difference.std(ddof=1) / math.sqrt(n))
    if se > 0:
        z_score = gap / se
    else:  # identical daily differences: any positive gap is certain
        z_score = math.copysign(math.inf, gap) if gap != 0 else 0.0
    passed = not z_score > z
    detail = {
        "model_rank_ic": model_ic, "oracle_rank_ic": oracle_ic, "gap": gap, "gap_se": se,
        "z_score": z_score, "z": float(z), "n_days": float(n), "lag": float(lag),
    }
    relation = "above" if gap > 0 else "below"
    measured = f"model Rank IC {model_ic:.3f} is {relation} the oracle's {oracle_ic:.3f} by {abs(gap):.3f}"
    if not passed:
        message = (
            f"{measured} ({z_score:.1f} standard errors > {z:g}): the model has seen the future; "
            f"check the features for leaked labels"
        )
    elif gap > 0:
        message = (
            f"{measured} ({z_score:.1f} standard errors <= {z:g}, over {n} test dates): within noise of the "
            f"oracle, no sign of leakage"
        )
    else:
        message = f"{measured} over {n} test dates: no model can beat the true expected return honestly, and this one does not"
    return CanaryResult(ORACLE_CEILING, passed, gap, z * se, detail, message)
