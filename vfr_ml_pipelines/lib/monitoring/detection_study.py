"""Measured detection quality of the drift rule: detection rate, delay and false alarms.

A study takes any source of feature panels (`PanelSource`: seed -> `FeaturePanel`), so the
same code measures the synthetic panels below, the synthetic market's feature matrix, or a
simulator that injects its own shift (a panel with `shift_start` set is scored as shifted).

Protocol, per seed:
* the reference is the panel's first `reference_sessions` sessions (the champion's training
  window), profiled once;
* the current window is the last `window` sessions ending at session e; the first window
  scored ends `window` sessions after the reference, so it is clean before the shift starts
  at s = reference_sessions + window;
* a shifted panel is scored with windows ending at s, s+1, ..., s+max_delay-1 (1 ... max_delay
  shifted sessions in the window); the delay is the number of shifted sessions in the first
  window whose drift score passes the threshold (the sensor's request comes on that session);
  a shift not found within `max_delay` sessions is a miss;
* an unshifted panel is scored on the same window positions (ending at s ... s+max_delay-1); every flagged window is a false
  alarm (false-alarm rate = flagged windows / windows; neighbouring windows overlap, so they are
  not independent trials).

`synthetic_panel` builds panels with the persistence real features have: each (symbol,
feature) is an AR(1) over sessions (a 20-session window of 500 symbols holds far fewer than
10,000 independent values), plus a small common per-session AR(1) factor (the market regime
moves every symbol's feature together, so an unshifted window differs from a two-year
reference by more than sampling noise). A third of the features are skewed (exponential of
the Gaussian) and a third discrete (ties). Importance falls as 1 / rank. `with_injected_shift`
moves the `n_features` most important features from `start` on: a mean shift of `size`
reference std, or a scale change (deviations from the reference mean times `size`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, DriftReport, ReferenceProfile, compare

SHIFT_KINDS = ("mean", "scale")


@dataclass(frozen=True)
class FeaturePanel:
    frame: pd.DataFrame  # column "session" (0, 1, ... in trading order) and one column per feature
    features: tuple[str, ...]
    importance: Mapping[str, float]
    reference_sessions: int
    shift_start: int | None = None  # first shifted session; None when nothing was shifted


PanelSource = Callable[[int], FeaturePanel]


@dataclass(frozen=True)
class PanelSpec:
    n_symbols: int = 500
    n_features: int = 60
    reference_sessions: int = 504  # two years
    window: int = 20
    max_delay: int = 10
    symbol_persistence: float = 0.9
    date_factor_share: float = 0.02
    date_persistence: float = 0.9

    @property
    def n_sessions(self) -> int:
        return self.reference_sessions + self.window + self.max_delay


@dataclass(frozen=True)
class InjectedShift:
    kind: str  # "mean" (size in reference std) or "scale" (std multiplier)
    size: float
    n_features: int = 5

    def __post_init__(self) -> None:
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"shift kind must be one of {SHIFT_KINDS}, got {self.kind!r}")

    @property
    def label(self) -> str:
        return f"{self.kind} {self.size:g}" + (" std" if self.kind == "mean" else "x std")


def _ar1(rng: np.random.Generator, n_steps: int, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) paths, time on the first axis."""
    out = np.empty((n_steps, *shape))
    out[0] = rng.standard_normal(shape)
    innovation = np.sqrt(1.0 - phi * phi)
    for t in range(1, n_steps):
        out[t] = phi * out[t - 1] + innovation * rng.standard_normal(shape)
    return out


def synthetic_panel(seed: int, spec: PanelSpec = PanelSpec()) -> FeaturePanel:
    rng = np.random.default_rng(seed)
    idiosyncratic = _ar1(rng, spec.n_sessions, (spec.n_symbols, spec.n_features), spec.symbol_persistence)
    common = _ar1(rng, spec.n_sessions, (1, spec.n_features), spec.date_persistence)
    values = np.sqrt(1.0 - spec.date_factor_share) * idiosyncratic + np.sqrt(spec.date_factor_share) * common
    kind = np.arange(spec.n_features) % 3
    values[..., kind == 1] = np.exp(0.5 * values[..., kind == 1])
    values[..., kind == 2] = np.round(values[..., kind == 2] * 2.0) / 2.0
    features = tuple(f"feature_{j:02d}" for j in range(spec.n_features))
    frame = pd.DataFrame(values.reshape(-1, spec.n_features), columns=list(features))
    frame.insert(0, "session", np.repeat(np.arange(spec.n_sessions), spec.n_symbols))
    importance = {name: 1.0 / (rank + 1) for rank, name in enumerate(features)}
    return FeaturePanel(frame, features, importance, spec.reference_sessions)


def with_injected_shift(panel: FeaturePanel, shift: InjectedShift, start: int) -> FeaturePanel:
    """`panel` with its `shift.n_features` most important features moved from session `start` on."""
    moved = sorted(panel.features, key=lambda name: (-panel.importance.get(name, 0.0), name))[: shift.n_features]
    frame = panel.frame.copy()
    reference = frame.loc[frame["session"] < panel.reference_sessions, moved]
    after = frame["session"] >= start
    if shift.kind == "mean":
        frame.loc[after, moved] += shift.size * reference.std(ddof=1)
    else:
        centre = reference.mean()
        frame.loc[after, moved] = centre + (frame.loc[after, moved] - centre) * shift.size
    return replace(panel, frame=frame, shift_start=start)


