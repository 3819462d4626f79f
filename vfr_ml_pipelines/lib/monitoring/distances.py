"""The two-sample measures of feature drift on sorted finite samples (`drift.py` says what
each means and how the drift rule reads them): PSI of two share vectors, the KS statistic and
its p-value as scipy's ks_2samp gives them, and scipy's Wasserstein distance in O(n log m)
against a reference whose running sums are computed once per champion."""

from __future__ import annotations

import numpy as np
from scipy import stats

# scipy's ks_2samp uses the exact distribution up to this sample size ("auto" mode)
_SCIPY_EXACT_KS_MAX_N = 10_000


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    return float(np.sum((current_shares - reference_shares) * np.log(current_shares / reference_shares)))


def ks_statistic_sorted(reference: np.ndarray, current: np.ndarray, at_or_below: np.ndarray | None = None) -> float:
    """sup |F_cur - F_ref| of two sorted finite samples, equal to scipy's ks_2samp statistic.
    `at_or_below` = searchsorted(reference, current, "right") when the caller already has it."""
    m, n = len(reference), len(current)
    if at_or_below is None:
        at_or_below = np.searchsorted(reference, current, side="right")
    gap_at = np.abs(np.searchsorted(current, current, side="right") / n - at_or_below / m)
    gap_before = np.abs(np.searchsorted(current, current, side="left") / n - np.searchsorted(reference, current, side="left") / m)
    return float(max(gap_at.max(), gap_before.max()))


def ks_pvalue(statistic: float, reference: np.ndarray, current: np.ndarray, exact: bool = False) -> float:
    """The two-sided p-value as ks_2samp's "auto" mode gives it: Smirnov's asymptotic
    distribution for large samples (closed form here), scipy's exact path for small ones.
    `exact=False`: the Kolmogorov limit distribution instead (see DriftConfig)."""
    m, n = len(reference), len(current)
    if max(m, n) <= _SCIPY_EXACT_KS_MAX_N:
        return float(stats.ks_2samp(current, reference).pvalue)
    big, small = max(m, n), min(m, n)
    effective_n = np.round(big * small / (big + small))
    if not exact:
        return float(stats.kstwobign.sf(np.sqrt(effective_n) * statistic))
    return float(np.clip(stats.kstwo.sf(statistic, effective_n), 0.0, 1.0))


def reference_prefix_sums(reference: np.ndarray) -> np.ndarray:
    """Running sums of a sorted sample, centred on its mean (less cancellation in
    `wasserstein_sorted`), with a leading 0: entry k is the sum of the k smallest."""
    return np.concatenate(([0.0], np.cumsum(reference - reference.mean())))


def wasserstein_sorted(
    reference: np.ndarray, current: np.ndarray, prefix: np.ndarray | None = None, at_or_below: np.ndarray | None = None
) -> float:
    """scipy's wasserstein_distance (the integral of |F_cur - F_ref|) of two sorted finite
    samples in O(n log m) for n current and m reference values, with no pass over the reference
    when its `prefix` (`reference_prefix_sums`) and `at_or_below` (searchsorted(reference,
    current, "right")) are given.

    Between two consecutive current points F_cur is a constant a, so the integral there is
    split where the monotone F_ref reaches a, and each part follows from
    G(x) = integral of F_ref up to x = (x * k(x) - sum of the k(x) reference values <= x) / m,
    read from the running sums. Before the first current point a = 0 (the integral of F_ref up
    to it); after the last a = 1 up to the reference maximum."""
    m, n = len(reference), len(current)
    if prefix is None:
        prefix = reference_prefix_sums(reference)
    if at_or_below is None:
        at_or_below = np.searchsorted(reference, current, side="right")
    centre = reference.mean()  # the centre `reference_prefix_sums` used

    def area_below(x: np.ndarray, k: np.ndarray) -> np.ndarray:  # m * G(x), k = #reference <= x
        return (x - centre) * k - prefix[k]

    last = max(current[-1], reference[-1])
    start = np.concatenate((current[:1], current))
    end = np.append(current, last)
    k_start = np.concatenate((at_or_below[:1], at_or_below))
    k_end = np.append(at_or_below, m)
    # F_cur on [start, end) is count / n; F_ref >= count / n from reference index ceil(count m / n) - 1
    count = np.arange(0, n + 1)
    need = -(-count * m // n)
    crossing = np.where(need <= 0, -np.inf, reference[np.clip(need - 1, 0, m - 1)])
    split = np.clip(crossing, start, end)
    k_split = np.searchsorted(reference, split, side="right")
    level = count / n
    g_start, g_split, g_end = area_below(start, k_start) / m, area_below(split, k_split) / m, area_below(end, k_end) / m
    rising = level * (split - start) - (g_split - g_start)
    falling = (g_end - g_split) - level * (end - split)
    head = area_below(current[:1], at_or_below[:1])[0] / m
    return float(head + np.sum(rising + falling))
