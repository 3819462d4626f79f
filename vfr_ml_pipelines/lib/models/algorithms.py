"""One interface, three regressors: LightGBM, XGBoost and a ridge baseline.

``fit_regressor(algorithm, X_train, y_train, X_val, y_val, feature_names=...)`` trains one
and returns a ``Regressor``: ``predict``, ``feature_importance``, per-feature
``contributions`` and a byte serialisation that round-trips bit for bit.

* **lightgbm**: ``lgb.train`` (regression, L2), deterministic (``deterministic=True``,
  ``force_row_wise=True``, one ``seed`` for every random stream), early stopping on the
  validation set's L2 (``num_boost_round`` up to 1000, patience ``early_stopping_rounds``
  50); only the best iteration's trees are kept.
* **xgboost**: ``xgb.train`` with ``tree_method="hist"`` on ``QuantileDMatrix`` (the
  validation matrix reuses the training bins), NaN as missing, same early stopping;
  the booster is sliced to the best iteration. Deterministic for a seed on the CPU.
* Per-session settings of the trees (params; `HorizonTrainingConfig.algorithm_params` sets
  them): ``early_stopping_metric="rank_ic"`` stops on the validation rows' mean per-session
  Rank IC (`SessionRankIC`) instead of L2; an ``objective`` in ``RANKING_OBJECTIVES`` (LightGBM
  ``rank_xendcg`` / ``lambdarank``, XGBoost ``rank:pairwise`` / ``rank:ndcg``, stopped on NDCG
  unless told otherwise) trains on one query group per session with quintile grades of the session rank of the
  target (`relevance_grades`); ``min_leaf_fraction`` sets the minimum leaf size as a share of
  the training rows (recorded as the resolved count); ``stopping_sessions`` stops on the last
  sessions of the training rows (after ``stopping_gap_sessions``, the label's length) instead
  of the validation rows. They need the session sizes of the rows (``train_groups`` /
  ``val_groups``).
* **linear**: scikit-learn ``SimpleImputer(median) -> StandardScaler -> Ridge(alpha)``
  fitted on the training rows only; the validation rows are not used. A column with no
  value at all in training is imputed with 0 (``keep_empty_features``), so it gets a zero
  coefficient instead of crashing. Its predictions are clipped to the range of its own
  training predictions: a linear model extrapolates without bound on an outlying feature
  value (one served 1m ensemble with a ridge member put a stock's expected return at +514 %),
  where a tree stays within its leaves; the clip changes no ranking inside that range.

The libraries get the numpy matrices directly (float32 and float64 are passed as they
are, no copy; anything else is converted to float64 once), and the LightGBM datasets
free their raw data after construction: the overhead over a bare ``lgb.train`` is input
checks and one model-string round trip. The libraries see positional feature names
(their name rules differ); the real names live in the wrapper.

``to_bytes`` writes (`framing.pack`) ``MAGIC``, an 8-byte big-endian header length, a JSON header
(algorithm, feature names, params, best iteration) and the model in its native format:
the LightGBM model string, XGBoost UBJSON, or a pickle of the fitted scikit-learn pipeline
(load only blobs this project wrote: unpickling runs code).
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from vfr_ml_pipelines.lib.models import framing
from vfr_ml_pipelines.lib.models.sessions import (
    LIGHTGBM_RANKING_OBJECTIVES, XGBOOST_RANKING_OBJECTIVES, SessionRankIC, inner_stopping_split, relevance_grades,
)

ALGORITHMS = ("lightgbm", "xgboost", "linear")
DEFAULT_SEED = 7
MAGIC = b"VFRREG1\n"
ENVELOPE_LENGTH_BYTES = 8
_BOOSTING_KEYS = ("num_boost_round", "early_stopping_rounds")
# what early stopping watches on the validation rows: the objective's own metric, or the mean
# per-session Rank IC, the figure selection and the gate read
STOPPING_METRICS = ("objective", "rank_ic")
# `stopping_sessions` > 0: the trees stop on the last sessions of their own training rows
# (purged by `stopping_gap_sessions`) instead of the validation rows, which then stay unseen
# by the fit for the selection and the gate that read them
INNER_STOPPING_KEYS = ("stopping_sessions", "stopping_gap_sessions")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "objective": "regression",
        "learning_rate": 0.03,
        "num_leaves": 15,
        "min_data_in_leaf": 200,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 10.0,
        "verbosity": -1,
        "deterministic": True,
        "force_row_wise": True,
        "metric": "l2",
        "num_boost_round": 1000,
        "early_stopping_rounds": 50,
    },
    "xgboost": {
        # the same shape of model as the LightGBM defaults: slow learning rate, small trees,
        # large leaves (min_child_weight is a row count under the squared loss), bagging, L2
        "objective": "reg:squarederror",
        "eval_metric": "rmse",
        "tree_method": "hist",
        "learning_rate": 0.03,
        "max_depth": 4,
        "min_child_weight": 200.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 10.0,
        "verbosity": 0,
        "num_boost_round": 1000,
        "early_stopping_rounds": 50,
    },
    "linear": {"alpha": 10.0},
}


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def default_params(algorithm: str) -> dict[str, Any]:
    """The default params of `algorithm` (a fresh copy; seed and threads are set by
    `fit_regressor`)."""
    _check_algorithm(algorithm)
    return dict(_DEFAULTS[algorithm])


def _jsonable(value: Any) -> Any:
    """Plain Python for numpy scalars, so params survive json.dumps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _matrix(X: Any, n_features: int, what: str) -> np.ndarray:
    """X as a 2-D float32/float64 numpy matrix with `n_features` columns (no copy when it
    already is one)."""
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} must be numeric, got dtype {X.dtype}") from exc
    if X.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows x features), got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"{what} has {X.shape[1]} columns but there are {n_features} feature_names")
    return X


