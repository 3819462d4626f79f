"""The model VFR's live path runs: a model of the live horizon on its top-k inputs.

Why a model of its own: VFR's live ensemble reads each input of the model it runs from
`ml_feature_store` (one row per symbol, input and session) whenever our Redis vector is
missing, so every input costs the daily publish 5,000 rows. The live horizon's champion reads
~115 inputs, which made those rows half of a publish; a model on k inputs writes k / 115 of them.

No look-ahead: the k inputs are the top k by |mean daily Rank IC| with the training target on
the TRAINING rows of the first walk-forward fold only (purged and embargoed before its
validation window, so before every validation and test row of every fold, `splits.py`). The
live model is then trained and evaluated like any candidate (`pipeline.train_horizon`: the
same folds, purge, embargo, tuning on the pre-test period, canaries) on those inputs, with
LIVE_ALGORITHMS: LightGBM and the ridge (and so their two ensembles), every one of which VFR's
live path can run as LightGBM trees (`lib/serving/live_trees.py`: the ridge as linear leaves).
The challenger is the candidate with the best validation Rank IC, as for every horizon
(`HorizonResult.selected`).

Why these settings (README "What VFR reads", `benchmarks/study_live_topk.py`; default
history 2023-2026, seeds 7-9, validation figures only): the first design (LightGBM alone on
the top 12 by a LightGBM's gain) missed the gate on the default run (validation t 0.78; in
the study -0.63 for LightGBM and 0.30 for the ridge on the same inputs: gain picks
volatility and size inputs, which split the rows well but rank the returns badly). Chosen by |Rank IC|, the inputs are the planted signals' (short-term
reversal, value, tone), and the selected candidate's validation t is 2.01 / 3.80 / 3.00 at
k = 12 and 2.20 / 3.86 / 3.10 at k = 14 on the 50-symbol market with 10 trials, where k = 14 was
the smallest k whose t stayed >= 2.2 on every seed (a margin over the gate's 2; a live model
that misses the gate costs the fallback's full export, `lib/serving/live_path.py`). On the
100-symbol default market without tuning every k measured (6, 8, 10, 14) clears t >= 3.6 on
every seed, so k is chosen there by the selected candidate's validation Rank IC, averaged
over seeds 7-9: 0.0671 / 0.0709 / 0.0747 / 0.0726, hence k = 10 (fewer rows than 14, too).

It is a model line of its own (`challenger.ModelLine`): registered as `vfr-live-{horizon}`
(candidates `vfr-live-{candidate}-{horizon}`), so `ml_models` has its own row; gated by the
same promotion gate (`promotion_gate.run_promotion_gate`: canaries, significance, the paired
comparison with the live model already promoted), promoted and rolled back by the same code
(`champions.promote_challenger`, `champions.rollback`). Its champion is what VFR's live
ensemble runs (`lib/serving/live_path.py`; else the horizon's champion) and is published
under its own id (`served_models.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sqlalchemy import Engine

from vfr_ml_pipelines.lib.models import champions
from vfr_ml_pipelines.lib.models.algorithms import default_params
from vfr_ml_pipelines.lib.models.challenger import ChallengerTraining, ModelLine, train_challenger
from vfr_ml_pipelines.lib.models.metrics import daily_ic
from vfr_ml_pipelines.lib.models.pipeline import TARGET, HorizonResult, HorizonTrainingConfig, prepare, train_horizon
from vfr_ml_pipelines.lib.models.promotion import PromotionPolicy
from vfr_ml_pipelines.lib.models.promotion_gate import GateVerdict, run_promotion_gate
from vfr_ml_pipelines.lib.models.registry import ModelRegistry
from vfr_ml_pipelines.lib.models.splits import fold_frames, walk_forward_folds

# VFR's default horizon (`MLPredictionHorizon.ONE_WEEK` in RealTimePredictionEngine): the
# only horizon with a live model, since VFR's live ensemble is horizon-blind
LIVE_HORIZON = "1w"
# The default k (module docstring: the best validation Rank IC on the default market, every k
# measured far over the gate). The live path's rows are k / 117 of what the champion's inputs
# cost (README "What VFR reads" has the measured share of the publish).
LIVE_TOP_K = 10
# the algorithm of the `gain` selection, and the candidates the live line trains on its inputs
LIVE_ALGORITHM = "lightgbm"
LIVE_ALGORITHMS = ("lightgbm", "linear")
# boosting rounds of the selection model: without a validation set (the selection must not
# see one) it cannot early-stop; at the default learning rate 200 rounds rank inputs stably
SELECTION_ROUNDS = 200


def selection_rows(dataset: pd.DataFrame, config: HorizonTrainingConfig) -> pd.DataFrame:
    """The rows the input selection may see: the training window of the first test fold,
    with the training target."""
    frame = prepare(dataset, config.target)
    first = walk_forward_folds(frame, config.walk_forward)[0]
    return fold_frames(frame, first, config.walk_forward)[0]


def _top_k(dataset: pd.DataFrame, feature_names: Sequence[str], config: HorizonTrainingConfig, k: int,
           strength: Callable[[pd.DataFrame, list[str], HorizonTrainingConfig], np.ndarray]) -> list[str]:
    """The k inputs of largest `strength` on `selection_rows` (ties: the earlier input), in
    `feature_names` order."""
    names = list(feature_names)
    if not 0 < k <= len(names):
        raise ValueError(f"k must be in 1..{len(names)}, got {k}")
    scores = strength(selection_rows(dataset, config), names, config)
    chosen = set(np.lexsort((np.arange(len(names)), -scores))[:k].tolist())
    return [name for i, name in enumerate(names) if i in chosen]


def _gain(train: pd.DataFrame, names: list[str], config: HorizonTrainingConfig) -> np.ndarray:
    params = {key: value for key, value in default_params(LIVE_ALGORITHM).items() if key not in ("num_boost_round", "early_stopping_rounds")}
    params.update(seed=config.seed, num_threads=2)
    data = lgb.Dataset(train[names].to_numpy(dtype=np.float64, na_value=np.nan), label=train[TARGET].to_numpy(),
                       feature_name=names, free_raw_data=True)
    return lgb.train(params, data, num_boost_round=SELECTION_ROUNDS).feature_importance(importance_type="gain")


def _abs_rank_ic(train: pd.DataFrame, names: list[str], config: HorizonTrainingConfig) -> np.ndarray:
    return np.array([abs(np.nan_to_num(daily_ic(train, name, TARGET)["rank_ic"].mean())) for name in names])


def top_k_by_gain(dataset: pd.DataFrame, feature_names: Sequence[str], config: HorizonTrainingConfig, k: int) -> list[str]:
    """The k inputs with the largest total split gain of a LightGBM fitted on
    `selection_rows` (ties: the earlier input), in `feature_names` order."""
    return _top_k(dataset, feature_names, config, k, _gain)


def top_k_by_rank_ic(dataset: pd.DataFrame, feature_names: Sequence[str], config: HorizonTrainingConfig, k: int) -> list[str]:
    """The k inputs with the largest |mean daily Rank IC| with the training target on
    `selection_rows` (ties: the earlier input), in `feature_names` order."""
    return _top_k(dataset, feature_names, config, k, _abs_rank_ic)


# how the k inputs are chosen (both on `selection_rows` only); `gain` was the first design's
SELECTIONS = {"gain": top_k_by_gain, "rank_ic": top_k_by_rank_ic}
LIVE_SELECTION = "rank_ic"


def live_training_config(config: HorizonTrainingConfig, algorithms: Sequence[str] = LIVE_ALGORITHMS) -> HorizonTrainingConfig:
    """The horizon's training settings with the live line's candidates (`algorithms`)."""
    return replace(config, algorithms=tuple(algorithms))


def train_live_model(
    dataset: pd.DataFrame, feature_names: Sequence[str], config: HorizonTrainingConfig, k: int = LIVE_TOP_K,
    *, oracle: pd.DataFrame | None = None, algorithms: Sequence[str] = LIVE_ALGORITHMS, selection: str = LIVE_SELECTION,
) -> tuple[list[str], HorizonResult]:
    """(the k inputs, the walk-forward result of `algorithms` (and their ensembles) on them)."""
    inputs = SELECTIONS[selection](dataset, feature_names, config, k)
    keep = [c for c in dataset.columns if c not in set(feature_names) or c in inputs]
    return inputs, train_horizon(dataset[keep], inputs, live_training_config(config, algorithms), oracle=oracle)


def live_model_name(horizon: str) -> str:
    """The registered model VFR's live path runs (`vfr-live-1w`); its `ml_models` rows too."""
    return f"vfr-live-{horizon}"


