"""Value at Risk and Expected Shortfall, and their out-of-sample backtest.

VaR and CVaR are reported as positive losses (a share of the portfolio) of simple daily
returns, at level 0.95 or 0.99 (the loss is exceeded on 5 % / 1 % of the sessions):
* historical: VaR = -(the (1 - level) quantile of the returns, linear interpolation);
  CVaR = -(mean of the returns at or below -VaR);
* normal: VaR = -(mu + sigma z), z = Phi^-1(1 - level); CVaR = -mu + sigma phi(z) / (1 - level);
* Cornish-Fisher: z is replaced by z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36
  (S skewness, K excess kurtosis); CVaR averages that quantile over the tail (numerically).
sigma uses ddof=1.

Backtest (`var_backtest`): the VaR of session t is forecast from the `window` sessions before t
only; an exception is a loss larger than the forecast. Kupiec's proportion-of-failures test
compares the exception rate with 1 - level (LR ~ chi2(1)); Christoffersen's independence test
asks whether an exception makes the next one likelier (LR ~ chi2(1)); their sum is the
conditional-coverage test (chi2(2)). `rate_ratio` = observed rate / nominal rate: "within 5 %
of realized" means |rate_ratio - 1| <= 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

METHODS = ("historical", "normal", "cornish_fisher")
LEVELS = (0.95, 0.99)
# tail points averaged for the Cornish-Fisher CVaR
TAIL_POINTS = 200


def _clean(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    return r[np.isfinite(r)]


def cornish_fisher_z(z, skew, excess_kurtosis):
    return z + (z**2 - 1) * skew / 6 + (z**3 - 3 * z) * excess_kurtosis / 24 - (2 * z**3 - 5 * z) * skew**2 / 36


def value_at_risk(returns, level: float = 0.95, method: str = "historical") -> float:
    r = _clean(returns)
    if len(r) < 3:
        return np.nan
    if method == "historical":
        return float(-np.quantile(r, 1 - level))
    z = stats.norm.ppf(1 - level)
    if method == "normal":
        return float(-(r.mean() + r.std(ddof=1) * z))
    if method == "cornish_fisher":
        z_cf = cornish_fisher_z(z, stats.skew(r), stats.kurtosis(r))
        return float(-(r.mean() + r.std(ddof=1) * z_cf))
    raise ValueError(f"value_at_risk: method must be one of {METHODS}, got {method!r}")


def conditional_value_at_risk(returns, level: float = 0.95, method: str = "historical") -> float:
    r = _clean(returns)
    if len(r) < 3:
        return np.nan
    if method == "historical":
        return float(-r[r <= -value_at_risk(r, level, method)].mean())
    mu, sigma, tail = r.mean(), r.std(ddof=1), 1 - level
    if method == "normal":
        return float(-mu + sigma * stats.norm.pdf(stats.norm.ppf(tail)) / tail)
    if method == "cornish_fisher":
        u = (np.arange(TAIL_POINTS) + 0.5) / TAIL_POINTS * tail
        z_cf = cornish_fisher_z(stats.norm.ppf(u), stats.skew(r), stats.kurtosis(r))
        return float(-(mu + sigma * z_cf).mean())
    raise ValueError(f"conditional_value_at_risk: method must be one of {METHODS}, got {method!r}")


def risk_table(returns_by_name: dict[str, pd.Series]) -> pd.DataFrame:
    """strategy x (var|cvar)_(95|99)_(method), positive losses."""
    rows = {}
    for name, returns in returns_by_name.items():
        row = {}
        for level in LEVELS:
            for method in METHODS:
                tag = f"{int(level * 100)}_{method}"
                row[f"var_{tag}"] = value_at_risk(returns, level, method)
                row[f"cvar_{tag}"] = conditional_value_at_risk(returns, level, method)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("strategy")


def var_forecasts(returns: pd.Series, level: float = 0.99, method: str = "historical", window: int = 250) -> pd.Series:
    """The VaR of each session forecast from the `window` sessions before it (NaN until there are)."""
    r = pd.Series(returns, dtype=float)
    rolling = r.rolling(window, min_periods=window)
    z = stats.norm.ppf(1 - level)
    if method == "historical":
        forecast = -rolling.quantile(1 - level)
    elif method == "normal":
        forecast = -(rolling.mean() + rolling.std(ddof=1) * z)
    elif method == "cornish_fisher":
        forecast = -(rolling.mean() + rolling.std(ddof=1) * cornish_fisher_z(z, rolling.skew(), rolling.kurt()))
    else:
        raise ValueError(f"var_forecasts: method must be one of {METHODS}, got {method!r}")
    return forecast.shift(1).rename(f"var_{int(level * 100)}_{method}")


def kupiec_pof(exceptions, level: float) -> dict[str, float]:
    """Kupiec's proportion-of-failures likelihood ratio for a 0/1 exception series."""
    hits = np.asarray(exceptions, dtype=bool)
    n, x = len(hits), int(hits.sum())
    p = 1 - level
    if n == 0:
        return {"n": 0, "exceptions": 0, "rate": np.nan, "lr": np.nan, "p_value": np.nan}
    rate = x / n
    log_null = (n - x) * np.log(1 - p) + x * np.log(p)
    log_alt = (n - x) * np.log(1 - rate) if x < n else 0.0
    log_alt += x * np.log(rate) if x > 0 else 0.0
    lr = -2 * (log_null - log_alt)
    return {"n": n, "exceptions": x, "rate": rate, "lr": float(lr), "p_value": float(stats.chi2.sf(lr, 1))}


