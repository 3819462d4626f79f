"""The drift rule's detection study on the real feature matrix of the synthetic market's own
shift (docs/monitoring.md, "Detection study on the simulator").

    nice -n 10 python benchmarks/study_simulator_drift.py [seeds | first-last] [symbols] [excluded,features] [records.json]

Per seed: one simulated market (`SyntheticMarketConfig(seed=...)`, 500 symbols by default),
its three feature blocks and the feature matrix exactly as the pipeline builds them
(`build_feature_matrix` over every raw, rank, z-score and sector-neutral column), then
`detection_study.score_panel` over it: the reference is the 504 sessions after a feature
warm-up (the champion's training window), the 20-session window slides past the shift start
(`shift_start` = the 21st session after the reference), and a shift not found within 10
shifted sessions is a miss. The shift is the simulator's own (`VFR_SYNTHETIC_SHIFT_START`):
from `shift_start` on every shock is scaled by `shift_vol_multiplier` and every planted signal
by `shift_signal_multiplier`; the scenarios vary the first (the default market uses 1.75) and
add a signal-only flip (concept drift with unchanged shocks). The unshifted market of the
same seed gives the false alarms (same window positions).

Importance: a LightGBM on the reference rows against the 1w forward return (gain shares),
standing in for the champion's own importance, so the weighting is what a trained model
would give, not the panel's column order. The reference and the importance depend only on
the seed (the shift never touches the sessions before it), so they are computed once.

Two rules score the same markets (`RULES`): "before", the global thresholds with every
feature scored (the rule before issue 15's calibration), and "after", thresholds calibrated on
the reference's own 20-session windows with the calendar-cycle features left out (the default).
Each window's importance-weighted score and breadth are recorded (optionally to a JSON file
that a later call reads back instead of rebuilding the markets), and the tables are given
per trigger: "importance", "breadth" and "either" (the sensor's rule).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.features import catalog, fundamental, sentiment, technical
from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.matrix import build_feature_matrix
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.market_data.adjust import adjust_prices
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, SyntheticMarketProvider
from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.monitoring.detection_study import FeaturePanel, PanelOutcome, panel_outcome, study_table, window_reports
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, ReferenceProfile, compare

START = date(2018, 1, 2)
WARM_UP = 260  # sessions before the reference: the longest lookback (252 sessions) is filled
REFERENCE, WINDOW, MAX_DELAY = 504, 20, 10


@dataclass(frozen=True)
class SimulatorShift:
    label: str
    vol_multiplier: float
    signal_multiplier: float = SyntheticMarketConfig.shift_signal_multiplier


SHIFTS = (
    SimulatorShift("shocks x1.25, signals x-0.5", 1.25),
    SimulatorShift("shocks x1.5, signals x-0.5", 1.5),
    SimulatorShift("shocks x1.75, signals x-0.5 (default)", 1.75),
    SimulatorShift("shocks x2, signals x-0.5", 2.0),
    SimulatorShift("signals x-0.5 only", 1.0),
)


def _days() -> list[date]:
    days = calendar.trading_days(START, calendar.calendar_end())
    return days[: WARM_UP + REFERENCE + WINDOW + MAX_DELAY]


def market_matrix(config: SyntheticMarketConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature matrix of the whole market as the pipeline builds it, and its adjusted prices."""
    provider = SyntheticMarketProvider(config)
    universe = provider.universe(config.as_of)
    symbols = universe["symbol"].tolist()
    prices = adjust_prices(provider.prices(symbols, config.start, config.as_of))
    blocks = [
        technical.compute_technical_features(prices),
        fundamental.compute_fundamental_features(prices, provider.fundamentals(symbols, config.start, config.as_of)),
        sentiment.compute_sentiment_features(provider.news(symbols, config.start, config.as_of), prices),
    ]
    columns = catalog.matrix_columns()
    matrix, _ = build_feature_matrix(
        blocks, universe[["symbol", "sector"]], raw_columns=columns.raw, rank_columns=columns.rank,
        zscore_columns=columns.zscore, neutral_columns=columns.neutral,
    )
    return matrix, prices


