"""The deployable unit of one horizon: an estimator plus the mappings that turn its score
into VFR's fields.

A model scores the cross-sectionally normalized forward return (a per-day z-score, see
`dataset.normalized_target`). VFR wants a return and a probability, so each model carries:

* `ReturnScale`: expectedReturn = mean daily return of the training period
  + score x median cross-sectional std of the forward return (`calibration.ReturnScale`);
* `ProbabilityCalibrator`: probability = P(return > 0) by Platt scaling of the score,
  fitted on validation predictions only (`calibration.ProbabilityCalibrator`).

direction and confidence then follow from the probability (`serving.payloads`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.models.calibration import ProbabilityCalibrator, ReturnScale
from vfr_ml_pipelines.lib.models.ensemble import load_model_bytes

FORMAT = "vfr-serving-model/1"
OUTPUT_COLUMNS = ("score", "expected_return", "probability")


@dataclass
class ServingModel:
    horizon: str
    candidate: str
    estimator: Any  # algorithms.Regressor or ensemble.EnsembleModel
    calibrator: ProbabilityCalibrator
    scale: ReturnScale

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
        return pd.DataFrame(
            {
                "score": score,
                "expected_return": self.scale.expected_return(score),
                "probability": self.calibrator.probability(score),
            },
            index=features.index,
        )

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "format": FORMAT,
                "horizon": self.horizon,
                "candidate": self.candidate,
                "calibrator": self.calibrator.as_dict(),
                "scale": self.scale.as_dict(),
            },
            sort_keys=True,
        ).encode()
        return struct.pack(">I", len(header)) + header + self.estimator.to_bytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> ServingModel:
        if len(blob) < 4:
            raise ValueError("not a serving model: too short")
        (size,) = struct.unpack(">I", blob[:4])
        try:
            header = json.loads(blob[4 : 4 + size])
        except ValueError as exc:
            raise ValueError(f"not a serving model: unreadable header ({exc})") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"not a serving model: format {header.get('format')!r}, expected {FORMAT!r}")
        return cls(
            horizon=header["horizon"],
            candidate=header["candidate"],
            estimator=load_model_bytes(blob[4 + size :]),
            calibrator=ProbabilityCalibrator.from_dict(header["calibrator"]),
            scale=ReturnScale.from_dict(header["scale"]),
        )
