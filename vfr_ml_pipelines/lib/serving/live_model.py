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

Code: live_trees.py reads the estimator as trees (and says what they cannot express),
live_values.py holds the stand-ins and encodes the inputs; this module guards the trees and
writes the text model and its files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.serving.live_trees import Leaf, LinearLeaf, Node, RidgeTerms, Split, estimator_trees, ridge_terms, scaled
from vfr_ml_pipelines.lib.serving.live_scoring import MODEL_FILE, SCORING_FILE, scoring_spec
from vfr_ml_pipelines.lib.serving.live_values import (
    GUARD_THRESHOLD,
    NEGATIVE_INFINITY_VALUE,
    POSITIVE_INFINITY_VALUE,
    REAL_MAX,
    REAL_MIN,
    LiveExportError,
)

NORMALIZER_FILE = "normalizer.json"
_NAN_MISSING = 2 << 2  # LightGBM decision_type: missing type NaN (bits 2-3)
_DEFAULT_LEFT = 2  # LightGBM decision_type: NaN goes left


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


@dataclass(frozen=True)
class LiveTrees:
    """The exported model before it is written: its trees (renumbered to `names`, the
    calibration folded in), the offset added to the first tree's leaves (a * constant + b)
    and, per clipped ridge, which trees are its terms (`live_scoring` puts the clip back)."""

    trees: list[Split]
    names: list[str]
    first_offset: float
    ridge_terms: list[RidgeTerms]


def exported_trees(model: ServingModel) -> LiveTrees:
    trees, constant = estimator_trees(model.estimator)
    # constant trees (no split) carry only a value: fold them into the constant
    constant += sum(t.value for t in trees if isinstance(t, Leaf))
    trees = [t for t in trees if isinstance(t, Split)]
    if not trees:
        raise LiveExportError(f"{model.candidate} {model.horizon}: the model has no split")
    a, b = model.calibration.logit_coefficients()
    offset = a * constant + b
    trees = [scaled(t, a, offset if i == 0 else 0.0) for i, t in enumerate(trees)]
    used = sorted(set().union(*(_split_features(t, set()) for t in trees)))
    index = {old: new for new, old in enumerate(used)}
    trees = [_renumbered(t, index) for t in trees]
    names = [model.feature_names[i] for i in used]
    bad = [n for n in names if not n or any(c.isspace() for c in n)]
    if bad:
        raise LiveExportError(f"feature names LightGBM's text format cannot hold: {bad[:5]}")
    return LiveTrees(trees, names, offset, ridge_terms(model.estimator))


def live_model_text(model: ServingModel, exported: LiveTrees | None = None) -> str:
    """The LightGBM text model whose prediction is the serving model's calibrated
    probability P(return > 0) for a row without NaN (missing inputs as MISSING_VALUE). Its
    features are `used_features(model)`, in that order."""
    exported = exported or exported_trees(model)
    names = exported.names
    bodies = [_tree_text(i, guarded(t)) for i, t in enumerate(exported.trees)]
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


def write_live_model(models_dir: Path, model_name: str, model_version: str, model: ServingModel, input_names: list[str],
                     run_id: str = "") -> Path:
    """Write `model.txt` and `normalizer.json` for VFR's live path; `input_names` are the
    names VFR's features carry the model's inputs under, in the model's feature order (the
    normalizer keeps those of `used_features`). Beside them `scoring.json`, what our own
    publish needs to score the model from `model.txt` (`live_scoring`; `run_id`: the registry
    run the model comes from). Each file is replaced atomically (a reader sees the old file
    or the new one), the normalizer first so a model file never appears without it, the
    scoring file's old version removed first and its new one written last, so it never
    describes another `model.txt` (it also holds the text's checksum). Returns the folder."""
    if len(input_names) != len(model.feature_names) or len(set(input_names)) != len(input_names):
        raise LiveExportError(f"{len(input_names)} distinct input names for a model of {len(model.feature_names)} features")
    trees = exported_trees(model)
    text = live_model_text(model, trees)
    exported = dict(zip(model.feature_names, input_names, strict=True))
    folder = model_dir(models_dir, model_name, model_version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCORING_FILE).unlink(missing_ok=True)
    _write_atomic(folder / NORMALIZER_FILE, json.dumps(normalizer([exported[n] for n in trees.names]), allow_nan=False, indent=1))
    _write_atomic(folder / MODEL_FILE, text)
    spec = scoring_spec(model, text, trees.names, trees.first_offset, trees.ridge_terms, run_id)
    if spec is not None:
        _write_atomic(folder / SCORING_FILE, json.dumps(spec, allow_nan=False, indent=1))
    return folder
