"""A serving model as files VFR's live ensemble runs: `model.txt` (LightGBM text) and
`normalizer.json`, read by VFR's `scripts/ml/predict-generic.py`.

What predict-generic does with them (read from its code): `lgb.Booster(model_file=...)`;
the dict-based normalizer `{"params": {name: {"mean", "stdDev"}}}` gives the feature order
and the z-score `(x - mean) / stdDev`; a feature absent from the request raises "Missing
feature"; a scalar prediction `p` in 0..1 is read as a binary classifier:
`prediction = (p - 0.5) * 2`, `confidence = |p - 0.5| * 2`, `probability.up = p`.

So the exported file computes exactly our published probability, and VFR's confidence is
exactly ours (`|2p - 1|`):

* every tree of the serving model's estimator (LightGBM trees as they are, XGBoost trees
  converted, the ridge as one tree per input whose in-range leaf is a LightGBM linear leaf
  (`linear_trees`), an ensemble's members with their leaves multiplied by the member's
  coefficient) goes into one LightGBM model; constants (XGBoost's base score, the ridge's
  and the ensemble's intercepts) are added to the leaves of the first tree;
* the return calibration, whose probability is `sigmoid(a * score + b)`
  (`ReturnCalibration.logit_coefficients`: logistic residuals), is folded in: every leaf is
  multiplied by `a`, `b` is added to the first tree, and the objective is `binary sigmoid:1`,
  so LightGBM's output is `sigmoid(a * score + b)`;
* the normalizer is the identity (mean 0, stdDev 1: `(x - 0) / 1 == x` exactly).

Not expressed (`not_expressed`): the ridge's clip of its output to its training range, a clip
of a sum that a sum of trees cannot compute; where it binds (`ridge_clip_binds`) VFR runs the
unclipped ridge. And, as for every model, the calibration's PROBABILITY_EPSILON clip, which
only a probability within 1e-6 of 0 or 1 reaches.

Missing values: VFR cannot send a NaN (its JSON has none; a missing row is a missing
feature), so a missing input is exported as MISSING_VALUE and every split whose NaN goes
right gets a guard node (`x <= GUARD_THRESHOLD` -> the NaN side), which routes the sentinel
exactly as the original model routes a NaN. An infinite input (the feature matrix's check
refuses them, but a served vector may hold one) is sent as NEGATIVE_ / POSITIVE_INFINITY_VALUE,
which every split of the model sends the way it sends the infinity. Real inputs must lie in
(REAL_MIN, REAL_MAX).

XGBoost compares `float32(x) < c`; LightGBM compares `x <= t` in double. The threshold
`t` is the largest double whose float32 rounding is below `c`, so both agree on every input.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vfr_ml_pipelines.lib.models import algorithms
from vfr_ml_pipelines.lib.models.ensemble import EnsembleModel
from vfr_ml_pipelines.lib.models.serving_model import ServingModel

MODEL_FILE = "model.txt"
NORMALIZER_FILE = "normalizer.json"
# the value exported for a missing input, and the guard below which a value counts as one;
# ml_feature_store.value is decimal(20,8): both fit, and no real feature comes near them
MISSING_VALUE = -1.0e11
GUARD_THRESHOLD = -5.0e10
# infinite inputs (JSON has no Infinity) as values beyond every split on their side; real
# inputs lie in (REAL_MIN, REAL_MAX), and a threshold beyond that band (LightGBM writes 1e300
# for a split of "any value" vs NaN) is moved to the gap between the band and the stand-in
# for infinity on its side, which routes every real, infinite and missing input as before
NEGATIVE_INFINITY_VALUE = -4.0e10
REAL_MIN = -3.0e10
REAL_MAX = 8.0e11
POSITIVE_INFINITY_VALUE = 9.0e11
_LIGHTGBM_INFINITY = 1e300  # LightGBM reads an input beyond +-1e300 as +-1e300
_NAN_MISSING = 2 << 2  # LightGBM decision_type: missing type NaN (bits 2-3)
_DEFAULT_LEFT = 2  # LightGBM decision_type: NaN goes left


class LiveExportError(ValueError):
    """The serving model cannot be written as one LightGBM text model."""


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


# ------------------------------------------------------------------ reading the trees


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


# ------------------------------------------------------------------ transforming them


def scaled(node: Node, factor: float, offset: float = 0.0) -> Node:
    if isinstance(node, LinearLeaf):
        return LinearLeaf(node.value * factor + offset, node.feature, node.constant * factor + offset, node.coefficient * factor)
    if isinstance(node, Leaf):
        return Leaf(node.value * factor + offset)
    return Split(node.feature, node.threshold, node.nan_left, scaled(node.left, factor, offset), scaled(node.right, factor, offset),
                 node.pos_inf_left, node.neg_inf_left)


def guarded(node: Node) -> Node:
    """The tree with a guard before every split whose NaN goes right, so MISSING_VALUE
    takes the NaN side everywhere (the NaN side's subtree is shared, not copied)."""
    if isinstance(node, Leaf):
        return node
    threshold = node.threshold
    if not math.isfinite(threshold):
        raise LiveExportError(f"split on feature {node.feature} at {threshold}")
    if threshold >= REAL_MAX:  # every real input goes left; +infinity to its side
        threshold = POSITIVE_INFINITY_VALUE + 5e10 if node.pos_inf_left else (REAL_MAX + POSITIVE_INFINITY_VALUE) / 2
    elif threshold <= REAL_MIN:  # every real input goes right; -infinity to its side
        threshold = (NEGATIVE_INFINITY_VALUE + REAL_MIN) / 2 if node.neg_inf_left else (GUARD_THRESHOLD + NEGATIVE_INFINITY_VALUE) / 2
    if (POSITIVE_INFINITY_VALUE <= threshold) != node.pos_inf_left or (NEGATIVE_INFINITY_VALUE <= threshold) != node.neg_inf_left:
        raise LiveExportError(f"split on feature {node.feature} at {node.threshold}: infinite inputs cannot be routed as the model routes them")
    left, right = guarded(node.left), guarded(node.right)
    split = Split(node.feature, threshold, node.nan_left, left, right)
    if node.nan_left:
        return split
    return Split(node.feature, GUARD_THRESHOLD, True, right, split)


def _flatten(root: Node) -> tuple[list[Split], list[Leaf], dict[int, int]]:
    """Splits and leaves in LightGBM's numbering (splits 0.., leaves ~index); a subtree
    shared by two guards is written twice (LightGBM's format is a tree)."""
    splits: list[Split] = []
    leaves: list[Leaf] = []
    children: dict[int, int] = {}

    def visit(node: Node) -> int:
        if isinstance(node, Leaf):
            leaves.append(node)
            return ~(len(leaves) - 1)
        index = len(splits)
        splits.append(node)
        children[2 * index] = visit(node.left)
        children[2 * index + 1] = visit(node.right)
        return index

    visit(root)
    return splits, leaves, children


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise LiveExportError(f"non-finite value {value} in the model")
    return repr(float(value))


def _tree_text(index: int, root: Node) -> str:
    if isinstance(root, Leaf):
        raise LiveExportError("a tree without a split cannot be the first tree")
    splits, leaves, children = _flatten(root)
    ints = lambda values: " ".join(str(v) for v in values)  # noqa: E731
    lines = [
        f"Tree={index}",
        f"num_leaves={len(leaves)}",
        "num_cat=0",
        f"split_feature={ints(s.feature for s in splits)}",
        f"split_gain={' '.join('0' for _ in splits)}",
        f"threshold={' '.join(_num(s.threshold) for s in splits)}",
        f"decision_type={ints(_NAN_MISSING | (_DEFAULT_LEFT if s.nan_left else 0) for s in splits)}",
        f"left_child={ints(children[2 * i] for i in range(len(splits)))}",
        f"right_child={ints(children[2 * i + 1] for i in range(len(splits)))}",
        f"leaf_value={' '.join(_num(leaf.value) for leaf in leaves)}",
        f"leaf_weight={' '.join('0' for _ in leaves)}",
        f"leaf_count={' '.join('0' for _ in leaves)}",
        f"internal_value={' '.join('0' for _ in splits)}",
        f"internal_weight={' '.join('0' for _ in splits)}",
        f"internal_count={' '.join('0' for _ in splits)}",
    ]
    linear = [leaf for leaf in leaves if isinstance(leaf, LinearLeaf)]
    if linear:
        # LightGBM's linear leaves: output leaf_const + sum(leaf_coeff * x[leaf_features]),
        # or leaf_value when one of those inputs is NaN; the features and coefficients of
        # all leaves are listed one after the other, num_features says how many each has
        lines += [
            "is_linear=1",
            f"leaf_const={' '.join(_num(leaf.constant if isinstance(leaf, LinearLeaf) else leaf.value) for leaf in leaves)}",
            f"num_features={ints(1 if isinstance(leaf, LinearLeaf) else 0 for leaf in leaves)}",
            f"leaf_features={ints(leaf.feature for leaf in linear)}",
            f"leaf_coeff={' '.join(_num(leaf.coefficient) for leaf in linear)}",
        ]
    else:
        lines.append("is_linear=0")
    lines.append("shrinkage=1")
    return "\n".join(lines) + "\n\n"


def _split_features(node: Node, into: set[int]) -> set[int]:
    if isinstance(node, LinearLeaf):
        into.add(node.feature)
    if isinstance(node, Split):
        into.add(node.feature)
        _split_features(node.left, into)
        _split_features(node.right, into)
    return into


def _renumbered(node: Node, index: dict[int, int]) -> Node:
    if isinstance(node, LinearLeaf):
        return LinearLeaf(node.value, index[node.feature], node.constant, node.coefficient)
    if isinstance(node, Leaf):
        return node
    return Split(index[node.feature], node.threshold, node.nan_left, _renumbered(node.left, index), _renumbered(node.right, index),
                 node.pos_inf_left, node.neg_inf_left)


def used_features(model: ServingModel) -> list[str]:
    """The features some split of the model reads, in the model's order: the only inputs the
    exported files ask VFR for (and the only ones exported for them)."""
    used: set[int] = set()
    for tree in estimator_trees(model.estimator)[0]:
        _split_features(tree, used)
    return [model.feature_names[i] for i in sorted(used)]


def live_model_text(model: ServingModel) -> str:
    """The LightGBM text model whose prediction is the serving model's calibrated
    probability P(return > 0) for a row without NaN (missing inputs as MISSING_VALUE). Its
    features are `used_features(model)`, in that order."""
    trees, constant = estimator_trees(model.estimator)
    # constant trees (no split) carry only a value: fold them into the constant
    constant += sum(t.value for t in trees if isinstance(t, Leaf))
    trees = [t for t in trees if isinstance(t, Split)]
    if not trees:
        raise LiveExportError(f"{model.candidate} {model.horizon}: the model has no split")
    a, b = model.calibration.logit_coefficients()
    trees = [scaled(t, a, (a * constant + b) if i == 0 else 0.0) for i, t in enumerate(trees)]
    used = sorted(set().union(*(_split_features(t, set()) for t in trees)))
    index = {old: new for new, old in enumerate(used)}
    trees = [_renumbered(t, index) for t in trees]
    names = [model.feature_names[i] for i in used]
    bad = [n for n in names if not n or any(c.isspace() for c in n)]
    if bad:
        raise LiveExportError(f"feature names LightGBM's text format cannot hold: {bad[:5]}")
    bodies = [_tree_text(i, guarded(t)) for i, t in enumerate(trees)]
    header = [
        "tree", "version=v4", "num_class=1", "num_tree_per_iteration=1", "label_index=0",
        f"max_feature_idx={len(names) - 1}", "objective=binary sigmoid:1",
        f"feature_names={' '.join(names)}", f"feature_infos={' '.join('none' for _ in names)}",
        f"tree_sizes={' '.join(str(len(body)) for body in bodies)}",
    ]
    return "\n".join(header) + "\n\n" + "".join(bodies) + "end of trees\n\npandas_categorical:null\n"


def normalizer(feature_names: list[str]) -> dict[str, Any]:
    """predict-generic's dict-based format: the key order is the model's feature order (and
    the keys the names it looks the features up by); the identity z-score keeps every value
    exactly."""
    return {"params": {name: {"mean": 0.0, "stdDev": 1.0} for name in feature_names}}


def _write_atomic(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_dir(models_dir: Path, model_name: str, model_version: str) -> Path:
    """Where VFR looks: `models/{model_name}/v{model_version}/` under its working directory."""
    return Path(models_dir) / model_name / f"v{model_version}"


def write_live_model(models_dir: Path, model_name: str, model_version: str, model: ServingModel, input_names: list[str]) -> Path:
    """Write `model.txt` and `normalizer.json` for VFR's live path; `input_names` are the
    names VFR's features carry the model's inputs under, in the model's feature order (the
    normalizer keeps those of `used_features`). Each file is replaced atomically (a reader
    sees the old file or the new one), the normalizer first so a model file never appears
    without it. Returns the folder."""
    if len(input_names) != len(model.feature_names) or len(set(input_names)) != len(input_names):
        raise LiveExportError(f"{len(input_names)} distinct input names for a model of {len(model.feature_names)} features")
    text = live_model_text(model)
    exported = dict(zip(model.feature_names, input_names, strict=True))
    folder = model_dir(models_dir, model_name, model_version)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / NORMALIZER_FILE, json.dumps(normalizer([exported[n] for n in used_features(model)]), allow_nan=False, indent=1))
    _write_atomic(folder / MODEL_FILE, text)
    return folder


def live_inputs(values: dict[str, Any], feature_names: list[str], where: str) -> dict[str, float]:
    """The model inputs as VFR must send them: a missing (None / NaN) value as
    MISSING_VALUE, an infinite one as NEGATIVE_ / POSITIVE_INFINITY_VALUE; a finite value
    outside (REAL_MIN, REAL_MAX) is an error naming it."""
    out: dict[str, float] = {}
    for name in feature_names:
        value = values.get(name)
        number = math.nan if value is None else float(value)
        if math.isnan(number):
            out[name] = MISSING_VALUE
        elif math.isinf(number):
            out[name] = POSITIVE_INFINITY_VALUE if number > 0 else NEGATIVE_INFINITY_VALUE
        elif not REAL_MIN < number < REAL_MAX:
            raise LiveExportError(f"{where}: feature {name} = {value} cannot be sent to VFR's live path")
        else:
            out[name] = number
    return out


def live_input_matrix(X: np.ndarray, symbols: list[str], feature_names: list[str], where: str) -> np.ndarray:
    """`live_inputs` for a whole session at once: rows of X are symbols, columns the
    features; the same stand-ins, the same error naming the first symbol and feature whose
    finite value cannot be sent."""
    X = np.asarray(X, dtype=np.float64)
    out = np.where(np.isnan(X), MISSING_VALUE, X)
    out = np.where(np.isposinf(X), POSITIVE_INFINITY_VALUE, out)
    out = np.where(np.isneginf(X), NEGATIVE_INFINITY_VALUE, out)
    bad = np.isfinite(X) & ~((X > REAL_MIN) & (X < REAL_MAX))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LiveExportError(f"{symbols[i]} on {where}: feature {feature_names[j]} = {X[i, j]} cannot be sent to VFR's live path")
    return out
