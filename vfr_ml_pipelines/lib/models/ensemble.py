"""Ensembles of fitted regressors of one fold: Rank-IC weighted and stacked.

The members' raw scores live on different scales (a tree's leaf values, a ridge fit), so
each member's score is first divided by the standard deviation of ITS OWN validation
predictions. That scale is a constant stored in the ensemble: `predict` receives a bare
feature matrix without dates, so a per-day z-score at predict time is impossible (and a
per-row statistic would make a row's score depend on the other rows of the batch).

Two ways to weigh the scaled members:

* `fit_rank_ic_ensemble`: weight proportional to max(0, mean daily Rank IC of the member
  over the most recent `recent_days` validation dates), summing to 1; when no member has a
  positive recent Rank IC every member gets the same weight (there is no evidence to
  prefer one, and a zero-weight ensemble would predict a constant).
* `fit_stacking_ensemble`: a non-negative linear regression (with intercept) of the
  validation target on the members' scaled validation predictions.

Both are fitted on VALIDATION predictions only, so the test period stays untouched and
the ensemble is evaluated exactly like a single model. The members were early-stopped on
that same validation window, so the validation scores the weights see are mildly
optimistic for the members that were tuned hardest on it (documented, accepted).

An `EnsembleModel` offers the same methods as `algorithms.Regressor` (predict,
feature_importance, contributions, to_bytes/from_bytes) with algorithm "ensemble", so the
pipeline, calibration and serving handle it like any other model. `load_model_bytes`
loads either kind from its bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from vfr_ml_pipelines.lib.models import algorithms, framing
from vfr_ml_pipelines.lib.models.algorithms import Regressor
from vfr_ml_pipelines.lib.models.metrics import daily_ic

ENSEMBLE_ALGORITHM = "ensemble"
RANK_IC_WEIGHTED = "rank_ic_weighted"
STACKING = "stacking"
KINDS = (RANK_IC_WEIGHTED, STACKING)
PAYLOAD_FORMAT = "vfr-ensemble/1"
# validation sessions whose Rank IC sets the rank-IC-weighted ensemble's weights
RECENT_DAYS = 60


# ----------------------------------------------------------------------------- weights


def _recent_mean_rank_ic(frame: pd.DataFrame, recent_days: int, label: str) -> float:
    days = np.sort(frame["trade_date"].unique())[-recent_days:]
    recent = frame[frame["trade_date"].isin(days)]
    per_day = daily_ic(recent, "score", label)["rank_ic"].dropna()
    return float(per_day.mean()) if len(per_day) else math.nan


def rank_ic_weights(
    val_scores: dict[str, pd.DataFrame], *, recent_days: int = RECENT_DAYS, label: str = "forward_return"
) -> dict[str, float]:
    """Member weights from their recent validation Rank IC.

    `val_scores[name]` holds the member's validation rows: trade_date, symbol, score,
    `label`. A member's weight is proportional to max(0, its mean daily Rank IC over the
    most recent `recent_days` validation dates of its frame); the weights sum to 1. A
    member without a measurable Rank IC (no date with 3+ distinct scores) counts as 0.
    When no member is positive, all get equal weights (no evidence to prefer one)."""
    if not val_scores:
        raise ValueError("rank_ic_weights: no members")
    if not isinstance(recent_days, (int, np.integer)) or recent_days < 1:
        raise ValueError(f"rank_ic_weights: recent_days must be a positive integer, got {recent_days!r}")
    positive: dict[str, float] = {}
    for name, frame in val_scores.items():
        missing = [c for c in ("trade_date", "score", label) if c not in frame.columns]
        if missing:
            raise ValueError(f"rank_ic_weights: validation scores of member {name!r} lack column(s) {missing}")
        if frame.empty:
            raise ValueError(f"rank_ic_weights: validation scores of member {name!r} are empty")
        rank_ic = _recent_mean_rank_ic(frame, int(recent_days), label)
        positive[name] = max(0.0, rank_ic) if math.isfinite(rank_ic) else 0.0
    total = sum(positive.values())
    if total <= 0:
        return {name: 1.0 / len(positive) for name in positive}
    return {name: value / total for name, value in positive.items()}


# ----------------------------------------------------------------------------- the model


def _check_members(members: dict[str, Any]) -> list[str]:
    if not members:
        raise ValueError("ensemble: no members")
    names = None
    for name, member in members.items():
        if getattr(member, "algorithm", None) == ENSEMBLE_ALGORITHM:
            raise ValueError(f"ensemble: member {name!r} is itself an ensemble; nest members, not ensembles")
        if names is None:
            names = list(member.feature_names)
        elif list(member.feature_names) != names:
            raise ValueError(f"ensemble: member {name!r} has different feature names from the other members")
    return list(names or [])


class EnsembleModel(Regressor):
    """A fixed linear combination of scaled member predictions:
    predict(X) = intercept + sum_k weights[k] * members[k].predict(X) / scales[k]."""

    algorithm = ENSEMBLE_ALGORITHM

    def __init__(
        self,
        kind: str,
        members: dict[str, Regressor],
        scales: dict[str, float],
        weights: dict[str, float],
        intercept: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"ensemble: unknown kind {kind!r}; expected one of {KINDS}")
        self.feature_names = _check_members(members)
        if set(scales) != set(members) or set(weights) != set(members):
            raise ValueError(
                f"ensemble: members {sorted(members)}, scales {sorted(scales)} and weights {sorted(weights)} must name the same models"
            )
        for name in members:
            if not (math.isfinite(scales[name]) and scales[name] > 0):
                raise ValueError(f"ensemble: scale of member {name!r} must be finite and positive, got {scales[name]}")
            if not (math.isfinite(weights[name]) and weights[name] >= 0):
                raise ValueError(f"ensemble: weight of member {name!r} must be finite and >= 0, got {weights[name]}")
        if not math.isfinite(intercept):
            raise ValueError(f"ensemble: intercept must be finite, got {intercept}")
        self.kind = kind
        self.members = dict(members)
        self.scales = {name: float(scales[name]) for name in members}
        self.weights = {name: float(weights[name]) for name in members}
        self.intercept = float(intercept)
        self.best_iteration = None
        # what MLflow logs; the payload of `to_bytes` carries the authoritative copy
        self.params = {
            "kind": kind,
            "members": {name: member.algorithm for name, member in members.items()},
            "weights": dict(self.weights),
            "scales": dict(self.scales),
            "intercept": self.intercept,
        }

    def _coefficients(self) -> dict[str, float]:
        """The factor each member's raw prediction is multiplied by; zero-weight members
        are left out (they need not be evaluated)."""
        return {name: self.weights[name] / self.scales[name] for name in self.members if self.weights[name] != 0.0}

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_X(X)
        out = np.full(X.shape[0], self.intercept, dtype=np.float64)
        for name, coefficient in self._coefficients().items():
            out += coefficient * np.asarray(self.members[name].predict(X), dtype=np.float64)
        return out

    def _importance(self) -> np.ndarray:
        """The members' importance shares averaged with the ensemble weights (the base
        class renormalises them to sum to 1)."""
        total = np.zeros(len(self.feature_names), dtype=np.float64)
        for name, member in self.members.items():
            if self.weights[name] != 0.0:
                shares = member.feature_importance()
                total += self.weights[name] * np.array([float(shares[f]) for f in self.feature_names])
        return total

    def contributions_with_bias(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The weighted sum of the members' scaled per-feature contributions (n, n_features),
        and the bias: the intercept plus the members' scaled biases. Rows of the
        contributions plus the bias equal the prediction (up to float rounding)."""
        X = self._check_X(X)
        contributions = np.zeros(X.shape, dtype=np.float64)
        bias = np.full(X.shape[0], self.intercept, dtype=np.float64)
        for name, coefficient in self._coefficients().items():
            member_contributions, member_bias = self.members[name].contributions_with_bias(X)
            contributions += coefficient * np.asarray(member_contributions, dtype=np.float64)
            bias += coefficient * np.asarray(member_bias, dtype=np.float64)
        return contributions, bias

    # ------------------------------------------------------------------------- bytes
    # `Regressor.to_bytes` wraps the payload in the common envelope (algorithm "ensemble",
    # feature names, params); `Regressor.from_bytes` refuses that algorithm, so ensembles
    # are loaded with `EnsembleModel.from_bytes` or, for either kind, `load_model_bytes`.

    def _payload(self) -> bytes:
        """`framing.pack` of a JSON header (kind, intercept, each member's name, weight, scale
        and blob length) and the members' own `to_bytes` blobs in that order. Floats go
        through JSON's shortest round-trip repr, so weights and scales, and with them the
        predictions, come back bit for bit."""
        names = list(self.members)
        blobs = [self.members[name].to_bytes() for name in names]
        header = {
            "format": PAYLOAD_FORMAT,
            "kind": self.kind,
            "intercept": self.intercept,
            "members": [
                {"name": name, "weight": self.weights[name], "scale": self.scales[name], "bytes": len(blob)}
                for name, blob in zip(names, blobs)
            ],
        }
        return framing.pack(header, b"".join(blobs))

    @classmethod
    def _load(cls, payload: bytes, feature_names: list[str], params: dict[str, Any], best_iteration: int | None) -> EnsembleModel:
        header, blobs = framing.unpack(payload, "serialized ensemble payload")
        if header.get("format") != PAYLOAD_FORMAT:
            raise ValueError(f"serialized ensemble: payload format {header.get('format')!r}, expected {PAYLOAD_FORMAT!r}")
        offset = 0
        members: dict[str, Regressor] = {}
        weights: dict[str, float] = {}
        scales: dict[str, float] = {}
        for entry in header["members"]:
            end = offset + int(entry["bytes"])
            if end > len(blobs):
                raise ValueError(f"serialized ensemble: member {entry['name']!r} is truncated")
            members[entry["name"]] = Regressor.from_bytes(blobs[offset:end])
            weights[entry["name"]] = float(entry["weight"])
            scales[entry["name"]] = float(entry["scale"])
            offset = end
        if offset != len(blobs):
            raise ValueError(f"serialized ensemble: {len(blobs) - offset} unexpected trailing byte(s)")
        model = cls(header["kind"], members, scales, weights, float(header["intercept"]))
        if model.feature_names != feature_names:
            raise ValueError("serialized ensemble: the envelope's feature names differ from the members'")
        return model

    @staticmethod
    def from_bytes(blob: bytes) -> EnsembleModel:
        """The ensemble `to_bytes` wrote; its predictions equal the original's bit for bit."""
        algorithm, feature_names, params, payload = _envelope(blob)
        if algorithm != ENSEMBLE_ALGORITHM:
            raise ValueError(f"not a serialized ensemble: the bytes hold a {algorithm!r} model (use load_model_bytes)")
        return EnsembleModel._load(payload, feature_names, params, None)