def _window(panel: FeaturePanel, end: int, window: int) -> pd.DataFrame:
    sessions = panel.frame["session"].to_numpy()
    return panel.frame.loc[(sessions > end - window) & (sessions <= end)]


def _profile(panel: FeaturePanel, config: DriftConfig) -> ReferenceProfile:
    """The reference profiled as the asset does: thresholds calibrated on its own sessions."""
    reference = panel.frame.loc[panel.frame["session"] < panel.reference_sessions]
    return ReferenceProfile.from_frame(reference, panel.features, config, sessions="session")


@dataclass(frozen=True)
class PanelOutcome:
    shifted: bool
    delay: int | None  # shifted sessions in the first flagged window (shifted panels)
    windows: int
    flagged: int


def window_ends(panel: FeaturePanel, window: int = 20, max_delay: int = 10) -> range:
    """The last sessions of the windows the protocol scores (module docstring)."""
    if panel.shift_start is None:
        return range(panel.reference_sessions + window, panel.reference_sessions + window + max_delay)
    if panel.shift_start - window < panel.reference_sessions:
        raise ValueError(f"the shift at session {panel.shift_start} leaves no clean window after the reference")
    return range(panel.shift_start, panel.shift_start + max_delay)


def window_reports(panel: FeaturePanel, profile: ReferenceProfile, *, window: int = 20, max_delay: int = 10) -> list[DriftReport]:
    """The drift report of every window position of the protocol, in order."""
    return [compare(profile, _window(panel, end, window), panel.importance, sessions="session")
            for end in window_ends(panel, window, max_delay)]


def panel_outcome(shifted: bool, flags: Sequence[bool]) -> PanelOutcome:
    """The outcome of a panel from its windows' verdicts (`window_reports` order)."""
    if not shifted:
        return PanelOutcome(False, None, len(flags), int(sum(flags)))
    first = next((k + 1 for k, flag in enumerate(flags) if flag), None)
    return PanelOutcome(True, first, first or len(flags), int(first is not None))


def score_panel(
    panel: FeaturePanel, *, window: int = 20, max_delay: int = 10, config: DriftConfig = DriftConfig(),
    profile: ReferenceProfile | None = None,
) -> PanelOutcome:
    """Slide the current window over the panel as the protocol in the module docstring says."""
    profile = profile or _profile(panel, config)
    reports = window_reports(panel, profile, window=window, max_delay=max_delay)
    return panel_outcome(panel.shift_start is not None, [r.is_drifted for r in reports])


def run_study(
    source: PanelSource,
    shifts: Sequence[InjectedShift],
    seeds: Sequence[int],
    *,
    window: int = 20,
    max_delay: int = 10,
    config: DriftConfig = DriftConfig(),
) -> pd.DataFrame:
    """One row per scenario ("none" and each shift): seeds, detection_rate, mean and max delay
    (of detected shifts), false_alarm_rate (unshifted windows). The reference of a seed is
    profiled once and serves all its scenarios."""
    outcomes: dict[str, list[PanelOutcome]] = {"none": []}
    for seed in seeds:
        panel = source(seed)
        profile = _profile(panel, config)
        start = panel.reference_sessions + window
        outcomes["none"].append(score_panel(panel, window=window, max_delay=max_delay, config=config, profile=profile))
        for shift in shifts:
            shifted = with_injected_shift(panel, shift, start)
            outcome = score_panel(shifted, window=window, max_delay=max_delay, config=config, profile=profile)
            outcomes.setdefault(shift.label, []).append(outcome)
    return study_table(outcomes)


def study_table(outcomes: Mapping[str, Sequence[PanelOutcome]]) -> pd.DataFrame:
    rows = []
    for scenario, results in outcomes.items():
        delays = [r.delay for r in results if r.delay is not None]
        shifted = [r for r in results if r.shifted]
        unshifted = [r for r in results if not r.shifted]
        windows = sum(r.windows for r in unshifted)
        rows.append({
            "scenario": scenario,
            "seeds": len(results),
            "detection_rate": len(delays) / len(shifted) if shifted else np.nan,
            "mean_delay": float(np.mean(delays)) if delays else np.nan,
            "max_delay": float(max(delays)) if delays else np.nan,
            "false_alarm_rate": sum(r.flagged for r in unshifted) / windows if windows else np.nan,
        })
    return pd.DataFrame(rows)


DEFAULT_SHIFTS = (
    InjectedShift("mean", 0.25), InjectedShift("mean", 0.5), InjectedShift("mean", 0.75), InjectedShift("mean", 1.0),
    InjectedShift("scale", 1.5), InjectedShift("scale", 2.0),
)


def main() -> None:
    """The full-size study of docs/monitoring.md:
    `python -m vfr_ml_pipelines.lib.monitoring.detection_study [seeds] [uncalibrated]`
    ("uncalibrated": the global thresholds only, the rule before the per-feature calibration)."""
    import sys
    import time

    seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    config = DriftConfig(calibrate=not (len(sys.argv) > 2 and sys.argv[2] == "uncalibrated"))
    spec = PanelSpec()
    started = time.perf_counter()
    table = run_study(lambda seed: synthetic_panel(seed, spec), DEFAULT_SHIFTS, seeds,
                      window=spec.window, max_delay=spec.max_delay, config=config)
    print(f"{spec}\n{config}\n{len(seeds)} seeds in {time.perf_counter() - started:.0f} s")
    print(table.to_markdown(index=False, floatfmt=".3g"))

if __name__ == "__main__":
    main()