def live_candidate_name(candidate: str, horizon: str) -> str:
    return f"vfr-live-{candidate}-{horizon}"


def live_line(k: int = LIVE_TOP_K) -> ModelLine:
    def train(dataset: pd.DataFrame, names: Sequence[str], config: HorizonTrainingConfig, oracle) -> HorizonResult:
        return train_live_model(dataset, names, config, k, oracle=oracle)[1]

    return ModelLine(live_model_name, live_candidate_name, train, writes_walk_forward=False,
                     settings={"live_top_k": k, "live_algorithms": list(LIVE_ALGORITHMS), "live_selection": LIVE_SELECTION})


@dataclass(frozen=True)
class LiveModelUpdate:
    training: ChallengerTraining
    verdict: GateVerdict
    change: champions.ChampionChange

    @property
    def inputs(self) -> list[str]:
        return list(self.training.result.feature_names) if self.training.result is not None else []


def update_live_model(
    engine: Engine, offline_store: Any, registry: ModelRegistry, config: HorizonTrainingConfig, settings: Mapping[str, Any],
    policy: PromotionPolicy, *, k: int = LIVE_TOP_K, run_id: str | None = None,
) -> LiveModelUpdate:
    """Train (or reuse) the live model's challenger, run the promotion gate on it, and
    promote it when it passed; when it failed the live champion, if any, stays. A leakage
    canary stops before anything is registered (`challenger.LeakageDetected`)."""
    horizon = config.horizon
    training = train_challenger(engine, offline_store, registry, config, settings, run_id=run_id, line=live_line(k))
    verdict = run_promotion_gate(registry, horizon, policy, name=live_model_name(horizon))
    with engine.begin() as conn:
        change = champions.promote_challenger(registry, conn, horizon, run_id=run_id, name=live_model_name(horizon))
    return LiveModelUpdate(training, verdict, change)


def roll_back_live_model(
    engine: Engine, registry: ModelRegistry, horizon: str = LIVE_HORIZON, *, to_version: str | None = None,
    reason: str = champions.ROLLBACK_REASON, run_id: str | None = None,
) -> champions.ChampionChange:
    """Re-point the live model's champion to `to_version` or its previous champion
    (`champions.rollback`); the next `vfr_live_model` deploys it."""
    with engine.begin() as conn:
        return champions.rollback(registry, conn, horizon, to_version=to_version, reason=reason, run_id=run_id,
                                  name=live_model_name(horizon))