def _envelope(blob: bytes) -> tuple[str, list[str], dict[str, Any], bytes]:
    """(algorithm, feature names, params, payload) of bytes in `algorithms.Regressor`'s envelope."""
    header, payload = algorithms.read_envelope(blob)
    return str(header.get("algorithm")), list(header.get("feature_names", [])), dict(header.get("params", {})), payload


def load_model_bytes(blob: bytes) -> Regressor:
    """A model from its bytes, whatever it is: an `EnsembleModel` or a single
    `algorithms.Regressor` (dispatched on the envelope's algorithm)."""
    algorithm, _, _, _ = _envelope(blob)
    if algorithm == ENSEMBLE_ALGORITHM:
        return EnsembleModel.from_bytes(blob)
    return Regressor.from_bytes(blob)


# ----------------------------------------------------------------------------- fitting


def _scaled_validation_predictions(members: dict[str, Regressor], X_val: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each member's validation predictions and their standard deviation (ddof=0). A member
    whose validation predictions are constant (e.g. a booster that stopped before its
    first split) has no ranking to offer: it gets scale 1 and, downstream, weight 0."""
    X_val = np.asarray(X_val, dtype=np.float64)
    if X_val.ndim != 2 or X_val.shape[0] < 2:
        raise ValueError(f"ensemble: X_val must be 2-D with at least 2 rows, got shape {X_val.shape}")
    predictions: dict[str, np.ndarray] = {}
    scales: dict[str, float] = {}
    for name, member in members.items():
        prediction = np.asarray(member.predict(X_val), dtype=np.float64)
        if not np.isfinite(prediction).all():
            raise ValueError(f"ensemble: member {name!r} predicts non-finite values on the validation rows")
        std = float(np.std(prediction))
        predictions[name] = prediction
        scales[name] = std if std > 0 and math.isfinite(std) else 1.0
    return predictions, scales


def _constant(prediction: np.ndarray) -> bool:
    return bool(np.ptp(prediction) == 0)


def fit_rank_ic_ensemble(
    members: dict[str, Regressor],
    X_val: np.ndarray,
    val_frame: pd.DataFrame,
    *,
    recent_days: int = RECENT_DAYS,
    label: str = "forward_return",
) -> EnsembleModel:
    """Weights from each member's recent validation Rank IC (`rank_ic_weights`); the
    scores are scaled by each member's validation-prediction std. `val_frame` holds the
    validation rows aligned with `X_val` (trade_date and `label` at least)."""
    _check_members(members)
    missing = [c for c in ("trade_date", label) if c not in val_frame.columns]
    if missing:
        raise ValueError(f"fit_rank_ic_ensemble: val_frame lacks column(s) {missing}")
    if len(val_frame) != len(X_val):
        raise ValueError(f"fit_rank_ic_ensemble: val_frame has {len(val_frame)} rows but X_val has {len(X_val)}")
    predictions, scales = _scaled_validation_predictions(members, X_val)
    base = val_frame[["trade_date", label]].reset_index(drop=True)
    val_scores = {name: base.assign(score=prediction / scales[name]) for name, prediction in predictions.items()}
    weights = rank_ic_weights(val_scores, recent_days=recent_days, label=label)
    return EnsembleModel(RANK_IC_WEIGHTED, members, scales, weights, 0.0)


def fit_stacking_ensemble(members: dict[str, Regressor], X_val: np.ndarray, y_val: np.ndarray) -> EnsembleModel:
    """Non-negative linear stacking: `LinearRegression(positive=True)` with intercept of the
    (normalized) validation target on the members' scaled validation predictions.

    The stacker sees validation predictions only, so the test period stays untouched; the
    members were early-stopped on that same window, which makes the stacker mildly
    optimistic about them. Members with constant validation predictions are left out
    (weight 0). When no member gets a positive coefficient (none tracks the target on
    validation), the weights fall back to equal, as in `rank_ic_weights`: an all-zero
    stack would predict a constant and rank nothing."""
    _check_members(members)
    y_val = np.asarray(y_val, dtype=np.float64)
    if y_val.ndim != 1 or len(y_val) != len(X_val):
        raise ValueError(f"fit_stacking_ensemble: y_val must be 1-D with {len(X_val)} values, got shape {y_val.shape}")
    if not np.isfinite(y_val).all():
        raise ValueError(f"fit_stacking_ensemble: y_val has {int((~np.isfinite(y_val)).sum())} non-finite value(s)")
    predictions, scales = _scaled_validation_predictions(members, X_val)
    usable = [name for name in members if not _constant(predictions[name])]
    weights = dict.fromkeys(members, 0.0)
    intercept = 0.0
    if usable:
        design = np.column_stack([predictions[name] / scales[name] for name in usable])
        stacker = LinearRegression(positive=True).fit(design, y_val)
        for name, coefficient in zip(usable, stacker.coef_):
            weights[name] = max(0.0, float(coefficient))
        intercept = float(stacker.intercept_)
    if sum(weights.values()) <= 0:
        weights = {name: 1.0 / len(members) for name in members}
        intercept = 0.0
    return EnsembleModel(STACKING, members, scales, weights, intercept)
