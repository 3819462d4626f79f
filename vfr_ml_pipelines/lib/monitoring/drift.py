"""Feature drift: each feature's current window against the reference window (the champion's
training window), with PSI, the two-sample KS test and the normalized Wasserstein distance.

Measures (per feature; +-inf count as missing)
----------------------------------------------
* ``psi``: population stability index over ``psi_bins`` quantile bins of the reference,
  ``sum((cur - ref) * ln(cur / ref))`` over bins. Edges are the reference's interior
  quantiles (numpy's "linear" rule) with duplicates removed, bins are right-closed
  (``(-inf, e1], (e1, e2], ..., (e_k, inf)``): heavy ties collapse bins instead of making
  empty ones, and a constant reference keeps two bins (``<= c`` and ``> c``), so any move of a
  constant feature shows. A share of 0 becomes ``epsilon`` (not renormalized) so an empty bin
  gives a large but finite PSI. ``nan_policy="bin"`` (default) adds the missing values as a
  bin of their own, with shares over all rows: a feature that goes missing (a broken provider)
  is drift. ``"exclude"`` compares the finite values only.
* ``ks_statistic`` / ``ks_pvalue``: scipy.stats.ks_2samp (two-sided, method "auto") on the
  finite values, to 1e-9 (the p-value with ``exact_pvalues=True``; by default, where scipy
  takes its asymptotic path, it is read from the Kolmogorov limit: 5x cheaper, within 0.02).
  The p-value answers "any difference at all": with 10,000 current and 250,000 reference rows
  it is tiny for shifts nobody cares about, so the drift vote uses the statistic as an effect
  size and the p-value only as a guard for small samples.
* ``wasserstein``: scipy.stats.wasserstein_distance of the finite values divided by the
  reference's standard deviation (ddof=1), so it reads "shift in reference standard
  deviations" (a pure location shift of k std gives k). A constant reference gives 0 when
  the current window is the same constant, else +inf.

Rule: a feature is drifted when at least ``votes_required`` (default 1: any) of the three
measures reach their drift threshold (``psi >= psi_drift``; ``ks_statistic >= ks_statistic``
and ``ks_pvalue < ks_alpha``; ``wasserstein >= wasserstein``), or when it has reference values
but no finite current value. The detection study compared "any" with "two of three": with the
effect-size thresholds set above the noise of an unshifted window, "any" finds scale changes
(which move Wasserstein and PSI more than KS) that "two of three" misses, at no false alarm.
Per-feature thresholds (calibration): when the reference is profiled with its sessions,
``calibration_window``-session windows are slid through it (every ``calibration_stride``
sessions) and each window is measured against the whole reference exactly as a current
window is. Each feature's PSI / KS / Wasserstein threshold is the ``calibration_quantile`` of
those null values times ``calibration_margin``, never below the global threshold above. So a
feature whose unshifted windows always look far from the reference (per-symbol-persistent
fundamentals in a small universe, trend features that follow the common market factor) gets a
threshold that says so, while a feature that is stable window to window keeps the global one.
Features that are known calendar cycles (``catalog.CALENDAR_CYCLE_FEATURES``, e.g.
``days_since_filing``) are measured but never scored: their weight is 0 and the table's
``excluded`` column gives the reason.
Weights are the champion's feature importance normalized to sum 1 over the compared features
(features missing from the mapping weigh 0; no mapping, or all zero, means equal weights).
``score`` = sum of the weights of the drifted features. Second trigger, not weighted by
importance ("breadth"): a shift the model barely uses (a market-wide volatility rise moves
the raw volatility, range and candle features, ~3 % of a trained model's importance) never
reaches the weighted threshold, but moves several features far beyond anything their
reference windows did. Each feature's ``exceedance`` is the largest of measure / scale over
PSI, KS and Wasserstein, the scale being its calibrated level (the reference windows' level
times the margin) without the global floor, but at least ``breadth_relative_floor`` (1/4) of
it (features that never move, such as daily ranks, would otherwise divide by ~0), times the
feature's typical exceedance (``breadth_typical_quantile``: the median of its exceedances on
the reference windows judged leave-neighbours-out, at least ``breadth_typical_floor`` 0.25):
valuation ratios that ride the market's level and year-over-year fundamentals wander beyond
their reference on unshifted windows, and would otherwise fill the top ranks. A feature
with no finite value has exceedance +inf. ``breadth`` = the ``breadth_features``-th (3rd)
largest exceedance among the scored features. Its threshold comes from the same reference
windows (`breadth_null`): each window's exceedances and typical exceedances are computed
from the windows that share no session with it (leave-neighbours-out; against scales that
include it, a window can never exceed them), and a quantile of those values times
``breadth_margin`` (1.25), never below ``breadth_floor`` (1), is the threshold. The statistic
is read on the whole current window and on its last ``breadth_short_windows`` (5 and 10)
sessions, each length with scales and threshold from reference windows of that length (10
shifted sessions in a 20-session window are diluted by 10 unshifted ones; in a 10-session
window they are alone); the quantile is ``breadth_quantile`` (0.95) Bonferroni-corrected for
the number of lengths (0.983 for three): the breadth fires when any length passes its
threshold. A quantile rather than the maximum: the first windows of a reference hold the
warm-up of the year-over-year fundamentals, which no later window repeats. The short windows
need the rows' sessions (`compare(..., sessions=...)`); without them only the whole window is
read. A profile without calibration has no breadth trigger. The window is drifted when
``score >= score_threshold`` (trigger "importance") or a breadth reaches its threshold
(trigger "breadth"); the
report names the triggers that fired. The thresholds were chosen with the detection studies
(`detection_study.py` and benchmarks/study_simulator_drift.py, tables in docs/monitoring.md).

Speed: the reference is profiled once (`ReferenceProfile`: each column sorted, quantile edges,
bin shares, std); a comparison sorts the small current window and uses searchsorted only:
the KS statistic is read at the current points (right values and left limits: between two
current points the current ECDF is flat and the reference ECDF monotone, so the extremes lie
there), the PSI counts come from searchsorted of the edges, and the Wasserstein integral from
the reference's running sums between consecutive current points (`wasserstein_sorted`).
Nothing in a comparison is O(reference size) except a mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.features.catalog import CALENDAR_CYCLE_FEATURES
from vfr_ml_pipelines.lib.monitoring.distances import (
    ks_pvalue, ks_statistic_sorted, psi, reference_prefix_sums, wasserstein_sorted,
)
from vfr_ml_pipelines.lib.monitoring.drift_thresholds import (
    Calibration, ShortWindow, breadth_null, breadth_scales, calibrated_breadth, calibrated_thresholds, exceedance, kth_largest,
)
from vfr_ml_pipelines.lib.monitoring.plots import drift_bars_png

NAN_POLICIES = ("bin", "exclude")


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift rule (module docstring); Dagster config takes its defaults here."""

    psi_bins: int = 10
    psi_warn: float = 0.10  # industry convention: < 0.1 stable, 0.1-0.25 watch, >= 0.25 shifted
    psi_drift: float = 0.25
    # effect sizes set with the detection study (docs/monitoring.md): a 20-session window of
    # persistent features under a moving market regime reaches KS 0.14 and Wasserstein 0.35 std
    # in 1 feature-window in 1,000 with no shift at all, so a single feature can pass; the
    # importance-weighted score below is what keeps false alarms away (its largest value on
    # unshifted windows was 0.03)
    ks_statistic: float = 0.12
    ks_alpha: float = 0.01
    wasserstein: float = 0.30
    votes_required: int = 1
    nan_policy: str = "bin"
    epsilon: float = 1e-4
    # scipy's KS p-value at 10,000 x 250,000 rows costs ~10 ms a feature (Smirnov's sum or
    # Durbin's matrix), five times the rest of a comparison, so by default the p-value comes from
    # the Kolmogorov limit distribution (kstwobign, error O(1/sqrt(n))): the vote only asks
    # p < ks_alpha, a guard for small samples. True gives scipy's figure to 1e-9.
    exact_pvalues: bool = False
    # importance-weighted share of drifted features at which the window counts as drifted
    score_threshold: float = 0.25
    # per-feature thresholds from the reference's own windows (module docstring): the largest
    # excursion of a 20-session window inside two years (quantile 1.0 = the max) is what the
    # feature does with no shift at all; the margin covers that each window is part of the
    # reference it is compared with (1/25 of it) and the windows the stride skips
    calibrate: bool = True
    calibration_window: int = 20  # the current window's length (sessions)
    calibration_stride: int = 5
    calibration_quantile: float = 1.0
    calibration_margin: float = 1.1
    # the breadth trigger (module docstring): the k-th largest exceedance of the scored
    # features against the reference windows' own (leave-neighbours-out), chosen on the
    # simulator study's seeds 0-2 and reported on 3-5 (docs/monitoring.md)
    breadth_trigger: bool = True
    breadth_features: int = 3
    breadth_relative_floor: float = 0.25
    breadth_quantile: float = 0.95
    breadth_margin: float = 1.25
    breadth_floor: float = 1.0
    # the breadth statistic is also read on the last N sessions of the current window, each
    # length against its own reference windows (a 20-session window holds 10 shifted sessions
    # diluted by 10 unshifted ones; a 10-session window holds them alone); lengths not shorter
    # than the current window are skipped
    breadth_short_windows: tuple[int, ...] = (5, 10)
    # each feature's exceedance is divided by its typical one on the reference's own windows
    # (leave-neighbours-out, this quantile, at least the floor; None: not divided): valuation
    # ratios riding the market's level and year-over-year fundamentals wander beyond their
    # reference on unshifted windows, and would otherwise fill the k largest
    breadth_typical_quantile: float | None = 0.5
    breadth_typical_floor: float = 0.25
    # the final breadth scale (level x typical exceedance) is never below this share of the
    # global thresholds (None: no floor): without it a feature that never moves (a daily rank)
    # sits at both floors above, 1/16 of the global thresholds, and one symbol's value going
    # from missing to present reads as an exceedance of 5 (the 50-symbol false alarms)
    breadth_scale_floor: float | None = 0.25
    # the breadth accumulated over consecutive daily reports (`drift_evidence.py`): each day
    # adds its largest breadth / threshold minus the allowance, never below 0; the "evidence"
    # trigger fires at the threshold (None: off). Both chosen on the simulator study's
    # development seeds 0-5 at 100 and 50 symbols (docs/monitoring.md, "Accumulated evidence"):
    # an allowance of 0.6 lets unshifted days accumulate (13 false alarms in 60 windows),
    # 0.75-0.8 adds little; threshold 0.2 raised one false alarm, 0.3-0.6 none
    breadth_evidence_allowance: float = 0.7
    breadth_evidence_threshold: float | None = 0.4

    def __post_init__(self) -> None:
        if self.psi_bins < 2:
            raise ValueError(f"psi_bins must be at least 2, got {self.psi_bins}")
        if not 0 < self.psi_warn <= self.psi_drift:
            raise ValueError(f"need 0 < psi_warn <= psi_drift, got {self.psi_warn}, {self.psi_drift}")
        if self.nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {self.nan_policy!r}")
        if not 1 <= self.votes_required <= 3:
            raise ValueError(f"votes_required must be 1, 2 or 3, got {self.votes_required}")
        if not 0 < self.epsilon < 0.01:
            raise ValueError(f"epsilon must be in (0, 0.01), got {self.epsilon}")
        if not 0 < self.score_threshold <= 1:
            raise ValueError(f"score_threshold must be in (0, 1], got {self.score_threshold}")
        if self.calibration_window < 2 or self.calibration_stride < 1:
            raise ValueError(f"need calibration_window >= 2 and calibration_stride >= 1, got {self.calibration_window}, {self.calibration_stride}")
        if not 0.5 <= self.calibration_quantile <= 1 or self.calibration_margin < 1:
            raise ValueError(f"need calibration_quantile in [0.5, 1] and calibration_margin >= 1, got {self.calibration_quantile}, {self.calibration_margin}")
        if self.breadth_features < 1 or not 0 < self.breadth_relative_floor <= 1:
            raise ValueError(f"need breadth_features >= 1 and breadth_relative_floor in (0, 1], got {self.breadth_features}, {self.breadth_relative_floor}")
        if any(length < 2 for length in self.breadth_short_windows):
            raise ValueError(f"breadth_short_windows must be at least 2 sessions, got {self.breadth_short_windows}")
        if self.breadth_typical_quantile is not None and not 0 < self.breadth_typical_quantile <= 1 or self.breadth_typical_floor <= 0:
            raise ValueError(f"need breadth_typical_quantile in (0, 1] (or None) and breadth_typical_floor > 0, got {self.breadth_typical_quantile}, {self.breadth_typical_floor}")
        if self.breadth_evidence_allowance <= 0 or self.breadth_evidence_threshold is not None and self.breadth_evidence_threshold <= 0:
            raise ValueError(f"need breadth_evidence_allowance > 0 and breadth_evidence_threshold > 0 (or None), got {self.breadth_evidence_allowance}, {self.breadth_evidence_threshold}")
        if self.breadth_scale_floor is not None and self.breadth_scale_floor <= 0:
            raise ValueError(f"breadth_scale_floor must be > 0 (or None), got {self.breadth_scale_floor}")
        if not 0.5 <= self.breadth_quantile <= 1 or self.breadth_margin < 1 or self.breadth_floor <= 0:
            raise ValueError(f"need breadth_quantile in [0.5, 1], breadth_margin >= 1, breadth_floor > 0, got {self.breadth_quantile}, {self.breadth_margin}, {self.breadth_floor}")


