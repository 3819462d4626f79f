"""Feature drift of the served champions: for each horizon's champion, its training window of
the feature matrix (the MLflow tags `data_start` / `data_end` that training records) against
the last `current_sessions` stored sessions, weighted by the champion's own feature importance.

The per-feature and breadth thresholds calibrated on the training window (the costly part:
97 window comparisons of 20 sessions and about 200 of the breadth's 5- and 10-session short
windows) depend only on the champion's
training window, its features and the drift config, so they are computed once per champion
version and stored with it: a JSON artifact of the version's MLflow run,
`drift_calibration/<key>.json`, the key hashing the calibration's definition
(`CALIBRATION_VERSION`), the feature matrix version, the features, the training window, the
excluded features and every config field the calibration reads. Later
runs read it back; a new champion (another run), another window or another config has
another key and is calibrated afresh. If the feature store's rows of that window were
rewritten (a new feature-matrix version changes `MATRIX_VERSION`, hence the key) nothing else
invalidates it.

Also the small record the drift sensor reads back (`horizon_scores` / `read_horizon_scores`):
per horizon the score and verdict, flattened into the asset's metadata, so the sensor needs
no table of its own (docs/monitoring.md, "In the pipeline").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta

import pandas as pd

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.models.registry import ModelRegistry, RegistryUnavailable
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig, DriftReport, ReferenceProfile, compare
from vfr_ml_pipelines.lib.monitoring.drift_evidence import Evidence, accumulate, breadth_strength
from vfr_ml_pipelines.lib.monitoring.drift_thresholds import CALIBRATION_VERSION, Calibration
from vfr_ml_pipelines.lib.serving.served_models import served_versions

DEFAULT_CURRENT_SESSIONS = 20
CALIBRATION_FOLDER = "drift_calibration"
log = logging.getLogger(__name__)
# DriftConfig fields the calibration does not read: changing them keeps the stored one
_NOT_CALIBRATION = ("psi_warn", "ks_alpha", "exact_pvalues", "score_threshold", "breadth_evidence_allowance",
                    "breadth_evidence_threshold")
# calendar days read to find the last N sessions: weekends and a holiday cluster fit twice over
_CALENDAR_DAYS_PER_SESSION = 2


@dataclass(frozen=True)
class ChampionDrift:
    horizon: str
    model_id: str
    reference_start: date
    reference_end: date
    current_start: date
    current_end: date
    report: DriftReport
    calibration: str = ""  # "computed" (and stored), "reused" (read from the champion), "" (none)
    evidence: Evidence | None = None  # the breadth accumulated up to this report (drift_evidence.py)

    def table(self) -> pd.DataFrame:
        return self.report.table().assign(horizon=self.horizon, model_id=self.model_id)


def last_sessions(store: OfflineFeatureStore, sessions: int, feature_set: str = catalog.MATRIX_VERSION) -> tuple[date, date]:
    """The first and last day of the last `sessions` stored sessions."""
    end = store.latest_day(feature_set)
    days = store.read(feature_set, columns=[], start=end - timedelta(days=_CALENDAR_DAYS_PER_SESSION * sessions + 7), end=end)
    stored = sorted(pd.to_datetime(days["trade_date"]).dt.date.unique())[-sessions:]
    return stored[0], stored[-1]


def calibration_key(features: Sequence[str], start: date, end: date, config: DriftConfig) -> str:
    """The key of a stored calibration (module docstring)."""
    fields = {k: v for k, v in asdict(config).items() if k not in _NOT_CALIBRATION}
    payload = {"version": CALIBRATION_VERSION, "matrix": catalog.MATRIX_VERSION, "features": list(features), "window": [str(start), str(end)],
               "excluded": sorted(catalog.CALENDAR_CYCLE_FEATURES), "config": fields}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _stored_calibration(registry: ModelRegistry, run_id: str, path: str, features: Sequence[str]) -> tuple[Calibration | None, str]:
    """The calibration stored with the champion's run, or None and why it cannot be used: a
    stored file that does not parse or does not describe these features is computed again
    (and replaced) rather than trusted or left to fail every daily run."""
    blob = registry.read_run_artifact(run_id, path)
    if blob is None:
        return None, ""
    try:
        calibration = Calibration.from_json(blob.decode())
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        reason = f"the stored {path} is unreadable ({type(exc).__name__}: {exc})"
    else:
        if calibration.features == tuple(features):
            return calibration, ""
        reason = f"the stored {path} describes other features than the champion's"
    log.warning("drift calibration of run %s: %s", run_id, reason)
    return None, reason


def champions_drift(
    registry: ModelRegistry, store: OfflineFeatureStore, config: DriftConfig = DriftConfig(),
    current_sessions: int = DEFAULT_CURRENT_SESSIONS, previous_evidence: Mapping[str, Mapping] | None = None,
) -> list[ChampionDrift]:
    """One drift report per served champion (challengers serve as shadows only: their drift
    does not decide a retraining). A champion without recorded training window is skipped.
    `previous_evidence`: per horizon the `Evidence.as_record` of the previous report, from
    which each report's accumulated evidence continues."""
    current_start, current_end = last_sessions(store, current_sessions)
    # the thresholds are calibrated on reference windows as long as the current one
    config = replace(config, calibration_window=current_sessions)
    out = []
    for served in served_versions(registry):
        version = served.version
        if not served.is_champion or not {"data_start", "data_end"} <= version.tags.keys():
            continue
        model = registry.load_serving_model(version.name, version.version).model
        features = model.feature_names
        start, end = date.fromisoformat(version.tags["data_start"][:10]), date.fromisoformat(version.tags["data_end"][:10])
        reference = store.read(catalog.MATRIX_VERSION, columns=features, start=start, end=end)
        current = store.read(catalog.MATRIX_VERSION, columns=features, start=current_start, end=current_end)
        path = f"{CALIBRATION_FOLDER}/{calibration_key(features, start, end, config)}.json"
        calibration, unreadable = _stored_calibration(registry, version.run_id, path, features) if config.calibrate else (None, "")
        profile = ReferenceProfile.from_frame(reference, features, config, sessions="trade_date", calibration=calibration)
        how = "reused" if calibration else "computed" if profile.calibration else ""
        if unreadable:
            how = f"computed again: {unreadable}"
        if calibration is None and profile.calibration is not None:
            try:
                registry.log_run_artifacts(version.run_id, {path: profile.calibration.to_json().encode()})
            except RegistryUnavailable as exc:
                # the report is still right; the next run pays the calibration again
                log.warning("drift calibration of %s not stored: %s", version.model_id, exc)
                how = f"{how} (not stored: {exc})"
        report = compare(profile, current, model.estimator.feature_importance(), sessions="trade_date")
        evidence = accumulate(Evidence.from_record((previous_evidence or {}).get(served.horizon)), version.model_id,
                              current_end.isoformat(), breadth_strength(report), config)
        report = replace(report, evidence=evidence.value)
        out.append(ChampionDrift(served.horizon, version.model_id, start, end, current_start, current_end, report, how, evidence))
    return out