def _panel(matrix: pd.DataFrame, days: list[date], importance: dict[str, float], shift_start: int | None) -> FeaturePanel:
    session_of = {pd.Timestamp(d): i - WARM_UP for i, d in enumerate(days)}
    frame = matrix.assign(session=pd.to_datetime(matrix["trade_date"]).map(session_of))
    frame = frame.loc[frame["session"] >= 0]
    features = tuple(importance)
    return FeaturePanel(frame[["session", *features]].reset_index(drop=True), features, importance, REFERENCE, shift_start)


def reference_importance(matrix: pd.DataFrame, prices: pd.DataFrame, days: list[date]) -> dict[str, float]:
    """Gain shares of a LightGBM fitted on the reference rows to the 1w forward return."""
    features = [c for c in matrix.columns if c not in ("symbol", "trade_date", "completeness", "quality_score")]
    labels = compute_labels(prices, "1w")[["symbol", "trade_date", "forward_return"]]
    rows = matrix.assign(trade_date=pd.to_datetime(matrix["trade_date"]))
    rows = rows.merge(labels.assign(trade_date=pd.to_datetime(labels["trade_date"])), on=["symbol", "trade_date"])
    reference = rows.loc[rows["trade_date"].between(pd.Timestamp(days[WARM_UP]), pd.Timestamp(days[WARM_UP + REFERENCE - 1]))]
    reference = reference.loc[np.isfinite(reference["forward_return"])]
    cut = reference["trade_date"].quantile(0.8)
    train, val = reference.loc[reference["trade_date"] <= cut], reference.loc[reference["trade_date"] > cut]
    model = algorithms.fit_regressor(
        "lightgbm", train[features].to_numpy(), train["forward_return"].to_numpy(),
        val[features].to_numpy(), val["forward_return"].to_numpy(), feature_names=features,
    )
    return model.feature_importance()


def false_alarm_drivers(panel: FeaturePanel, profile: ReferenceProfile) -> pd.Series:
    """Per feature, the weight it put into the drift score of the unshifted windows."""
    sessions = panel.frame["session"].to_numpy()
    weights = []
    for end in range(REFERENCE + WINDOW, REFERENCE + WINDOW + MAX_DELAY):
        table = compare(profile, panel.frame.loc[(sessions > end - WINDOW) & (sessions <= end)], panel.importance).table()
        weights.append(table.loc[table["drifted"]].set_index("feature")["weight"])
    return pd.concat(weights, axis=1).fillna(0.0).sum(axis=1) / MAX_DELAY


@dataclass(frozen=True)
class Rule:
    """One drift rule to score: "before" is the uncalibrated rule with every feature scored."""

    label: str
    calibrated: bool
    exclude_calendar_cycles: bool

    def profile(self, reference: pd.DataFrame, features: tuple[str, ...], config: DriftConfig) -> ReferenceProfile:
        return ReferenceProfile.from_frame(reference, features, config, sessions="session" if self.calibrated else None,
                                           excluded=catalog.CALENDAR_CYCLE_FEATURES if self.exclude_calendar_cycles else {})


RULES = (Rule("before: global thresholds, every feature scored", False, False),
         Rule("after: calibrated thresholds, calendar cycles excluded", True, True))


# the study scores with the breadth thresholds at their raw calibrated level (margin 1, no
# floor) and records every window's score and breadths (the whole window's and the short
# windows'), so one run gives the tables for any margin, floor and score threshold
# (`tables_for`): the lib applies exactly max(level x margin, floor)
RAW_BREADTH = dict(breadth_margin=1.0, breadth_floor=1e-9)


