"""The deployable unit of one horizon: an estimator plus the mappings that turn its score
into VFR's fields.

A model's score ranks stocks on a day, on a scale of its own. VFR wants a return and a
probability, so each model carries one `calibration.ReturnCalibration` (a linear model of
the absolute forward return on the score, fitted on validation predictions only): it gives
expectedReturn and probability = P(return > 0) together, so they always agree in sign and
their cross-sectional spread matches the model's measured skill. direction and confidence
then follow from the probability (`serving.payloads`).

Format `vfr-serving-model/2` (`framing.pack`: header horizon, candidate, calibration; body the
estimator's own bytes). Version 1 (a Platt calibrator and a separate return scale, whose
fields could contradict each other) is refused with a message saying to retrain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models import framing
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration
from vfr_ml_pipelines.lib.models.ensemble import load_model_bytes

FORMAT = "vfr-serving-model/2"
# written before the coherent calibration; its fields could contradict each other
RETIRED_FORMATS = ("vfr-serving-model/1",)
OUTPUT_COLUMNS = ("score", "expected_return", "probability")


@dataclass
class ServingModel:
    horizon: str
    candidate: str
    estimator: Any  # algorithms.Regressor or ensemble.EnsembleModel
    calibration: ReturnCalibration

    @property
    def feature_names(self) -> list[str]:
        return list(self.estimator.feature_names)

    @property
    def algorithm(self) -> str:
        return str(self.estimator.algorithm)

    def predict_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """score, expected_return and probability for each row of `features` (columns
        matched by name; a missing model input is an error naming it)."""
        missing = [n for n in self.feature_names if n not in features.columns]
        if missing:
            raise ValueError(f"{self.candidate} {self.horizon}: input lacks feature(s) {missing[:10]}")
        X = features[self.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
        score = self.estimator.predict(X)
        expected_return, probability = self.calibration.predict(score)
        return pd.DataFrame(
            {"score": score, "expected_return": expected_return, "probability": probability},
            index=features.index,
        )

    def to_bytes(self) -> bytes:
        header = {
            "format": FORMAT,
            "horizon": self.horizon,
            "candidate": self.candidate,
            "calibration": self.calibration.as_dict(),
        }
        return framing.pack(header, self.estimator.to_bytes(), sort_keys=True)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ServingModel:
        header, estimator = framing.unpack(blob, "serving model")
        if header.get("format") in RETIRED_FORMATS:
            raise ValueError(
                f"serving model {header.get('candidate')} {header.get('horizon')} is in the retired format "
                f"{header.get('format')!r} (probability and expected return calibrated separately); retrain it "
                f"(the retraining job or `vfr-ml run`) to get the coherent format {FORMAT!r}"
            )
        if header.get("format") != FORMAT:
            raise ValueError(f"not a serving model: format {header.get('format')!r}, expected {FORMAT!r}")
        return cls(
            horizon=header["horizon"],
            candidate=header["candidate"],
            estimator=load_model_bytes(estimator),
            calibration=ReturnCalibration.from_dict(header["calibration"]),
        )
