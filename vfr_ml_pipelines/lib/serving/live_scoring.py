"""Scoring the live model from the files exported for VFR (`model.txt`), not from a second
load of the registered model through MLflow's pyfunc loader (most of the live model's share
of a daily publish: the pyfunc load takes about 0.5 s, the text model 0.01 s).

Beside `model.txt` and `normalizer.json`, `scoring.json` (predict-generic never opens it)
holds what the text model alone does not say:

* the return calibration registered with the model (`ReturnCalibration.as_dict`). The text
  model's raw output (LightGBM's margin, before its sigmoid) is `a * score + b`, the
  calibration's logit, so expectedReturn = margin x logistic scale and probability =
  sigmoid(margin), the very numbers `ReturnCalibration.predict` gives for the score
  (`ReturnCalibration.predict_margin`);
* per clipped ridge, which trees are its terms (`live_trees.RidgeTerms`): the clip of the
  ridge's output that the text model cannot express is put back here from those trees'
  partial sum, so the scores equal the published model's on every row, clipped ones included;
* the registry run the files were written from, and the text model's SHA-256: files of
  another run (a registry rebuilt under the same name and version) or a half-replaced model
  are never used; the caller then loads the model through MLflow as before.

Models with XGBoost trees are not scored this way (no `scoring.json`): XGBoost sums its leaves
in float32, so the text model agrees with it to 1e-6 only, which may move a published digit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.ensemble import EnsembleModel
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.serving.live_trees import RidgeTerms
from vfr_ml_pipelines.lib.serving.live_values import live_input_matrix

MODEL_FILE = "model.txt"
SCORING_FILE = "scoring.json"
FORMAT = "vfr-live-scoring/1"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _has_xgboost(estimator: Any) -> bool:
    members = estimator.members.values() if isinstance(estimator, EnsembleModel) else [estimator]
    return any(isinstance(m, algorithms.XGBoostRegressor) for m in members)


def scoring_spec(model: ServingModel, model_text: str, feature_names: list[str], first_offset: float,
                 ridge_terms: list[RidgeTerms], run_id: str) -> dict[str, Any] | None:
    """The content of `scoring.json` for a text model written from `model` (None when the
    text model is not exact enough to publish from: XGBoost trees)."""
    if _has_xgboost(model.estimator):
        return None
    return {
        "format": FORMAT,
        "run_id": run_id,
        "model_sha256": _sha256(model_text),
        "features": feature_names,
        "calibration": model.calibration.as_dict(),
        "first_offset": first_offset,
        "ridge_terms": [asdict(t) for t in ridge_terms],
    }


@dataclass(frozen=True)
class LiveScorer:
    booster: Any  # lightgbm.Booster of model.txt
    features: list[str]  # the model inputs, in the text model's order
    calibration: ReturnCalibration
    first_offset: float
    ridge_terms: list[RidgeTerms]

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The calibration's logit of each row of X (columns: `features`, the stand-ins VFR
        sends for missing / infinite values), with the ridges' output clip applied."""
        margin = self.booster.predict(X, raw_score=True)
        a, _ = self.calibration.logit_coefficients()
        for term in self.ridge_terms:
            factor = a * term.coefficient  # each of the ridge's trees is its term times this
            if factor == 0.0:
                continue  # the ridge does not move the margin, clipped or not
            part = self.booster.predict(X, raw_score=True, start_iteration=term.start, num_iteration=term.count)
            if term.start == 0:
                part = part - self.first_offset
            raw = term.intercept + part / factor
            margin = margin + factor * (np.clip(raw, term.low, term.high) - raw)
        return margin

    def predict_frame(self, features: pd.DataFrame, where: str = "the live model's inputs") -> pd.DataFrame:
        """expected_return and probability of each row (columns matched by name, like
        `ServingModel.predict_frame`; a missing input is an error naming it)."""
        missing = [n for n in self.features if n not in features.columns]
        if missing:
            raise ValueError(f"{where}: input lacks feature(s) {missing[:10]}")
        X = features[self.features].to_numpy(dtype=np.float64, na_value=np.nan)
        symbols = [str(s) for s in features["symbol"]] if "symbol" in features.columns else [str(i) for i in features.index]
        expected, probability = self.calibration.predict_margin(self.margin(live_input_matrix(X, symbols, self.features, where)))
        return pd.DataFrame({"expected_return": expected, "probability": probability}, index=features.index)


def load_scorer(folder: Path, run_id: str) -> LiveScorer | None:
    """The scorer of the files in `folder` when they were written from registry run
    `run_id` and are whole; None otherwise (no files, another run, a model of another
    format or with XGBoost trees)."""
    import lightgbm as lgb  # only the live path needs it at serving time

    folder = Path(folder)
    try:
        spec = json.loads((folder / SCORING_FILE).read_text(encoding="utf-8"))
        text = (folder / MODEL_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    if spec.get("format") != FORMAT or spec.get("run_id") != run_id or spec.get("model_sha256") != _sha256(text):
        return None
    booster = lgb.Booster(model_str=text)
    if booster.feature_name() != spec["features"]:
        return None
    terms = [RidgeTerms(**t) for t in spec["ridge_terms"]]
    return LiveScorer(booster, list(spec["features"]), ReturnCalibration.from_dict(spec["calibration"]), float(spec["first_offset"]), terms)