def _target(y: Any, n_rows: int, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {y.shape}")
    if len(y) != n_rows:
        raise ValueError(f"{what} has {len(y)} values but its matrix has {n_rows} rows")
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.sum())} non-finite value(s) (first at row {int(np.flatnonzero(bad)[0])})")
    return y


def _normalized(values: np.ndarray) -> np.ndarray:
    values = np.abs(np.asarray(values, dtype=np.float64))
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values)


def read_envelope(blob: bytes, what: str = "serialized model") -> tuple[dict[str, Any], bytes]:
    """(header, payload) of bytes in the envelope `Regressor.to_bytes` writes."""
    return framing.unpack(blob, what, magic=MAGIC, length_bytes=ENVELOPE_LENGTH_BYTES)


class Regressor(ABC):
    """A fitted model of one algorithm; X is float (n, n_features), NaN = missing."""

    algorithm: str
    feature_names: list[str]
    params: dict[str, Any]  # the effective params (JSON-serialisable)
    best_iteration: int | None  # boosting rounds kept (early stopping); None for linear

    def _check_X(self, X: Any) -> np.ndarray:
        return _matrix(X, len(self.feature_names), f"{self.algorithm} input X")

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """float64 (n,) predictions."""

    @abstractmethod
    def _importance(self) -> np.ndarray:
        """Raw importance per feature, in feature_names order."""

    def feature_importance(self) -> dict[str, float]:
        """Share of the total importance per feature (gain for trees, |standardized coef|
        for linear); sums to 1, or all zeros when the model uses no feature."""
        return dict(zip(self.feature_names, _normalized(self._importance()).tolist()))

    @abstractmethod
    def contributions_with_bias(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n, n_features) contributions, (n,) bias): rows of contributions plus the bias
        equal the predictions (TreeSHAP for the trees)."""

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, n_features) per-feature contributions to each prediction: TreeSHAP values for
        the trees, coef * standardized x for linear (the bias term is left out)."""
        return self.contributions_with_bias(X)[0]

    @abstractmethod
    def _payload(self) -> bytes:
        """The model in its native format."""

    def to_bytes(self) -> bytes:
        header = {
            "algorithm": self.algorithm,
            "feature_names": self.feature_names,
            "params": self.params,
            "best_iteration": self.best_iteration,
        }
        return framing.pack(header, self._payload(), magic=MAGIC, length_bytes=ENVELOPE_LENGTH_BYTES)

    @staticmethod
    def from_bytes(blob: bytes) -> Regressor:
        """The regressor `to_bytes` wrote; its predictions equal the original's bit for bit."""
        header, payload = read_envelope(blob, "serialized Regressor")
        algorithm = header.get("algorithm")
        _check_algorithm(algorithm)
        cls = _CLASSES[algorithm]
        return cls._load(payload, list(header["feature_names"]), dict(header["params"]), header["best_iteration"])

    @classmethod
    @abstractmethod
    def _load(cls, payload: bytes, feature_names: list[str], params: dict[str, Any],
              best_iteration: int | None) -> Regressor:
        """Rebuild from `_payload` bytes."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self.feature_names)} features, best_iteration={self.best_iteration}>"


class LightGBMRegressor(Regressor):
    algorithm = "lightgbm"

    def __init__(self, booster: lgb.Booster, feature_names: list[str], params: dict[str, Any],
                 best_iteration: int | None) -> None:
        self.booster = booster
        self.feature_names = feature_names
        self.params = params
        self.best_iteration = best_iteration

    def _threads(self) -> int:
        return int(self.params.get("num_threads", 2))

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.booster.predict(self._check_X(X), num_threads=self._threads())
        return np.asarray(out, dtype=np.float64)

    def _importance(self) -> np.ndarray:
        return self.booster.feature_importance("gain")

    def contributions_with_bias(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        full = np.asarray(self.booster.predict(self._check_X(X), pred_contrib=True, num_threads=self._threads()),
                          dtype=np.float64)
        return full[:, :-1], full[:, -1]

    def _payload(self) -> bytes:
        return self.booster.model_to_string().encode()

    @classmethod
    def _load(cls, payload: bytes, feature_names: list[str], params: dict[str, Any],
              best_iteration: int | None) -> LightGBMRegressor:
        return cls(lgb.Booster(model_str=payload.decode()), feature_names, params, best_iteration)


class XGBoostRegressor(Regressor):
    algorithm = "xgboost"

    def __init__(self, booster: xgb.Booster, feature_names: list[str], params: dict[str, Any],
                 best_iteration: int | None) -> None:
        booster.set_param({"nthread": int(params.get("nthread", 2))})
        self.booster = booster
        self.feature_names = feature_names
        self.params = params
        self.best_iteration = best_iteration

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_X(X)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.inplace_predict(X, missing=np.nan), dtype=np.float64)

    def _importance(self) -> np.ndarray:
        gains = self.booster.get_score(importance_type="total_gain")  # only features used in a split
        return np.array([gains.get(f"f{i}", 0.0) for i in range(len(self.feature_names))])

    def contributions_with_bias(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X)
        matrix = xgb.DMatrix(X, missing=np.nan, nthread=int(self.params.get("nthread", 2)))
        full = np.asarray(self.booster.predict(matrix, pred_contribs=True), dtype=np.float64)
        return full[:, :-1], full[:, -1]

    def _payload(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))

    @classmethod
    def _load(cls, payload: bytes, feature_names: list[str], params: dict[str, Any],
              best_iteration: int | None) -> XGBoostRegressor:
        booster = xgb.Booster()
        booster.load_model(bytearray(payload))
        return cls(booster, feature_names, params, best_iteration)


class LinearRegressor(Regressor):
    algorithm = "linear"

    def __init__(self, pipeline: Pipeline, feature_names: list[str], params: dict[str, Any],
                 bounds: tuple[float, float] | None = None) -> None:
        self.pipeline = pipeline
        self.feature_names = feature_names
        self.params = params
        self.best_iteration = None
        self.bounds = bounds  # (min, max) of the training predictions; None: blobs written before the clip

    def _clip(self, raw: np.ndarray) -> np.ndarray:
        return raw if self.bounds is None else np.clip(raw, self.bounds[0], self.bounds[1])

    def _check_X(self, X: Any) -> np.ndarray:
        # An infinite feature value is missing to this model (imputed with the training
        # median), as the trees route it: the imputer refuses infinity outright.
        X = super()._check_X(X)
        infinite = np.isinf(X)
        return np.where(infinite, np.nan, X) if infinite.any() else X

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._check_X(X)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        return self._clip(np.asarray(self.pipeline.predict(X), dtype=np.float64))

    def _importance(self) -> np.ndarray:
        return np.abs(self.pipeline.named_steps["ridge"].coef_)

    def contributions_with_bias(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X)
        standardized = self.pipeline[:-1].transform(X) if len(X) else np.zeros((0, X.shape[1]))
        ridge = self.pipeline.named_steps["ridge"]
        contributions = np.asarray(standardized, dtype=np.float64) * ridge.coef_
        raw = contributions.sum(axis=1) + float(ridge.intercept_)
        # what the clip takes off goes into the bias: contributions + bias = prediction still
        return contributions, float(ridge.intercept_) + (self._clip(raw) - raw)

    def _payload(self) -> bytes:
        return pickle.dumps({"pipeline": self.pipeline, "bounds": self.bounds}, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def _load(cls, payload: bytes, feature_names: list[str], params: dict[str, Any],
              best_iteration: int | None) -> LinearRegressor:
        stored = pickle.loads(payload)  # noqa: S301 - our own blobs only
        if isinstance(stored, dict):
            bounds = stored["bounds"]
            return cls(stored["pipeline"], feature_names, params, None if bounds is None else tuple(bounds))
        return cls(stored, feature_names, params)  # written before predictions were clipped


_CLASSES: dict[str, type[Regressor]] = {
    "lightgbm": LightGBMRegressor,
    "xgboost": XGBoostRegressor,
    "linear": LinearRegressor,
}


def _rounds(merged: dict[str, Any], algorithm: str) -> tuple[int, int, str]:
    rounds, patience = merged.pop("num_boost_round"), merged.pop("early_stopping_rounds")
    for name, value in (("num_boost_round", rounds), ("early_stopping_rounds", patience)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{algorithm} param {name} must be an integer >= 1, got {value!r}")
    stopping = merged.pop("early_stopping_metric", "objective")
    if stopping not in STOPPING_METRICS:
        raise ValueError(f"{algorithm} param early_stopping_metric must be one of {STOPPING_METRICS}, got {stopping!r}")
    return int(rounds), int(patience), stopping


def _leaf_size(merged: dict[str, Any], algorithm: str, n_train: int, key: str) -> None:
    """`min_leaf_fraction` (share of the training rows) -> the library's minimum leaf size
    `key`, so the regularization scales with the history instead of being a fixed count."""
    fraction = merged.pop("min_leaf_fraction", None)
    if fraction is None:
        return
    if not isinstance(fraction, (int, float, np.number)) or isinstance(fraction, bool) or not 0 < fraction < 0.5:
        raise ValueError(f"{algorithm} param min_leaf_fraction must be a number in (0, 0.5), got {fraction!r}")
    merged[key] = max(1, int(round(fraction * n_train)))


def _fit_lightgbm(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                  feature_names: list[str], params: dict[str, Any],
                  groups: tuple[Sequence[int] | None, Sequence[int] | None]) -> LightGBMRegressor:
    lgb_params = dict(params)
    rounds, patience, stopping = _rounds(lgb_params, "lightgbm")
    train_groups, val_groups = groups
    ranking = lgb_params.get("objective") in LIGHTGBM_RANKING_OBJECTIVES
    if ranking:
        # one query group per session; its relevance is the session rank of the target
        train_set = lgb.Dataset(X_train, label=relevance_grades(y_train, train_groups), group=train_groups,
                                free_raw_data=True)
        val_set = lgb.Dataset(X_val, label=relevance_grades(y_val, val_groups), group=val_groups,
                              reference=train_set, free_raw_data=True)
    else:
        train_set = lgb.Dataset(X_train, label=y_train, free_raw_data=True)
        val_set = lgb.Dataset(X_val, label=y_val, reference=train_set, free_raw_data=True)
    feval = None
    if stopping == "rank_ic":
        rank_ic = SessionRankIC(y_val, val_groups)
        lgb_params["metric"] = "None"

        def feval(predictions: np.ndarray, _data: lgb.Dataset) -> tuple[str, float, bool]:
            return "rank_ic", rank_ic(predictions), True  # higher is better
    booster = lgb.train(
        lgb_params, train_set, num_boost_round=rounds, valid_sets=[val_set], valid_names=["val"], feval=feval,
        callbacks=[lgb.early_stopping(patience, first_metric_only=True, verbose=False)],
    )
    best = int(booster.best_iteration) or booster.current_iteration()
    # Keep the best trees only, as a model loaded from its own string: the in-memory model is
    # then exactly the serialised one, and the training data held by the booster is freed.
    compact = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return LightGBMRegressor(compact, feature_names, params, best)


def _fit_xgboost(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                 feature_names: list[str], params: dict[str, Any],
                 groups: tuple[Sequence[int] | None, Sequence[int] | None]) -> XGBoostRegressor:
    ranking = params.get("objective") in XGBOOST_RANKING_OBJECTIVES
    if ranking and params.get("eval_metric") == _DEFAULTS["xgboost"]["eval_metric"]:
        # the squared loss's RMSE means nothing on relevance grades: a ranking objective's own
        # stopping metric is NDCG over the whole session (recorded in the model's params)
        params = {**params, "eval_metric": "ndcg"}
    xgb_params = dict(params)
    rounds, patience, stopping = _rounds(xgb_params, "xgboost")
    nthread = int(xgb_params["nthread"])
    train_groups, val_groups = groups
    # a ranking objective: one query group per session, graded by the session rank of the
    # target, as LightGBM's ranking objectives
    train_label, val_label = (relevance_grades(y_train, train_groups), relevance_grades(y_val, val_groups)) if ranking else (y_train, y_val)
    train_matrix = xgb.QuantileDMatrix(X_train, label=train_label, group=train_groups if ranking else None,
                                       missing=np.nan, nthread=nthread)
    val_matrix = xgb.QuantileDMatrix(X_val, label=val_label, group=val_groups if ranking else None,
                                     missing=np.nan, nthread=nthread, ref=train_matrix)
    metric: dict[str, Any] = {}
    if stopping == "rank_ic":
        rank_ic = SessionRankIC(y_val, val_groups)
        xgb_params.pop("eval_metric", None)
        xgb_params["disable_default_eval_metric"] = 1
        metric = {"custom_metric": lambda preds, _data: ("rank_ic", rank_ic(preds)), "maximize": True}
    booster = xgb.train(
        xgb_params, train_matrix, num_boost_round=rounds, evals=[(val_matrix, "val")],
        early_stopping_rounds=patience, verbose_eval=False, **metric,
    )
    best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)) + 1
    # the trees after the best iteration were only grown to see that they do not help
    return XGBoostRegressor(booster[:best], feature_names, params, best)


def _fit_linear(X_train: np.ndarray, y_train: np.ndarray, feature_names: list[str],
                params: dict[str, Any]) -> LinearRegressor:
    unknown = sorted(set(params) - {"alpha"})
    if unknown:
        raise ValueError(f"linear: unknown param(s) {unknown}; the ridge baseline takes only 'alpha'")
    alpha = params["alpha"]
    if not isinstance(alpha, (int, float, np.number)) or isinstance(alpha, bool) or not alpha > 0 or not np.isfinite(alpha):
        raise ValueError(f"linear param alpha must be a finite number > 0, got {alpha!r}")
    pipeline = Pipeline([
        # a column with no value in training is imputed with 0 (keep_empty_features) rather
        # than dropped, so prediction inputs keep their shape; it then gets a zero coefficient
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        # the imputer's output is already a fresh copy: scale it in place
        ("scale", StandardScaler(copy=False)),
        ("ridge", Ridge(alpha=float(alpha), solver="cholesky")),
    ])
    pipeline.fit(X_train, y_train)
    fitted = np.asarray(pipeline.predict(X_train), dtype=np.float64)
    return LinearRegressor(pipeline, feature_names, params, (float(fitted.min()), float(fitted.max())))


def fit_regressor(
    algorithm: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    feature_names: Sequence[str],
    params: dict[str, Any] | None = None,
    seed: int = DEFAULT_SEED,
    num_threads: int = 2,
    train_groups: Sequence[int] | None = None,
    val_groups: Sequence[int] | None = None,
) -> Regressor:
    """Train `algorithm` on (X_train, y_train), early-stopped on (X_val, y_val) for the
    trees (the linear model ignores the validation rows; they may be None for it).

    `train_groups` / `val_groups`: session sizes of rows stored session by session, needed
    by a ranking objective (`RANKING_OBJECTIVES`) and by
    ``early_stopping_metric="rank_ic"``. ``min_leaf_fraction`` sets the minimum leaf size as
    a share of the training rows.

    `params` override `default_params(algorithm)`; `seed` and `num_threads` always win over
    params. Raises ValueError for an unknown algorithm, mismatched shapes or feature_names,
    and non-finite targets."""
    _check_algorithm(algorithm)
    feature_names = [str(f) for f in feature_names]
    if not feature_names:
        raise ValueError(f"{algorithm}: feature_names is empty")
    if len(set(feature_names)) != len(feature_names):
        duplicates = sorted({f for f in feature_names if feature_names.count(f) > 1})
        raise ValueError(f"{algorithm}: duplicate feature_names {duplicates}")
    X_train = _matrix(X_train, len(feature_names), f"{algorithm} X_train")
    if len(X_train) == 0:
        raise ValueError(f"{algorithm}: X_train has no rows")
    y_train = _target(y_train, len(X_train), f"{algorithm} y_train")
    merged = _jsonable({**default_params(algorithm), **(params or {})})

    if algorithm == "linear":
        return _fit_linear(X_train, y_train, feature_names, merged)

    if X_val is None or y_val is None:
        raise ValueError(f"{algorithm}: X_val and y_val are required (early stopping)")
    X_val = _matrix(X_val, len(feature_names), f"{algorithm} X_val")
    if len(X_val) == 0:
        raise ValueError(f"{algorithm}: X_val has no rows")
    y_val = _target(y_val, len(X_val), f"{algorithm} y_val")
    inner = {k: merged.pop(k) for k in INNER_STOPPING_KEYS if k in merged}
    if inner.get("stopping_sessions"):
        X_train, y_train, train_groups, X_val, y_val, val_groups = inner_stopping_split(
            X_train, y_train, train_groups, int(inner["stopping_sessions"]), int(inner.get("stopping_gap_sessions", 0)),
            algorithm,
        )
    # min_child_weight is a row count under the squared loss (each row's hessian is 1)
    _leaf_size(merged, algorithm, len(X_train), "min_data_in_leaf" if algorithm == "lightgbm" else "min_child_weight")
    if algorithm == "lightgbm":
        merged.update(seed=int(seed), num_threads=int(num_threads))
        model: Regressor = _fit_lightgbm(X_train, y_train, X_val, y_val, feature_names, merged, (train_groups, val_groups))
    else:
        merged.update(seed=int(seed), nthread=int(num_threads))
        model = _fit_xgboost(X_train, y_train, X_val, y_val, feature_names, merged, (train_groups, val_groups))
    model.params.update(inner)
    return model

