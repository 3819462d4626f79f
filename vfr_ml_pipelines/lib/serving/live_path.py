"""VFR's live ensemble: which of our models it runs, the inputs it reads, and its off switch.

VFR's `RealTimePredictionEngine.predictEnsemble` runs EVERY `ml_models` row with status
`deployed`, whatever its horizon, for every request: it reads the symbol's features with
its `FeatureStore` (our Redis vector while it is there, else the latest `valid` row per
feature of `ml_feature_store`) and runs `models/{model_name}/v{model_version}/model.txt`
through its `predict-generic.py` (`live_model.py`). So `deployed` means here exactly "VFR's
live path runs it", and at most one row of ours has it (`choose_live_model`):

1. the champion of the live model (`vfr-live-1w`: LightGBM / the ridge of LIVE_HORIZON on its
   top-k inputs, trained for this path: `lib/models/live_training.py`), when it passed its gate:
   k inputs to export per symbol;
2. else (the fallback) the champion of LIVE_HORIZON itself, with every input it reads exported
   (~117: the publish costs about half again as much), so that a live model that fails its gate
   never empties VFR's live path where the horizon's champion could serve it;
3. else nothing of ours.

The deployed model's files and inputs are exported first. The other champions (served through
the prediction cache) are `validated`, challengers `shadow`. Rows of models this project did
not write are never touched.

The model's inputs are exported under their own names (LIVE_FEATURE_PREFIX + the matrix
column), a missing value as `live_values.MISSING_VALUE`: that sentinel is meaningful only to
the exported model, so it never goes under a raw feature's name that VFR's own code may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS
from vfr_ml_pipelines.lib.features.spec import FeatureSpec
from vfr_ml_pipelines.lib.models.champions import CHAMPION_STATUS, mirror_status
from vfr_ml_pipelines.lib.models.live_training import LIVE_HORIZON, live_model_name
from vfr_ml_pipelines.lib.models.registry import CHAMPION, ModelRegistry, RegisteredVersion, serving_model_name
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.serving.feature_export import upsert_feature_definitions
from vfr_ml_pipelines.lib.serving.live_model import used_features, write_live_model
from vfr_ml_pipelines.lib.serving.live_trees import not_expressed
from vfr_ml_pipelines.lib.serving.live_values import MISSING_VALUE, LiveExportError, live_input_matrix, live_inputs
from vfr_ml_pipelines.lib.serving.payloads import row_quality
from vfr_ml_pipelines.lib.serving.vfr_store import features as features_store
from vfr_ml_pipelines.lib.serving.vfr_store import models as models_store
from vfr_ml_pipelines.lib.serving.vfr_tables import fit_decimal, prediction_timestamp

LIVE_FEATURE_PREFIX = "vfr_live_"
# the status of a champion VFR's live path does not run (it still serves the prediction cache)
NOT_LIVE_STATUS = CHAMPION_STATUS


def live_feature_name(name: str) -> str:
    return f"{LIVE_FEATURE_PREFIX}{name}"


def our_model_names() -> list[str]:
    """The `ml_models` names this project may deploy (one serving model per horizon, and the
    live model; earlier versions deployed the 1w champion itself)."""
    return [*(serving_model_name(h) for h in HORIZON_DAYS), live_model_name(LIVE_HORIZON)]


def upsert_live_feature_definitions(conn: Connection, feature_names: Sequence[str], provider: str, matrix_version: str) -> dict[str, Any]:
    """One `ml_feature_definitions` row per model input (`vfr_live_{name}`); returns the
    input name (as the model knows it) -> feature_id."""
    specs = [
        FeatureSpec(
            name=live_feature_name(name), feature_type="custom", source=matrix_version,
            description=(
                f"input {name} of this project's LightGBM model on VFR's live path, as the model saw it "
                f"({matrix_version}); {MISSING_VALUE:g} means missing and is meaningful only to that model"
            ),
        )
        for name in feature_names
    ]
    versions = {spec.name: matrix_version for spec in specs}
    ids = upsert_feature_definitions(conn, specs, versions, provider=provider)
    return {name: ids[live_feature_name(name)] for name in feature_names}


def write_live_inputs(conn: Connection, vectors: pd.DataFrame, feature_ids: dict[str, Any], day: date, provider: str) -> int:
    """The `ml_feature_store` rows of the model inputs of `day`: every input of every symbol,
    `valid` (missing as MISSING_VALUE), at the column's 8 decimals, with the row's one quality
    (payloads.row_quality, as on the raw feature rows: VFR's FeatureStore averages
    data_quality_score over all of a ticker's rows, these included). Replaces the day's rows
    of these inputs for these symbols, in the caller's transaction. Returns the rows written.

    Set-based: one row per (symbol, input) is what VFR's query reads, but building and sending
    each as a CSV line (a uuid, a timestamp, a provider per row) cost more than PostgreSQL's
    insert itself; the values go as one compact (symbol, input number, value) COPY and the
    server joins the constant columns in."""
    names = list(feature_ids)
    symbols = [str(s).upper() for s in vectors["symbol"]]
    ids = [feature_ids[name] for name in names]
    features_store.delete_feature_rows(conn, prediction_timestamp(day), symbols, ids)
    if not names or not symbols:
        return 0
    X = vectors.reindex(columns=names).to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.round(live_input_matrix(X, symbols, names, str(day)), 8)
    # the quality part of row_quality depends on the row's quality_score only
    scores = vectors["quality_score"] if "quality_score" in vectors.columns else [None] * len(symbols)
    quality = [
        float(fit_decimal(row_quality(symbol, {}, [], score).quality_score, 5, 4, f"{symbol} quality"))
        for symbol, score in zip(symbols, scores, strict=True)
    ]
    n, k = values.shape
    stage = pd.DataFrame({
        "ticker": np.repeat(np.array(symbols, dtype=object), k),
        "input": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
        "value": values.ravel(),
        "quality": np.repeat(np.array(quality), k),
    })
    return features_store.insert_input_matrix(conn, stage, prediction_timestamp(day), provider, ids)


def redis_live_inputs(rec: dict[str, Any], feature_names: Sequence[str], where: str) -> dict[str, float]:
    """The inputs for a Redis `MLFeatureVector` under their exported names."""
    return {live_feature_name(n): v for n, v in live_inputs(rec, list(feature_names), where).items()}


def deploy_live_model(conn: Connection, version: RegisteredVersion, horizon: str) -> dict[str, list[str]]:
    """Make `version` the one row of ours VFR's live path runs: it becomes `deployed`, any
    other row of ours that was `deployed` becomes NOT_LIVE_STATUS (or `deprecated` when it is
    an earlier version of the same model), and the kill switch's open records are closed.
    Call it only once the model's files and inputs are exported."""
    mirror_status(conn, version, horizon, "deployed")  # earlier deployed versions of the same name -> deprecated
    demoted = _demote(conn, keep=(version.name, version.version))
    restored = _model_ids(models_store.close_switch_records(conn))
    return {"deployed": [version.model_id], "demoted": demoted, "restored": restored}


def undeploy_all(conn: Connection) -> list[str]:
    """No row of ours is `deployed` (no live model can be exported): each becomes NOT_LIVE_STATUS."""
    return _demote(conn, keep=None)


def _model_ids(models: list[tuple[str, str]]) -> list[str]:
    return sorted(f"{name}.v{version}" for name, version in models)


def _demote(conn: Connection, keep: tuple[str, str] | None) -> list[str]:
    return _model_ids(models_store.demote_deployed(conn, our_model_names(), NOT_LIVE_STATUS, keep))


def disable_live_path(conn: Connection) -> list[str]:
    """The kill switch's SQL half: every `deployed` row of ours becomes NOT_LIVE_STATUS (VFR's
    live ensemble stops running it on its next request) and is recorded in
    `vfr_ml.live_path_switch` so the next publish restores it. Returns the model ids."""
    switched = models_store.demote_deployed(conn, our_model_names(), NOT_LIVE_STATUS)
    models_store.record_switched_off(conn, switched)
    return _model_ids(switched)


def with_live_inputs(vector: dict[str, Any], rec: dict[str, Any], feature_names: Sequence[str], where: str) -> dict[str, Any]:
    """An `MLFeatureVector` plus the model inputs under their exported names (VFR's
    FeatureStore returns this vector while it is in Redis, so the inputs must be in it);
    `completeness` still describes the raw features."""
    return attach_live_inputs(vector, redis_live_inputs(rec, feature_names, where))


def session_live_inputs(vectors: pd.DataFrame, feature_names: Sequence[str], day: date) -> list[dict[str, float]]:
    """`redis_live_inputs` of every row of `vectors` (a symbol column and the inputs), in row
    order, computed for the whole session at once (`live_input_matrix`): the same values and
    the same error for a value that cannot be sent, without a Python loop per value (per
    symbol and input, that loop cost more than the raw vector itself)."""
    names = list(feature_names)
    symbols = [str(s) for s in vectors["symbol"]]
    X = vectors.reindex(columns=names).to_numpy(dtype=np.float64, na_value=np.nan)
    values = live_input_matrix(X, symbols, names, str(day)).tolist()
    exported = [live_feature_name(n) for n in names]
    return [dict(zip(exported, row, strict=True)) for row in values]


def attach_live_inputs(vector: dict[str, Any], inputs: dict[str, float]) -> dict[str, Any]:
    """`vector` with `inputs` (exported names -> values) added to its features and names."""
    return {**vector, "features": {**vector["features"], **inputs}, "featureNames": [*vector["featureNames"], *inputs]}


# which design runs on VFR's live path (`LiveChoice.design`)
TOP_K_DESIGN = "top-k live model"
FALLBACK_DESIGN = "fallback: the horizon champion"
NO_DESIGN = "none"


@dataclass(frozen=True)
class LiveChoice:
    version: RegisteredVersion | None  # None: nothing of ours on VFR's live path
    model: ServingModel | None
    inputs: list[str]  # the matrix columns some split reads: what vfr_feature_export exports
    design: str  # TOP_K_DESIGN | FALLBACK_DESIGN | NO_DESIGN
    why: str  # in words, for the assets' metadata and log


def choose_live_model(registry: ModelRegistry) -> LiveChoice:
    """The model VFR's live path runs (module docstring): the live model's champion, else the
    LIVE_HORIZON champion, the first of them that can be written as LightGBM trees. One
    source for `vfr_feature_export` (which inputs) and `vfr_live_model` (which files, which
    row `deployed`), so the two always agree."""
    live_name, horizon_name = live_model_name(LIVE_HORIZON), serving_model_name(LIVE_HORIZON)
    notes = []
    for name, design in ((live_name, TOP_K_DESIGN), (horizon_name, FALLBACK_DESIGN)):
        version = registry.by_alias(name, CHAMPION)
        if version is None:
            notes.append(f"{name} has no champion")
            continue
        model = registry.load_serving_model(version.name, version.version).model
        try:
            inputs = used_features(model)
        except LiveExportError as exc:
            notes.append(f"{version.model_id} cannot run on VFR's live path: {exc}")
            continue
        if design == TOP_K_DESIGN:
            why = f"{version.model_id}, the live model on its top {len(inputs)} inputs, passed its gate"
        else:
            why = (f"{'; '.join(notes)} (its gate failed or it was not trained): the {LIVE_HORIZON} champion "
                   f"{version.model_id} runs instead, with all its {len(inputs)} inputs exported")
        return LiveChoice(version, model, inputs, design, why)
    return LiveChoice(None, None, [], NO_DESIGN, "; ".join(notes) + ": nothing of ours runs on VFR's live path")


@dataclass(frozen=True)
class LiveDeployment:
    changed: dict[str, list[str]]  # deployed, demoted, restored (model ids)
    folder: Path | None  # where the model's files are; None when nothing of ours is deployed
    reason_none: str  # why nothing of ours is deployed ("" when a model is)
    not_expressed: str  # what VFR's live path computes differently ("" when exact)
    design: str = NO_DESIGN  # which design runs (`LiveChoice.design`)
    why: str = ""  # why that one (`LiveChoice.why`)


def deploy_live_champion(engine: Engine, registry: ModelRegistry, models_dir: Path) -> LiveDeployment:
    """`choose_live_model`'s model as files in `models_dir` (written atomically), then its
    `ml_models` row `deployed` and every other row of ours out of `deployed`. Without one, or
    when its files cannot be written, no row of ours is deployed."""
    choice = choose_live_model(registry)
    reason = "" if choice.version is not None else choice.why
    folder = None
    inexact = ""
    if choice.version is not None:
        version, model = choice.version, choice.model
        try:
            inputs = [live_feature_name(n) for n in model.feature_names]
            folder = write_live_model(models_dir, version.name, version.version, model, inputs, run_id=version.run_id)
            inexact = not_expressed(model.estimator)
        except LiveExportError as exc:
            reason = f"{version.model_id} cannot run on VFR's live path: {exc}"
    with engine.begin() as conn:
        if folder is None:
            changed = {"deployed": [], "demoted": undeploy_all(conn), "restored": []}
        else:
            changed = deploy_live_model(conn, choice.version, LIVE_HORIZON)
    return LiveDeployment(changed, folder, reason, inexact, choice.design if folder is not None else NO_DESIGN, choice.why)