def run(seeds: range, n_symbols: int, config: DriftConfig = DriftConfig(**RAW_BREADTH), exclude: tuple[str, ...] = (),
        rules: tuple[Rule, ...] = RULES) -> tuple[list[dict], dict[str, pd.Series]]:
    """Every rule's window records (seed, rule, scenario, raw breadth threshold, per window
    score and breadth) and false-alarm drivers; every rule scores the same markets."""
    days = _days()
    shift_day = days[WARM_UP + REFERENCE + WINDOW]
    records: list[dict] = []
    drivers: dict[str, list[pd.Series]] = {rule.label: [] for rule in rules}

    def record(seed: int, label: str, scenario: str, panel: FeaturePanel, profile: ReferenceProfile) -> None:
        reports = window_reports(panel, profile, window=WINDOW, max_delay=MAX_DELAY)
        # per window: (breadth, raw threshold) of the whole window, then of each short window
        records.append({"seed": seed, "rule": label, "scenario": scenario, "scores": [r.score for r in reports],
                        "breadths": [[(r.breadth, r.breadth_threshold), *((b, t) for _, b, t in r.short_breadths)] for r in reports]})

    for seed in seeds:
        started = time.perf_counter()
        base = SyntheticMarketConfig(as_of=days[-1], start=START, n_symbols=n_symbols, seed=seed)
        matrix, prices = market_matrix(base)
        # an excluded feature weighs nothing: its drift no longer counts in the score
        importance = {name: (0.0 if name in exclude else share) for name, share in reference_importance(matrix, prices, days).items()}
        calm = _panel(matrix, days, importance, None)
        reference = calm.frame.loc[calm.frame["session"] < REFERENCE]
        profiles = {rule.label: rule.profile(reference, calm.features, config) for rule in rules}
        for label, profile in profiles.items():
            record(seed, label, "none", calm, profile)
            drivers[label].append(false_alarm_drivers(calm, profile))
        for shift in SHIFTS:
            shifted = replace(base, shift_start=shift_day, shift_vol_multiplier=shift.vol_multiplier,
                              shift_signal_multiplier=shift.signal_multiplier)
            panel = _panel(market_matrix(shifted)[0], days, importance, REFERENCE + WINDOW)
            for label, profile in profiles.items():
                record(seed, label, shift.label, panel, profile)
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    return records, {label: pd.concat(d, axis=1).fillna(0.0).mean(axis=1).sort_values(ascending=False) for label, d in drivers.items()}


TRIGGERS = ("importance", "breadth", "either")


def tables_for(records: list[dict], rule: str, seeds: set[int], config: DriftConfig = DriftConfig()) -> dict[str, pd.DataFrame]:
    """Per trigger ("importance", "breadth", "either": the sensor's rule), the study table of
    `rule` on `seeds` with `config`'s score threshold, breadth margin and floor."""
    tables = {}
    for trigger in TRIGGERS:
        outcomes: dict[str, list[PanelOutcome]] = {}
        for rec in (r for r in records if r["rule"] == rule and r["seed"] in seeds):
            weighted = [score >= config.score_threshold for score in rec["scores"]]
            broad = [any(level is not None and breadth >= max(level * config.breadth_margin, config.breadth_floor)
                         for breadth, level in window) for window in rec["breadths"]]
            flags = {"importance": weighted, "breadth": broad, "either": [a or b for a, b in zip(weighted, broad)]}[trigger]
            outcomes.setdefault(rec["scenario"], []).append(panel_outcome(rec["scenario"] != "none", flags))
        tables[trigger] = study_table(outcomes)
    return tables


def main() -> None:
    """`study_simulator_drift.py [seeds] [symbols] [excluded,features] [records.json]`; seeds may be
    a range "a-b" (inclusive). With a records file that exists, only the tables are recomputed."""
    seeds = sys.argv[1] if len(sys.argv) > 1 else "8"
    seeds = range(int(seeds.split("-")[0]), int(seeds.split("-")[1]) + 1) if "-" in seeds else range(int(seeds))
    n_symbols = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    exclude = tuple(x for x in sys.argv[3].split(",") if x) if len(sys.argv) > 3 else ()
    path = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    if path and path.exists():
        records = json.loads(path.read_text())
    else:
        started = time.perf_counter()
        records, drivers = run(seeds, n_symbols, exclude=exclude)
        print(f"{len(seeds)} seeds x {n_symbols} symbols, shift at session {REFERENCE + WINDOW} after a {REFERENCE}-session "
              f"reference; excluded: {exclude or 'none'}; {time.perf_counter() - started:.0f} s")
        for label, series in drivers.items():
            print(f"\n{label}: mean drift score contributed per unshifted window (top 10 features):")
            print(series.head(10).round(4).to_markdown(headers=["feature", "score share"]))
        if path:
            path.write_text(json.dumps(records))
    config = DriftConfig()
    print(f"\nscore threshold {config.score_threshold}, breadth margin {config.breadth_margin}, floor {config.breadth_floor}")
    for rule in RULES:
        for trigger, table in tables_for(records, rule.label, set(seeds), config).items():
            print(f"\n{rule.label}; trigger: {trigger}\n" + table.to_markdown(index=False, floatfmt=".3g"))

if __name__ == "__main__":
    main()
