"""Is a Sharpe ratio luck? Bootstrap intervals, the probabilistic and the deflated Sharpe ratio
(Bailey & Lopez de Prado 2012, 2014), and the paired bootstrap that flags a leak.

Sharpe ratios here are per session (not annualized) unless the name says `annual`; the
bootstrap resamples circular blocks of sessions (default 10) so that short-range dependence in
the returns is kept. Every random draw comes from `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from vfr_ml_pipelines.lib.backtests.config import ANNUALIZATION

EULER_GAMMA = 0.5772156649015329


def block_bootstrap_indices(n: int, n_samples: int, *, block: int = 10, seed: int = 0) -> np.ndarray:
    """(n_samples x n) session indices made of circular blocks of `block` consecutive sessions."""
    if n < 1:
        raise ValueError("block_bootstrap_indices: no sessions")
    block = max(1, min(block, n))
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(n_samples, n_blocks))
    indices = (starts[:, :, None] + np.arange(block)) % n
    return indices.reshape(n_samples, -1)[:, :n]


def _sharpe(samples: np.ndarray) -> np.ndarray:
    std = samples.std(axis=-1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 0, samples.mean(axis=-1) / std, np.nan)


def sharpe_confidence_interval(returns, *, level: float = 0.95, n_samples: int = 2000, block: int = 10, seed: int = 0) -> tuple[float, float]:
    """Percentile block-bootstrap interval of the annualized Sharpe ratio."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) < 3:
        return np.nan, np.nan
    sharpes = _sharpe(r[block_bootstrap_indices(len(r), n_samples, block=block, seed=seed)]) * np.sqrt(ANNUALIZATION)
    tail = (1 - level) / 2
    low, high = np.nanquantile(sharpes, [tail, 1 - tail])
    return float(low), float(high)


def _moments(r: np.ndarray) -> tuple[float, float, float]:
    return float(_sharpe(r)), float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))


def probabilistic_sharpe_ratio(returns, benchmark_sharpe: float = 0.0) -> float:
    """P(true Sharpe > benchmark_sharpe) given the sample's length, skewness and kurtosis:
    PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2)), SR and SR* per
    session, kurt the raw (non-excess) kurtosis."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) < 3:
        return np.nan
    sharpe, skew, kurt = _moments(r)
    if not np.isfinite(sharpe):
        return np.nan
    denominator = 1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2
    return float(stats.norm.cdf((sharpe - benchmark_sharpe) * np.sqrt(len(r) - 1) / np.sqrt(max(denominator, 1e-12))))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """The Sharpe ratio the best of `n_trials` skill-less strategies reaches by luck:
    sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g Euler's constant."""
    if n_trials <= 1:
        return 0.0
    quantiles = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n_trials * np.e))
    return float(np.sqrt(sharpe_variance) * quantiles)


def deflated_sharpe_ratio(returns, n_trials: int, trial_sharpes=None) -> float:
    """The PSR against the Sharpe the best of `n_trials` lucky strategies would show. The
    variance of the trials' Sharpe ratios (per session) comes from `trial_sharpes` when there
    are at least two, else from the estimator's own variance (1 - skew SR + (kurt-1)/4 SR^2) /
    (n - 1), i.e. as if the trials were independent draws of this strategy's noise."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) < 3:
        return np.nan
    if trial_sharpes is not None and np.isfinite(trial_sharpes).sum() >= 2:
        variance = float(np.nanvar(np.asarray(trial_sharpes, dtype=float), ddof=1))
    else:
        sharpe, skew, kurt = _moments(r)
        variance = (1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2) / (len(r) - 1)
    return probabilistic_sharpe_ratio(r, expected_max_sharpe(n_trials, variance))


@dataclass(frozen=True)
class PairedDifference:
    """Mean daily difference a - b, annualized, with its block-bootstrap interval; `above` when
    the whole interval is above 0 (a beats b beyond noise)."""

    annual_difference: float
    low: float
    high: float

    @property
    def above(self) -> bool:
        return bool(np.isfinite(self.low) and self.low > 0)


def paired_difference(a, b, *, level: float = 0.95, n_samples: int = 2000, block: int = 10, seed: int = 0) -> PairedDifference:
    """Bootstrap the sessions (the same resampled sessions for both series, so the common
    market moves cancel) of the daily difference a - b."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    difference = difference[np.isfinite(difference)]
    if len(difference) < 3:
        return PairedDifference(np.nan, np.nan, np.nan)
    means = difference[block_bootstrap_indices(len(difference), n_samples, block=block, seed=seed)].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail]) * ANNUALIZATION
    return PairedDifference(float(difference.mean() * ANNUALIZATION), float(low), float(high))