def _xlogy(x: float, y: float) -> float:
    return float(x * np.log(y)) if x > 0 else 0.0


def christoffersen_independence(exceptions) -> dict[str, float]:
    """Christoffersen's test that exceptions do not cluster (first-order Markov vs independent)."""
    hits = np.asarray(exceptions, dtype=int)
    if len(hits) < 2:
        return {"lr": np.nan, "p_value": np.nan}
    previous, current = hits[:-1], hits[1:]
    n00 = int(((previous == 0) & (current == 0)).sum())
    n01 = int(((previous == 0) & (current == 1)).sum())
    n10 = int(((previous == 1) & (current == 0)).sum())
    n11 = int(((previous == 1) & (current == 1)).sum())
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_null = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    log_alt = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    lr = max(-2 * (log_null - log_alt), 0.0)
    return {"lr": float(lr), "p_value": float(stats.chi2.sf(lr, 1))}


@dataclass(frozen=True)
class VarBacktest:
    level: float
    method: str
    returns: pd.Series
    forecast: pd.Series
    exceptions: pd.Series
    kupiec: dict
    independence: dict

    def row(self) -> dict[str, float]:
        coverage = self.kupiec["lr"] + self.independence["lr"]
        nominal = 1 - self.level
        return {
            "level": self.level,
            "method": self.method,
            "sessions": self.kupiec["n"],
            "exceptions": self.kupiec["exceptions"],
            "exception_rate": self.kupiec["rate"],
            "nominal_rate": nominal,
            "rate_ratio": self.kupiec["rate"] / nominal,
            "kupiec_p": self.kupiec["p_value"],
            "independence_p": self.independence["p_value"],
            "conditional_coverage_p": float(stats.chi2.sf(coverage, 2)),
        }


def var_backtest(returns: pd.Series, level: float = 0.99, method: str = "historical", window: int = 250) -> VarBacktest:
    forecast = var_forecasts(returns, level, method, window)
    valid = forecast.notna() & pd.Series(returns).notna()
    r, f = pd.Series(returns, dtype=float)[valid], forecast[valid]
    exceptions = (r < -f).rename("exception")
    return VarBacktest(level, method, r, f, exceptions, kupiec_pof(exceptions, level), christoffersen_independence(exceptions))


def var_backtest_table(returns: pd.Series, *, window: int = 250) -> pd.DataFrame:
    """One row per (level, method) of `var_backtest`."""
    rows = [var_backtest(returns, level, method, window).row() for level in LEVELS for method in METHODS]
    return pd.DataFrame(rows)