def _sorted_columns(frame: pd.DataFrame, features: Sequence[str], where: str) -> list[np.ndarray]:
    """Each feature's finite values, sorted (+-inf and NaN left out). Column by column: pandas
    keeps a numeric frame as one features x rows block, so a column is a contiguous view and
    only the sort copies it."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(f"{where}: the frame has no column(s) {missing}")
    columns = []
    for name in features:
        column = frame[name]
        if not pd.api.types.is_float_dtype(column.dtype):
            column = pd.to_numeric(column, errors="coerce")
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(values)
        columns.append(np.sort(values if finite.all() else values[finite]))
    return columns


def _linear_quantiles(sorted_finite: np.ndarray, q: np.ndarray) -> np.ndarray:
    """numpy's default ("linear") quantiles of an already sorted 1-D array, without re-sorting."""
    position = (len(sorted_finite) - 1) * q
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(sorted_finite) - 1)
    return sorted_finite[low] + (position - low) * (sorted_finite[high] - sorted_finite[low])


def _bin_counts(sorted_finite: np.ndarray, edges: np.ndarray) -> np.ndarray:
    at_or_below = np.searchsorted(sorted_finite, edges, side="right")
    return np.diff(np.concatenate(([0], at_or_below, [len(sorted_finite)])))


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference window prepared once: sorted finite values, PSI edges and shares, std, and
    each feature's drift thresholds (calibrated on the reference's own windows when its
    sessions were given, else the global ones) and exclusion reason ("" when scored)."""

    features: tuple[str, ...]
    sorted_values: tuple[np.ndarray, ...]
    prefix_sums: tuple[np.ndarray, ...]
    edges: tuple[np.ndarray, ...]
    shares: tuple[np.ndarray, ...]
    std: np.ndarray
    n_rows: int
    config: DriftConfig = field(default_factory=DriftConfig)
    thresholds: np.ndarray | None = None  # features x (psi, ks, wasserstein); None: the global ones
    excluded: tuple[str, ...] = ()
    calibration_windows: int = 0
    scales: np.ndarray | None = None  # features x 3: the exceedance denominators (None: uncalibrated)
    breadth_threshold: float | None = None  # None: no breadth trigger (uncalibrated profile)
    short_windows: tuple[ShortWindow, ...] = ()  # the breadth of the current window's last sessions

    @property
    def calibration(self) -> Calibration | None:
        """What the calibration computed, to store and pass back to `from_frame` (None when uncalibrated)."""
        if self.thresholds is None or self.scales is None:
            return None
        return Calibration(self.features, self.thresholds, self.scales, self.breadth_threshold, self.calibration_windows,
                           self.short_windows)

    @classmethod
    def from_frame(
        cls, reference: pd.DataFrame, features: Sequence[str], config: DriftConfig = DriftConfig(),
        sessions: str | Sequence | None = None, excluded: Mapping[str, str] = CALENDAR_CYCLE_FEATURES,
        calibration: Calibration | None = None,
    ) -> ReferenceProfile:
        """`sessions`: a column of `reference` (or values aligned with its rows) naming each
        row's session, for the calibration; None keeps the global thresholds. `excluded`:
        feature -> why it is never scored (default: the catalog's calendar cycles).
        `calibration`: one computed before for this same reference, features and config
        (`profile.calibration`), used instead of recomputing it (`sessions` is then unused)."""
        features = tuple(features)
        if not features:
            raise ValueError("ReferenceProfile: no features to profile")
        columns = _sorted_columns(reference, features, "reference")
        quantile_levels = np.arange(1, config.psi_bins) / config.psi_bins
        sorted_values, prefix_sums, edges, shares = [], [], [], []
        std = np.full(len(features), np.nan)
        for j, name in enumerate(features):
            values = columns[j]
            if len(values) == 0:
                raise ValueError(f"reference: feature {name!r} has no finite value")
            cut = np.unique(_linear_quantiles(values, quantile_levels))
            sorted_values.append(values)
            prefix_sums.append(reference_prefix_sums(values))
            edges.append(cut)
            shares.append(_shares(_bin_counts(values, cut), len(reference) - len(values), len(reference), config))
            std[j] = values.std(ddof=1) if len(values) > 1 else 0.0
        reasons = tuple(str(excluded.get(name, "")) for name in features)
        profile = cls(features, tuple(sorted_values), tuple(prefix_sums), tuple(edges), tuple(shares), std,
                      len(reference), config, excluded=reasons)
        if calibration is not None:
            if calibration.features != features:
                raise ValueError("reference: the stored calibration was computed for other features")
            return replace(profile, thresholds=calibration.thresholds, scales=calibration.scales,
                           breadth_threshold=calibration.breadth_threshold, calibration_windows=calibration.windows,
                           short_windows=calibration.short_windows)
        if sessions is None or not config.calibrate:
            return profile
        labels = reference[sessions] if isinstance(sessions, str) else np.asarray(sessions)
        if len(labels) != len(reference):
            raise ValueError(f"reference: {len(labels)} session labels for {len(reference)} rows")
        labels = pd.Series(labels, index=reference.index)
        if labels.isna().any():
            raise ValueError("reference: some rows have no session label")
        null = _null_measures(profile, reference, labels)
        scored = np.array([not reason for reason in reasons])
        profile = replace(profile, thresholds=calibrated_thresholds(null, config), scales=breadth_scales(null, config),
                          calibration_windows=null.shape[0])
        if not config.breadth_trigger:
            return profile
        # every length tested is one more chance of a false alarm: `calibrated_breadth` holds
        # each to a quantile corrected for their number
        lengths = short_window_lengths(config)
        short = []
        for length in lengths:
            short_null = _null_measures(profile, reference, labels, length)
            short.append(ShortWindow(length, breadth_scales(short_null, config, length),
                                     calibrated_breadth(breadth_null(short_null, config, scored, length), config, len(lengths) + 1)))
        return replace(profile, breadth_threshold=calibrated_breadth(breadth_null(null, config, scored), config, len(lengths) + 1),
                       short_windows=tuple(short))


def short_window_lengths(config: DriftConfig) -> tuple[int, ...]:
    """The breadth's short windows that are shorter than the current window, longest first."""
    return tuple(sorted({n for n in config.breadth_short_windows if n < config.calibration_window}, reverse=True))


def _null_measures(profile: ReferenceProfile, reference: pd.DataFrame, labels: pd.Series, length: int | None = None) -> np.ndarray:
    """windows x features x (psi, ks, wasserstein) of the reference's own sliding windows of
    `length` sessions (default `calibration_window`) against the whole reference (NaN where a
    window has no finite value of a feature)."""
    config = profile.config
    length = length or config.calibration_window
    order = np.argsort(labels.to_numpy(), kind="stable")
    ordered = reference.iloc[order]
    session_keys, starts = np.unique(labels.to_numpy()[order], return_index=True)
    bounds = np.append(starts, len(ordered))
    first_windows = range(0, len(session_keys) - length + 1, config.calibration_stride)
    out = np.full((len(first_windows), len(profile.features), 3), np.nan)
    for w, first in enumerate(first_windows):
        window = ordered.iloc[bounds[first]:bounds[first + length]]
        columns = _sorted_columns(window, profile.features, "reference window")
        for j in range(len(profile.features)):
            feature_psi, ks, _, wasserstein = _measures(profile, j, columns[j], len(window))
            out[w, j] = feature_psi, ks, wasserstein
    return out


def _shares(bin_counts: np.ndarray, n_missing: int, n_rows: int, config: DriftConfig) -> np.ndarray:
    if config.nan_policy == "bin":
        counts, total = np.append(bin_counts, n_missing), n_rows
    else:
        counts, total = bin_counts, int(bin_counts.sum())
    if total == 0:
        return np.full(len(counts), np.nan)
    return np.maximum(counts / total, config.epsilon)


def importance_weights(features: Sequence[str], importance: Mapping[str, float] | None) -> np.ndarray:
    """Importance normalized to 1 over `features`; absent features weigh 0; equal weights when
    no importance is known (None, empty, or all zero)."""
    if importance:
        raw = np.array([float(importance.get(name, 0.0)) for name in features])
        if not np.all(np.isfinite(raw)) or np.any(raw < 0):
            raise ValueError("importance must be finite and non-negative")
        if raw.sum() > 0:
            return raw / raw.sum()
    return np.full(len(features), 1.0 / len(features))


TABLE_COLUMNS = [
    "feature", "importance", "weight", "psi", "psi_level", "ks_statistic", "ks_pvalue", "wasserstein",
    "votes", "drifted", "n_reference", "n_current", "current_missing_share",
    "psi_threshold", "ks_threshold", "wasserstein_threshold", "exceedance", "excluded",
]


@dataclass(frozen=True)
class DriftReport:
    """One comparison: the per-feature table, the importance-weighted drift score and the
    breadth (the k-th largest exceedance of the scored features) with its threshold (None:
    no breadth trigger)."""

    features_table: pd.DataFrame
    score: float
    config: DriftConfig
    breadth: float = float("nan")
    breadth_threshold: float | None = None
    # (length, breadth, threshold) of the current window's last `length` sessions
    short_breadths: tuple[tuple[int, float, float | None], ...] = ()
    # the breadth accumulated over the previous daily reports and this one (`drift_evidence.py`;
    # NaN: not accumulated, as in a one-off comparison)
    evidence: float = float("nan")

    @property
    def breadth_windows(self) -> tuple[tuple[float, float | None], ...]:
        """(breadth, threshold) of the whole window, then of each short window."""
        return ((self.breadth, self.breadth_threshold), *((b, t) for _, b, t in self.short_breadths))

    @property
    def triggers(self) -> tuple[str, ...]:
        """The triggers that fired: "importance" (weighted score), "breadth" (several features
        far out, on the whole window or on one of its short windows), "evidence" (the breadth
        accumulated over consecutive days reached its threshold)."""
        fired = ("importance",) if self.score >= self.config.score_threshold else ()
        if any(threshold is not None and breadth >= threshold for breadth, threshold in self.breadth_windows):
            fired += ("breadth",)
        limit = self.config.breadth_evidence_threshold
        if limit is not None and self.evidence >= limit:
            fired += ("evidence",)
        return fired

    @property
    def is_drifted(self) -> bool:
        return bool(self.triggers)

    def table(self) -> pd.DataFrame:
        """Columns `TABLE_COLUMNS`, most weighted drift first (a copy, safe to edit)."""
        return self.features_table.copy()

    def drifted_features(self) -> list[str]:
        return self.features_table.loc[self.features_table["drifted"], "feature"].tolist()

    def summary(self) -> dict[str, float | int | bool]:
        return {
            "drift_score": self.score,
            "breadth": self.breadth,
            "breadth_threshold": self.breadth_threshold,
            **{f"breadth_last_{n}": b for n, b, _ in self.short_breadths},
            **{f"breadth_threshold_last_{n}": t for n, _, t in self.short_breadths},
            "evidence": self.evidence,
            "triggers": ",".join(self.triggers),
            "drifted": self.is_drifted,
            "drifted_features": int(self.features_table["drifted"].sum()),
            "features": len(self.features_table),
            "max_psi": float(self.features_table["psi"].max()),
        }

    def plot_png(self, *, top: int = 25, title: str = "Feature drift") -> bytes:
        return drift_bars_png(self.features_table, top=top, title=title)


def _psi_level(value: float, config: DriftConfig) -> str:
    if not np.isfinite(value):
        return "unknown"
    return "drift" if value >= config.psi_drift else "warn" if value >= config.psi_warn else "stable"


def _measures(profile: ReferenceProfile, j: int, values: np.ndarray, n_rows: int, exact_pvalues: bool = False, pvalue: bool = False) -> tuple[float, float, float, float]:
    """(psi, ks statistic, ks p-value, normalized Wasserstein) of feature j's sorted finite
    current values against the profile (the p-value only when asked: NaN otherwise)."""
    config, reference = profile.config, profile.sorted_values[j]
    current_shares = _shares(_bin_counts(values, profile.edges[j]), n_rows - len(values), n_rows, config)
    feature_psi = psi(profile.shares[j], current_shares) if np.all(np.isfinite(current_shares)) else np.nan
    if not len(values):
        return feature_psi, np.nan, np.nan, np.nan
    at_or_below = np.searchsorted(reference, values, side="right")
    ks = ks_statistic_sorted(reference, values, at_or_below)
    pvalue_ = ks_pvalue(ks, reference, values, exact_pvalues) if pvalue else np.nan
    distance = wasserstein_sorted(reference, values, profile.prefix_sums[j], at_or_below)
    scale = profile.std[j]
    normalized = distance / scale if scale > 0 else (0.0 if distance == 0 else np.inf)
    return feature_psi, ks, pvalue_, normalized


def _short_breadths(profile: ReferenceProfile, current: pd.DataFrame, sessions: str | Sequence, scored: np.ndarray) -> tuple:
    """(length, breadth, threshold) of each short window: the last `length` sessions of `current`."""
    labels = np.asarray(current[sessions] if isinstance(sessions, str) else sessions)
    if len(labels) != len(current):
        raise ValueError(f"current: {len(labels)} session labels for {len(current)} rows")
    ordered = np.unique(labels)
    out = []
    for window in profile.short_windows:
        rows = current.loc[np.isin(labels, ordered[-window.length:])]
        columns = _sorted_columns(rows, profile.features, "current")
        measures = np.array([_measures(profile, j, columns[j], len(rows)) for j in range(len(profile.features))])
        ratios = exceedance(measures[:, [0, 1, 3]], window.scales)
        out.append((window.length, kth_largest(ratios[scored], profile.config.breadth_features), window.threshold))
    return tuple(out)


def compare(
    profile: ReferenceProfile, current: pd.DataFrame, importance: Mapping[str, float] | None = None,
    sessions: str | Sequence | None = None,
) -> DriftReport:
    """The drift of `current` (rows of the current window, one column per feature) against the
    profiled reference. `sessions` (a column of `current` or values aligned with its rows)
    names each row's session: the breadth is then also read on the profile's short windows
    (the last N sessions); without it, on the whole window only."""
    config, features = profile.config, profile.features
    columns = _sorted_columns(current, features, "current")
    n_rows = len(current)
    excluded = profile.excluded or ("",) * len(features)  # a profile built by hand excludes nothing
    thresholds = profile.thresholds if profile.thresholds is not None else np.tile(
        [config.psi_drift, config.ks_statistic, config.wasserstein], (len(features), 1))
    rows = []
    for j, name in enumerate(features):
        values = columns[j]
        feature_psi, ks, pvalue, normalized = _measures(profile, j, values, n_rows, config.exact_pvalues, pvalue=True)
        psi_at, ks_at, wasserstein_at = thresholds[j]
        votes = int(feature_psi >= psi_at) + int(ks >= ks_at and pvalue < config.ks_alpha) + int(normalized >= wasserstein_at)
        drifted = (votes >= config.votes_required or len(values) == 0) and not excluded[j]
        exceeds = np.nan if profile.scales is None else np.inf if len(values) == 0 else float(
            exceedance(np.array([feature_psi, ks, normalized]), profile.scales[j]))
        rows.append((name, feature_psi, _psi_level(feature_psi, config), ks, pvalue, normalized, votes, drifted,
                     len(profile.sorted_values[j]), len(values), 1.0 - len(values) / n_rows if n_rows else np.nan,
                     psi_at, ks_at, wasserstein_at, exceeds, excluded[j]))
    table = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c not in ("importance", "weight")])
    scored = [name for name, reason in zip(features, excluded) if not reason]
    weights = np.zeros(len(features))
    if scored:
        weights[[features.index(name) for name in scored]] = importance_weights(scored, importance)
    table.insert(1, "importance", [float(importance.get(name, np.nan)) if importance else np.nan for name in features])
    table.insert(2, "weight", weights)
    drifted = table["drifted"].to_numpy()
    score = float(weights[drifted].sum())
    scored_mask = np.array([not reason for reason in excluded])
    breadth = kth_largest(table["exceedance"].to_numpy()[scored_mask], config.breadth_features)
    short = _short_breadths(profile, current, sessions, scored_mask) if sessions is not None and profile.short_windows else ()
    order = np.lexsort((table["feature"].to_numpy(), -(table["weight"] * table["psi"].fillna(0.0)).to_numpy()))
    return DriftReport(table.iloc[order].reset_index(drop=True), score, config, breadth, profile.breadth_threshold, short)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str],
    importance: Mapping[str, float] | None = None,
    config: DriftConfig = DriftConfig(),
    sessions: str | None = None,
) -> DriftReport:
    """One-shot drift of `current` against `reference` (profile once with `ReferenceProfile`
    and call `compare` when one reference serves many windows); `sessions` names the session
    column of both."""
    return compare(ReferenceProfile.from_frame(reference, features, config, sessions), current, importance, sessions)