def horizon_scores(drifts: list[ChampionDrift]) -> dict[str, float | bool | str]:
    """The flat record the drift sensor reads: `session`, and per horizon `drift_score_<h>`,
    `drifted_<h>`, `drift_breadth_<h>`, `drift_evidence_<h>` and `drift_trigger_<h>` (the
    triggers that fired, comma-separated, "" when none)."""
    record: dict[str, float | bool | str] = {"session": max((d.current_end for d in drifts), default=date.min).isoformat()}
    for drift in drifts:
        record[f"drift_score_{drift.horizon}"] = drift.report.score
        record[f"drifted_{drift.horizon}"] = drift.report.is_drifted
        record[f"drift_breadth_{drift.horizon}"] = drift.report.breadth
        record[f"drift_evidence_{drift.horizon}"] = drift.report.evidence
        record[f"drift_trigger_{drift.horizon}"] = ",".join(drift.report.triggers)
    return record


def short_window_record(report: DriftReport) -> dict[str, dict[str, float | None]]:
    """The breadth of the current window's last N sessions and its threshold, by N, JSON-safe
    (a non-finite breadth, a feature with no value at all, becomes None)."""
    return {f"last_{n}": {"breadth": breadth if math.isfinite(breadth) else None, "threshold": threshold}
            for n, breadth, threshold in report.short_breadths}


@dataclass(frozen=True)
class WindowVerdict:
    session: str
    drifted: bool
    score: float  # the largest horizon score: one retraining run retrains every horizon
    drifted_horizons: tuple[str, ...]
    triggers: tuple[str, ...] = ()  # "<h>:<trigger>" of the drifted horizons (records that name them)


def read_horizon_scores(record: dict, score: str = "drift_score", flag: str = "drifted",
                        trigger: str = "drift_trigger") -> WindowVerdict | None:
    """The verdict of a record written by `horizon_scores` (or any record of `session`,
    `<score>_<h>`, `<flag>_<h>` and optionally `<trigger>_<h>`; None when it has no horizon)."""
    horizons = sorted(key.removeprefix(f"{score}_") for key in record if key.startswith(f"{score}_"))
    if not horizons or "session" not in record:
        return None
    drifted = tuple(h for h in horizons if bool(record.get(f"{flag}_{h}")))
    scores = [float(record[f"{score}_{h}"]) for h in horizons]
    largest = max((s for s in scores if math.isfinite(s)), default=math.nan)
    triggers = tuple(f"{h}:{record[f'{trigger}_{h}']}" for h in drifted if record.get(f"{trigger}_{h}"))
    return WindowVerdict(str(record["session"]), bool(drifted), largest, drifted, triggers)
