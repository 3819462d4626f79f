"""How a horizon's training is recorded in MLflow: one run per candidate (nested under a run
per horizon), each registered as `vfr-{candidate}-{horizon}`, the winner copied into the
horizon's serving model `vfr-{horizon}`, and the champion's paired comparison with it."""

import hashlib
import io
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS
from vfr_ml_pipelines.lib.models import plots
from vfr_ml_pipelines.lib.models.comparison import COMPARISON_TAG, PairedComparison, compare_with_champion
from vfr_ml_pipelines.lib.models.pipeline import CHALLENGER_SCORE, Candidate, HorizonResult, challenger_validation_rows
from vfr_ml_pipelines.lib.models.promotion import FALSE, NOT_APPLICABLE, TRUE
from vfr_ml_pipelines.lib.models.registry import (
    CHAMPION, ModelRegistry, RegisteredVersion, RegistryUnavailable, registered_model_name, serving_model_name,
)
from vfr_ml_pipelines.lib.models.validation_record import VALIDATION_RECORD_TAG, validation_record

REPORTED = ("ic", "icir", "rank_ic", "rank_icir", "direction_accuracy", "precision", "recall", "f1", "auc", "brier", "ece")


def fingerprint(dataset: pd.DataFrame, names: list[str], settings: dict[str, Any]) -> str:
    """A hash of everything that determines a training: rows, features, labels, settings."""
    digest = hashlib.sha256()
    columns = ["symbol", "trade_date", *names, "forward_return", "known_date"]
    digest.update(pd.util.hash_pandas_object(dataset[columns], index=False).to_numpy().tobytes())
    digest.update(json.dumps({"features": names, **settings}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _flag(result: Any) -> str:
    if result is None:
        return NOT_APPLICABLE
    return TRUE if result.passed else FALSE


def _artifacts(candidate: Candidate, result: HorizonResult, sample: pd.DataFrame) -> dict[str, bytes]:
    model = candidate.model
    X = sample[model.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    title = f"{candidate.name} {result.horizon}"
    buffer = io.BytesIO()
    candidate.predictions.to_parquet(buffer, index=False)
    return {
        "plots/feature_importance.png": plots.feature_importance_png(model.estimator.feature_importance(), title=f"{title}: importance"),
        "plots/shap_summary.png": plots.shap_summary_png(model.estimator.contributions(X), X, model.feature_names, title=f"{title}: SHAP summary"),
        "plots/ic_over_time.png": plots.ic_over_time_png(candidate.daily, title=f"{title}: daily Rank IC"),
        "folds.json": json.dumps([f.as_dict() for f in [*result.folds, result.final]], indent=1).encode(),
        "tuning.json": json.dumps(
            {"note": result.tuning_notes.get("all", "")} if candidate.tuning is None
            else {"best_params": candidate.tuning.best_params, "best_value": candidate.tuning.best_value,
                  "stopped_by": candidate.tuning.stopped_by, "trials": candidate.tuning.trials},
            default=str, indent=1,
        ).encode(),
        "canaries.json": json.dumps(
            {"shuffled_labels": result.shuffled_canary.__dict__,
             "oracle_ceiling": None if candidate.oracle_canary is None else candidate.oracle_canary.__dict__},
            default=str, indent=1,
        ).encode(),
        "oos_predictions.parquet": buffer.getvalue(),
    }


def significance(metrics: dict[str, float], horizon: str) -> float:
    """t-statistic of the mean daily Rank IC, with days whose labels overlap counted once
    (n_days / horizon_days independent observations)."""
    n_eff = metrics.get("n_days", 0.0) / HORIZON_DAYS[horizon]
    icir = metrics.get("rank_icir", math.nan)
    return float(icir * math.sqrt(n_eff)) if n_eff > 0 and math.isfinite(icir) else math.nan


def candidate_tags(candidate: Candidate, result: HorizonResult, base: dict[str, str]) -> dict[str, str]:
    oracle = candidate.oracle_canary
    return {
        **base,
        "candidate": candidate.name,
        "algorithm": candidate.algorithm,
        "validation_rank_ic": repr(candidate.validation["rank_ic"]),
        "validation_rank_ic_t": repr(significance(candidate.validation, result.horizon)),
        "test_rank_ic": repr(candidate.test["rank_ic"]),
        "canary_shuffled_passed": _flag(result.shuffled_canary),
        "canary_shuffled_message": result.shuffled_canary.message,
        "canary_oracle_passed": _flag(oracle),
        "canary_oracle_message": oracle.message if oracle is not None else "no oracle for this market data provider",
    }


def log_candidates(
    registry: ModelRegistry, result: HorizonResult, dataset: pd.DataFrame, base_tags: dict[str, str],
    *, registered_name: Callable[[str, str], str] = registered_model_name,
) -> dict[str, RegisteredVersion]:
    """Every candidate as a registered version of `registered_name(candidate, horizon)`
    (default `vfr-{candidate}-{horizon}`)."""
    experiment = f"vfr-ml-{result.horizon}"
    parent = registry.start_parent_run(experiment, f"training {result.horizon} {result.data_end}", base_tags)
    sample = dataset.tail(2000)
    versions = {}
    try:
        for candidate in result.candidates.values():
            metrics = {
                **{f"validation_{k}": candidate.validation.get(k, math.nan) for k in (*REPORTED, "n_days")},
                **{f"test_{k}": v for k, v in candidate.test.items()},
                "shuffled_canary_rank_ic": result.shuffled_canary.statistic,
            }
            params = {
                **candidate.params,
                "horizon": result.horizon,
                "walk_forward": result.config.walk_forward.__dict__,
                "calibration": {k: v for k, v in candidate.model.calibration.as_dict().items() if k != "probability_quantiles"},
            }
            versions[candidate.name] = registry.log_serving_model(
                candidate.model,
                experiment=experiment,
                registered_name=registered_name(candidate.name, result.horizon),
                run_name=f"{candidate.name} {result.horizon}",
                tags=candidate_tags(candidate, result, base_tags),
                params=params,
                metrics=metrics,
                artifacts=_artifacts(candidate, result, sample),
                input_example=sample,
                parent_run_id=parent,
            )
    except BaseException:
        try:
            registry.finish_run(parent, {}, status="FAILED")
        except RegistryUnavailable:
            pass  # the store is down: the error that stopped registration is the one to report
        raise
    registry.finish_run(parent, {"seconds": result.seconds, "rows": float(result.rows)})
    return versions


def register_challenger(
    registry: ModelRegistry, result: HorizonResult, versions: dict[str, RegisteredVersion], fingerprint_: str,
    *, serving_name: str | None = None,
) -> RegisteredVersion:
    """Copy the selected candidate into `serving_name` (default `vfr-{horizon}`; a new
    version), with the record of its validation predictions that serving health compares
    served days with."""
    chosen = result.selected()
    return registry.copy_version(
        versions[chosen.name],
        serving_name or serving_model_name(result.horizon),
        {
            "fingerprint": fingerprint_,
            "candidate_versions": json.dumps({n: v.model_id for n, v in versions.items()}),
            "selected_by": "best validation Rank IC among all candidates",
            VALIDATION_RECORD_TAG: validation_record(chosen.predictions).to_tag(),
        },
    )


def metrics_table(result: HorizonResult) -> str:
    """Markdown: model x test metrics, with the oracle row (the README reports it)."""
    columns = ["val_rank_ic", "ic", "icir", "rank_ic", "rank_icir", "direction_accuracy", "auc", "brier", "model_oracle_ratio"]
    table = result.table()
    header = "| model | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for row in table.to_dict("records"):
        cells = []
        for col in columns:
            value = row.get(col)
            cells.append("" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_with_current_champion(
    registry: ModelRegistry, result: HorizonResult, dataset: pd.DataFrame, challenger: RegisteredVersion,
    *, serving_name: str | None = None,
) -> PairedComparison | None:
    """Score the horizon's champion on the challenger's final validation window (the
    sessions it never saw; an ensemble challenger cross-fitted there, since its weights were
    fitted on that window: `challenger_validation_rows`) and record the paired comparison as the challenger's
    `champion_comparison` tag, which the promotion gate reads. None without a champion
    (or when the challenger is the champion). `serving_name`: default `vfr-{horizon}`."""
    name = serving_name or serving_model_name(result.horizon)
    champion = registry.by_alias(name, CHAMPION)
    if champion is None or champion.version == challenger.version:
        return None
    champion_model = registry.load_serving_model(name, champion.version).model
    comparison = compare_with_champion(
        challenger_validation_rows(dataset, result), CHALLENGER_SCORE, champion_model,
        champion_id=champion.model_id, champion_tags=champion.tags, horizon_days=HORIZON_DAYS[result.horizon],
    )
    registry.set_version_tags(name, challenger.version, {COMPARISON_TAG: comparison.to_json()})
    return comparison
