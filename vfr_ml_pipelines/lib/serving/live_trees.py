"""A serving model's estimator as a constant plus a sum of trees (`estimator_trees`): LightGBM
trees as they are, XGBoost trees with thresholds moved to LightGBM's comparison, the ridge as
one tree per input with a linear leaf, an ensemble's members scaled by their coefficients.
Also what such a sum cannot express: the ridge's output clip (`not_expressed`,
`ridge_clip_binds`). live_model.py writes the trees as VFR's LightGBM text model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.ensemble import EnsembleModel
from vfr_ml_pipelines.lib.serving.live_values import REAL_MAX, REAL_MIN, LiveExportError

_LIGHTGBM_INFINITY = 1e300  # LightGBM reads an input beyond +-1e300 as +-1e300


@dataclass
class Leaf:
    value: float


@dataclass
class LinearLeaf(Leaf):
    """A leaf whose output is `constant + coefficient * x[feature]` (LightGBM's linear
    leaf, `is_linear=1`); `value` is what LightGBM returns instead when that input is NaN."""

    feature: int = 0
    constant: float = 0.0
    coefficient: float = 0.0


@dataclass
class Split:
    feature: int
    threshold: float  # x <= threshold goes left
    nan_left: bool
    left: Leaf | Split
    right: Leaf | Split
    # where the original model sends an infinite input (LightGBM clamps it to +-1e300 first,
    # XGBoost compares it as it is)
    pos_inf_left: bool = False
    neg_inf_left: bool = True


Node = Leaf | Split


def _lightgbm_node(node: dict[str, Any]) -> Node:
    if "leaf_value" in node:
        return Leaf(float(node["leaf_value"]))
    if node.get("decision_type") != "<=":
        raise LiveExportError(f"LightGBM split of type {node.get('decision_type')!r} (only numerical '<=' splits are exported)")
    threshold = float(node["threshold"])
    missing = node.get("missing_type", "None")
    if missing == "NaN":
        nan_left = bool(node["default_left"])
    elif missing == "None":  # LightGBM reads a NaN as 0.0 at such a split
        nan_left = 0.0 <= threshold
    else:
        raise LiveExportError(f"LightGBM split with missing type {missing!r} (zero_as_missing is not exported)")
    return Split(
        int(node["split_feature"]), threshold, nan_left, _lightgbm_node(node["left_child"]), _lightgbm_node(node["right_child"]),
        pos_inf_left=_LIGHTGBM_INFINITY <= threshold, neg_inf_left=-_LIGHTGBM_INFINITY <= threshold,
    )


def lightgbm_trees(booster: Any) -> tuple[list[Node], float]:
    """The trees of a LightGBM regression booster (and constant 0: LightGBM keeps its
    average in the first tree's leaves)."""
    dump = booster.dump_model()
    if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
        raise LiveExportError("only single-output LightGBM models are exported")
    return [_lightgbm_node(t["tree_structure"]) for t in dump["tree_info"]], 0.0


def xgboost_threshold(condition: float) -> float:
    """The largest double x with float32(x) < float32(condition): XGBoost's `x < c` on
    float32 inputs as LightGBM's `x <= t` on doubles."""
    c = np.float32(condition)
    below = np.nextafter(c, np.float32(-np.inf))
    midpoint = (float(below) + float(c)) / 2.0  # exact in double
    # a double exactly at the midpoint rounds to the float32 with an even significand
    return midpoint if np.float32(midpoint) == below else float(np.nextafter(midpoint, -np.inf))


def _xgboost_node(node: dict[str, Any]) -> Node:
    if "leaf" in node:
        return Leaf(float(np.float32(node["leaf"])))
    children = {child["nodeid"]: child for child in node["children"]}
    feature = node["split"]
    if not (isinstance(feature, str) and feature.startswith("f") and feature[1:].isdigit()):
        raise LiveExportError(f"XGBoost split on {feature!r} (expected an f<index> feature)")
    return Split(
        int(feature[1:]), xgboost_threshold(float(node["split_condition"])), node["missing"] == node["yes"],
        _xgboost_node(children[node["yes"]]), _xgboost_node(children[node["no"]]),
    )


def xgboost_trees(booster: Any) -> tuple[list[Node], float]:
    """The trees of an XGBoost regression booster and its base score (the margin added
    to their sum)."""
    config = json.loads(booster.save_config())
    learner = config["learner"]
    objective = learner["objective"]["name"]
    if objective not in ("reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror"):
        raise LiveExportError(f"XGBoost objective {objective!r} (only identity-link regression is exported)")
    if learner["gradient_booster"]["name"] != "gbtree":
        raise LiveExportError(f"XGBoost booster {learner['gradient_booster']['name']!r} (only gbtree is exported)")
    base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
    return [_xgboost_node(json.loads(tree)) for tree in booster.get_dump(dump_format="json")], base


def linear_trees(estimator: algorithms.LinearRegressor) -> tuple[list[Node], float]:
    """The ridge model (median imputation -> standardisation -> ridge) as one tree per
    input with a non-zero coefficient, and its intercept: `c_j * (x_j - mean_j) / scale_j`
    folded into one linear leaf `w_j * x_j - w_j * mean_j` (w_j = c_j / scale_j) for a real
    input, and a constant leaf `w_j * (median_j - mean_j)` for a missing or infinite one (the
    ridge imputes both with the training median). The splits are written as the model sees
    the input (NaN left; below REAL_MIN with -infinity; above REAL_MAX with +infinity), so
    `guarded` places them around the stand-ins as for any tree.

    Not expressed: the clip of the ridge's OUTPUT to its training predictions' range
    (`LinearRegressor.bounds`), a clip of the sum that no sum of trees can compute; the
    exported model is the unclipped ridge (`ridge_clip_binds` counts the rows where they
    differ)."""
    steps = dict(estimator.pipeline.named_steps)
    imputer, scaler, ridge = steps.get("impute"), steps.get("scale"), steps.get("ridge")
    if ridge is None or imputer is None or scaler is None or len(steps) != 3:
        raise LiveExportError(f"linear model with steps {list(steps)} (expected impute -> scale -> ridge)")
    if getattr(imputer, "add_indicator", False):
        raise LiveExportError("linear model whose imputer adds missing-value indicators")
    coef = np.asarray(ridge.coef_, dtype=np.float64).ravel()
    n = len(coef)
    mean = np.zeros(n) if getattr(scaler, "mean_", None) is None else np.asarray(scaler.mean_, dtype=np.float64)
    scale = np.ones(n) if getattr(scaler, "scale_", None) is None else np.asarray(scaler.scale_, dtype=np.float64)
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if not (len(mean) == len(scale) == len(fill) == n == len(estimator.feature_names)):
        raise LiveExportError(f"linear model with {n} coefficients for {len(estimator.feature_names)} features")
    trees: list[Node] = []
    for j in np.flatnonzero(coef):
        w = float(coef[j] / scale[j])
        imputed = Leaf(float(w * (fill[j] - mean[j])))
        real = LinearLeaf(imputed.value, feature=int(j), constant=float(-w * mean[j]), coefficient=w)
        low = Split(int(j), REAL_MIN, True, Leaf(imputed.value), real, neg_inf_left=True)
        trees.append(Split(int(j), REAL_MAX, True, low, imputed, pos_inf_left=False))
    return trees, float(ridge.intercept_)


def _clipped_ridges(estimator: Any) -> dict[str, algorithms.LinearRegressor]:
    """The ridge models whose output clip counts: the estimator itself, or the ensemble's
    ridge members with a weight."""
    if isinstance(estimator, algorithms.LinearRegressor):
        ridges = {"ridge": estimator}
    else:
        ridges = {
            name: m for name, m in getattr(estimator, "members", {}).items()
            if isinstance(m, algorithms.LinearRegressor) and estimator.weights[name] != 0.0
        }
    return {name: r for name, r in ridges.items() if r.bounds is not None}


def not_expressed(estimator: Any) -> str:
    """What of the estimator the exported model does not compute ("" when it is exact)."""
    ridges = _clipped_ridges(estimator)
    if not ridges:
        return ""
    ranges = ", ".join(f"{name} to [{r.bounds[0]:.4g}, {r.bounds[1]:.4g}]" for name, r in ridges.items())
    return (f"the clip of the ridge's output to its training range ({ranges}): where it binds, VFR's live path runs "
            "the unclipped ridge, whose score lies beyond that range, not the published model")


def ridge_clip_binds(estimator: Any, X: np.ndarray) -> int:
    """How many rows of X the ridge's output clip changes (in the ridge model itself or a
    ridge member of an ensemble): on those rows the exported model, which cannot clip a
    sum, gives the unclipped ridge instead."""
    binds = np.zeros(len(X), dtype=bool)
    for ridge in _clipped_ridges(estimator).values():
        raw = np.asarray(ridge.pipeline.predict(ridge._check_X(X)), dtype=np.float64)
        binds |= (raw < ridge.bounds[0]) | (raw > ridge.bounds[1])
    return int(binds.sum())


@dataclass(frozen=True)
class RidgeTerms:
    """A clipped ridge inside the exported sum: its trees are `count` trees from `start`
    (numbered as `live_model.exported_trees` keeps them: trees with a split only), each the
    ridge's term times `coefficient` (1 for the ridge model, the member's weight / scale in
    an ensemble); its output is `intercept` + the terms, clipped to [low, high]."""

    start: int
    count: int
    coefficient: float
    intercept: float
    low: float
    high: float


def ridge_terms(estimator: Any) -> list[RidgeTerms]:
    """Where the clipped ridges' terms sit among the estimator's trees, in
    `estimator_trees`' order (the ridge's trees always have a split; other members' trees
    without one are left out of the numbering, as the export leaves them out)."""
    if isinstance(estimator, algorithms.LinearRegressor):
        parts = [(estimator, 1.0)]
    elif isinstance(estimator, EnsembleModel):
        parts = [(m, estimator.weights[n] / estimator.scales[n]) for n, m in estimator.members.items() if estimator.weights[n] != 0.0]
    else:
        return []
    out, start = [], 0
    for member, coefficient in parts:
        count = sum(isinstance(t, Split) for t in estimator_trees(member)[0])
        if isinstance(member, algorithms.LinearRegressor) and member.bounds is not None:
            intercept = float(member.pipeline.named_steps["ridge"].intercept_)
            out.append(RidgeTerms(start, count, coefficient, intercept, float(member.bounds[0]), float(member.bounds[1])))
        start += count
    return out


def estimator_trees(estimator: Any) -> tuple[list[Node], float]:
    """(trees, constant): the estimator's score is constant + the sum of the trees (for a
    ridge model or member: before its output clip, see `linear_trees`)."""
    if isinstance(estimator, algorithms.LightGBMRegressor):
        return lightgbm_trees(estimator.booster)
    if isinstance(estimator, algorithms.XGBoostRegressor):
        return xgboost_trees(estimator.booster)
    if isinstance(estimator, algorithms.LinearRegressor):
        return linear_trees(estimator)
    if isinstance(estimator, EnsembleModel):
        trees: list[Node] = []
        constant = estimator.intercept
        for name, member in estimator.members.items():
            if estimator.weights[name] == 0.0:
                continue  # EnsembleModel.predict leaves it out too
            coefficient = estimator.weights[name] / estimator.scales[name]
            member_trees, member_constant = estimator_trees(member)
            trees.extend(scaled(tree, coefficient) for tree in member_trees)
            constant += coefficient * member_constant
        return trees, constant
    raise LiveExportError(f"a {getattr(estimator, 'algorithm', type(estimator).__name__)} model cannot be written as LightGBM trees")


def scaled(node: Node, factor: float, offset: float = 0.0) -> Node:
    if isinstance(node, LinearLeaf):
        return LinearLeaf(node.value * factor + offset, node.feature, node.constant * factor + offset, node.coefficient * factor)
    if isinstance(node, Leaf):
        return Leaf(node.value * factor + offset)
    return Split(node.feature, node.threshold, node.nan_left, scaled(node.left, factor, offset), scaled(node.right, factor, offset),
                 node.pos_inf_left, node.neg_inf_left)
