"""The drift rule's detection study on the simulator, from recorded per-feature measures, so
rules that differ only in how the measures are read (scale floors, the accumulated
evidence) are scored on the same markets without rebuilding them (docs/monitoring.md,
"Accumulated evidence and the scale floor").

    nice -n 10 python benchmarks/study_drift_evidence.py dump first-last symbols prefix
    python benchmarks/study_drift_evidence.py tables 'prefix_seed*.pkl'

`dump`: per seed, the markets of `study_simulator_drift.py` (same seeds, shift, importance,
reference), then the PSI / KS / Wasserstein of every feature on the reference's own windows
of 20, 10 and 5 sessions (stride 5, as the calibration) and on the current windows of those
lengths ending at each of the 30 sessions after the reference (the shift starts at the 21st),
for the unshifted market and every scenario; one pickle per seed.

`tables`: each rule of `RULES` through the committed calibration functions
(`breadth_scales`, `breadth_null`, `calibrated_breadth`, `calibrated_thresholds`) and
`drift_evidence.sequence_evidence` from the first session after the reference (as a
champion's sensor starts the day after its training window ends): detection within 10
shifted sessions, delays, false alarms on the protocol's 10 unshifted windows and on all 30.
Scored from the dump of seeds 0-5, the rule before this change gives exactly the figures of
the earlier grid ("Breadth, second version"), which checks that this path reads the measures
as `compare` does.
"""

from __future__ import annotations

import glob
import pickle
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd

import study_simulator_drift as S
from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.monitoring import drift as D
from vfr_ml_pipelines.lib.monitoring import drift_thresholds as T
from vfr_ml_pipelines.lib.monitoring.drift_evidence import sequence_evidence

LENGTHS = (20, 10, 5)
ENDS = range(S.REFERENCE, S.REFERENCE + S.WINDOW + S.MAX_DELAY)  # the 30 sessions after the reference
FIRST_SHIFTED = S.WINDOW  # index in ENDS of the window holding 1 shifted session
RULES = {"default (scale floor + evidence)": D.DriftConfig(),
         "scale floor only": D.DriftConfig(breadth_evidence_threshold=None),
         "before (no floor, no evidence)": D.DriftConfig(breadth_scale_floor=None, breadth_evidence_threshold=None)}


def _current_measures(profile: D.ReferenceProfile, frame: pd.DataFrame) -> np.ndarray:
    """ends x lengths x features x (psi, ks, ks p-value, wasserstein)."""
    sessions = frame["session"].to_numpy()
    out = np.full((len(ENDS), len(LENGTHS), len(profile.features), 4), np.nan)
    for e, end in enumerate(ENDS):
        for li, length in enumerate(LENGTHS):
            rows = frame.loc[(sessions > end - length) & (sessions <= end)]
            columns = D._sorted_columns(rows, profile.features, "current")
            for j in range(len(profile.features)):
                out[e, li, j] = D._measures(profile, j, columns[j], len(rows), False, pvalue=length == S.WINDOW)
    return out


def dump(seeds: range, n_symbols: int, prefix: str) -> None:
    days = S._days()
    shift_day = days[S.WARM_UP + S.REFERENCE + S.WINDOW]
    for seed in seeds:
        started = time.perf_counter()
        base = S.SyntheticMarketConfig(as_of=days[-1], start=S.START, n_symbols=n_symbols, seed=seed)
        matrix, prices = S.market_matrix(base)
        importance = S.reference_importance(matrix, prices, days)
        calm = S._panel(matrix, days, importance, None)
        reference = calm.frame.loc[calm.frame["session"] < S.REFERENCE]
        profile = D.ReferenceProfile.from_frame(reference, calm.features, D.DriftConfig(), sessions=None)
        record = {"seed": seed, "n_symbols": n_symbols, "features": calm.features, "importance": importance,
                  "excluded": [str(catalog.CALENDAR_CYCLE_FEATURES.get(f, "")) for f in calm.features],
                  "nulls": {n: D._null_measures(profile, reference, reference["session"], n) for n in LENGTHS},
                  "current": {"none": _current_measures(profile, calm.frame)}}
        for shift in S.SHIFTS:
            shifted = replace(base, shift_start=shift_day, shift_vol_multiplier=shift.vol_multiplier,
                              shift_signal_multiplier=shift.signal_multiplier)
            panel = S._panel(S.market_matrix(shifted)[0], days, importance, S.REFERENCE + S.WINDOW)
            record["current"][shift.label] = _current_measures(profile, panel.frame)
        with open(f"{prefix}_seed{seed}.pkl", "wb") as handle:
            pickle.dump(record, handle)
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)


