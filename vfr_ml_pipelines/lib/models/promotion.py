"""The promotion gate: when a challenger may replace the champion of a horizon.

A challenger is promoted only when every condition holds:
1. its leakage canaries passed (shuffled labels showed no skill; it is not above the oracle);
2. its validation Rank IC is significantly positive: the t-statistic of the daily Rank ICs,
   counting days whose labels overlap only once (n_days / horizon_days), is at least
   `min_validation_t` (so a model without skill is never promoted, champion or not);
3. when there is a champion: on the sessions of the challenger's validation window that the
   champion never saw, scored by both (`comparison.PairedComparison`), the challenger's
   mean daily Rank IC beats the champion's by at least `margin` with a paired t-statistic
   (Newey-West, lag = horizon) of at least `min_paired_t`; a comparison that could not be
   made fairly (the champion saw the window, too few unseen sessions, a different
   feature set) keeps the champion, and says why;
4. it loads through MLflow in under `max_load_seconds` of CPU time (the loading thread's, so a busy
   machine does not refuse a model that is cheap to load);
5. its stored model is at most `max_size_bytes`.
Otherwise the champion stays, and the decision lists every condition with its figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from vfr_ml_pipelines.lib.models.comparison import PairedComparison

TRUE, FALSE, NOT_APPLICABLE = "true", "false", "n/a"


@dataclass(frozen=True)
class PromotionPolicy:
    margin: float = 0.005
    max_load_seconds: float = 1.0
    max_size_bytes: int = 50_000_000
    min_validation_t: float = 2.0
    # the challenger's edge over the champion on the same unseen sessions must be more than
    # noise: one Newey-West standard error (one-sided ~84 %) on top of the margin
    min_paired_t: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.margin) or not math.isfinite(self.min_paired_t):
            raise ValueError(f"margin and min_paired_t must be finite, got {self.margin}, {self.min_paired_t}")
        if self.max_load_seconds <= 0 or self.max_size_bytes <= 0:
            raise ValueError("max_load_seconds and max_size_bytes must be positive")


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    leak_suspected: bool = False  # a leakage canary failed: something upstream is wrong

    @property
    def summary(self) -> str:
        verdict = "promote" if self.promote else "keep the champion"
        parts = [f"FAILED: {r}" for r in self.failed] + [f"ok: {r}" for r in self.passed]
        return f"{verdict}. " + "; ".join(parts)


def _float(tags: Mapping[str, str], key: str) -> float:
    try:
        return float(tags.get(key, "nan"))
    except ValueError:
        return float("nan")


def decide(
    challenger: Mapping[str, str],
    champion: Mapping[str, str] | None,
    *,
    load_seconds: float,
    size_bytes: int,
    policy: PromotionPolicy,
    comparison: PairedComparison | None = None,
    champion_id: str | None = None,
) -> PromotionDecision:
    """`challenger` / `champion`: the registered versions' tags (`validation_rank_ic`,
    `canary_shuffled_passed`, `canary_oracle_passed`, `canary_*_message`). `comparison`:
    the champion scored on the challenger's validation window (needed when there is a
    champion; it must name `champion_id`, the current champion)."""
    passed: list[str] = []
    failed: list[str] = []
    leak = False

    for canary in ("shuffled", "oracle"):
        state = challenger.get(f"canary_{canary}_passed", FALSE)
        message = challenger.get(f"canary_{canary}_message", "no canary result recorded")
        if state == TRUE or (canary == "oracle" and state == NOT_APPLICABLE):
            passed.append(f"{canary} canary: {message}")
        else:
            failed.append(f"{canary} canary: {message}")
            leak = True

    new_ic = _float(challenger, "validation_rank_ic")
    t_stat = _float(challenger, "validation_rank_ic_t")
    if not math.isfinite(t_stat) or t_stat < policy.min_validation_t:
        failed.append(
            f"validation Rank IC is not significant: t = {t_stat:.2f} < {policy.min_validation_t} (overlapping labels counted once)"
        )
    else:
        passed.append(f"validation Rank IC significant: t = {t_stat:.2f} >= {policy.min_validation_t}")
    if not math.isfinite(new_ic):
        failed.append("validation Rank IC is missing or not finite")
    elif champion is None:
        passed.append(f"validation Rank IC {new_ic:.4f}; no champion yet")
    elif comparison is None:
        failed.append("the champion was not scored on the challenger's validation window (no paired comparison recorded)")
    elif champion_id is not None and comparison.champion != champion_id:
        failed.append(f"the paired comparison was made against {comparison.champion}, but the champion is now {champion_id}")
    elif comparison.refused:
        failed.append(comparison.describe())
    elif comparison.mean_difference >= policy.margin and comparison.t >= policy.min_paired_t:
        passed.append(f"beats the champion by >= {policy.margin} with paired t >= {policy.min_paired_t}: {comparison.describe()}")
    else:
        failed.append(
            f"does not beat the champion by the margin {policy.margin} with paired t >= {policy.min_paired_t}: "
            f"{comparison.describe()}"
        )

    if load_seconds < policy.max_load_seconds:
        passed.append(f"loads in {load_seconds:.3f} s of CPU (< {policy.max_load_seconds} s)")
    else:
        failed.append(f"loads in {load_seconds:.3f} s of CPU (limit {policy.max_load_seconds} s)")
    if size_bytes <= policy.max_size_bytes:
        passed.append(f"size {size_bytes:,} bytes (<= {policy.max_size_bytes:,})")
    else:
        failed.append(f"size {size_bytes:,} bytes exceeds {policy.max_size_bytes:,}")
    return PromotionDecision(promote=not failed, passed=passed, failed=failed, leak_suspected=leak)