def window_flags(record: dict, config: D.DriftConfig) -> dict[str, np.ndarray]:
    """Per scenario, the verdict of each of the 30 daily reports, as the sensor sees them."""
    scored = np.array([not reason for reason in record["excluded"]])
    lengths = len(LENGTHS)
    calibrated = {n: (T.breadth_scales(record["nulls"][n], config, n),
                      T.calibrated_breadth(T.breadth_null(record["nulls"][n], config, scored, n), config, lengths)) for n in LENGTHS}
    thresholds = T.calibrated_thresholds(record["nulls"][S.WINDOW], config)
    weights = np.zeros(len(scored))
    importance = np.array([record["importance"].get(f, 0.0) for f in record["features"]])
    weights[scored] = D.importance_weights([f for f, s in zip(record["features"], scored) if s], dict(zip(record["features"], importance)))
    out = {}
    for scenario, measures in record["current"].items():
        scores, strengths = [], []
        for e in range(measures.shape[0]):
            full = measures[e, 0]
            votes = ((full[:, 0] >= thresholds[:, 0]) | ((full[:, 1] >= thresholds[:, 1]) & (full[:, 2] < config.ks_alpha))
                     | (full[:, 3] >= thresholds[:, 2]) | np.isnan(full[:, 1])) & scored
            scores.append(weights[votes].sum())
            ratios = [T.kth_largest(T.exceedance(measures[e, li][:, [0, 1, 3]], calibrated[n][0])[scored], config.breadth_features)
                      / calibrated[n][1] for li, n in enumerate(LENGTHS) if calibrated[n][1]]
            strengths.append(np.nan_to_num(max(ratios, default=0.0), nan=0.0))
        strengths = np.array(strengths)
        flags = (np.array(scores) >= config.score_threshold) | (strengths >= 1.0)
        if config.breadth_evidence_threshold is not None:
            flags |= np.array(sequence_evidence(list(strengths), config)) >= config.breadth_evidence_threshold
        out[scenario] = flags
    return out


def tables(records: list[dict]) -> None:
    for name, config in RULES.items():
        delays: dict[str, list] = {}
        alarms, alarms_all, per_seed = 0, 0, {}
        for record in records:
            for scenario, flags in window_flags(record, config).items():
                if scenario == "none":
                    alarms += int(flags[FIRST_SHIFTED:].sum())
                    alarms_all += int(flags.sum())
                    per_seed.setdefault(record["seed"], {})["false alarms"] = int(flags[FIRST_SHIFTED:].sum())
                    continue
                hit = np.nonzero(flags[FIRST_SHIFTED:])[0]
                delays.setdefault(scenario, []).append(int(hit[0]) + 1 if len(hit) else None)
                if "default" in scenario:
                    per_seed.setdefault(record["seed"], {})["default delay"] = int(hit[0]) + 1 if len(hit) else None
        n = len(records)
        rows = [{"scenario": "none", "seeds": n, "false_alarm_rate": alarms / (S.MAX_DELAY * n),
                 "false alarms, all 30 windows": f"{alarms_all}/{len(ENDS) * n}"}]
        for scenario, found in delays.items():
            hits = [d for d in found if d is not None]
            rows.append({"scenario": scenario, "seeds": len(found), "detection_rate": len(hits) / len(found),
                         "mean_delay": np.mean(hits) if hits else np.nan, "max_delay": max(hits, default=np.nan)})
        print(f"\n{name}; seeds {sorted(r['seed'] for r in records)} x {records[0]['n_symbols']} symbols")
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3g"))
        print("per seed:", per_seed)


def main() -> None:
    if sys.argv[1] == "dump":
        first, last = map(int, sys.argv[2].split("-"))
        dump(range(first, last + 1), int(sys.argv[3]), sys.argv[4])
    else:
        tables([pickle.load(open(path, "rb")) for path in sorted(glob.glob(sys.argv[2]))])


if __name__ == "__main__":
    main()
