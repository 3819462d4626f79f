"""One horizon's training end to end, without Dagster: determinism, the leakage canaries on
a deliberately leaked feature, tuning kept off the test period, and the serving model's
round trip."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.features.labels import compute_labels
from vfr_ml_pipelines.lib.features.technical import FEATURE_NAMES, compute_technical_features
from vfr_ml_pipelines.lib.market_data.synthetic import SyntheticMarketConfig, generate_oracle, generate_prices
from vfr_ml_pipelines.lib.models.dataset import join_features_labels
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig, prepare, train_horizon, tuning_folds
from vfr_ml_pipelines.lib.models.serving_model import ServingModel
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig, walk_forward_folds

NAMES = list(FEATURE_NAMES)
CONFIG = HorizonTrainingConfig(
    horizon="1w", algorithms=("lightgbm", "xgboost", "linear"), tuning_trials=2, tuning_timeout_seconds=None,
    canary_seeds=(11, 12), walk_forward=WalkForwardConfig(n_folds=2, val_days=30),
)


@pytest.fixture(scope="module")
def market():
    config = SyntheticMarketConfig(as_of=date(2025, 6, 27), start=date(2023, 6, 1), n_symbols=30)
    prices = generate_prices(config)
    dataset = join_features_labels(compute_technical_features(prices), compute_labels(prices, "1w"), NAMES)
    oracle = generate_oracle(config)
    return dataset, oracle[oracle["horizon"] == "1w"][["trade_date", "symbol", "expected_return"]]


@pytest.fixture(scope="module")
def trained(market):
    dataset, oracle = market
    return train_horizon(dataset, NAMES, CONFIG, oracle=oracle)


def test_every_candidate_is_evaluated_out_of_sample_with_the_full_metric_set(trained):
    assert set(trained.candidates) == {"lightgbm", "xgboost", "linear", "ensemble-rankic", "ensemble-stacking"}
    for candidate in trained.candidates.values():
        test = candidate.predictions[candidate.predictions["segment"] == "test"]
        assert test["trade_date"].min() == min(f.test_start for f in trained.folds)
        for key in ("ic", "icir", "rank_ic", "rank_icir", "direction_accuracy", "precision", "recall", "f1", "auc",
                    "brier", "ece", "oracle_rank_ic", "model_oracle_ratio"):
            assert key in candidate.test, (candidate.name, key)
        assert candidate.oracle_canary.passed, candidate.oracle_canary.message
        assert candidate.test["rank_ic"] < candidate.test["oracle_rank_ic"]
    # the planted signal is there to be found, and the oracle bounds it
    assert trained.selected().test["rank_ic"] > 0.02
    assert trained.shuffled_canary.passed, trained.shuffled_canary.message
    # every candidate, the ridge baseline included, is eligible: the choice is the best validation Rank IC
    best = max(trained.candidates.values(), key=lambda c: c.validation["rank_ic"])
    assert trained.selected().name == best.name
    # the ridge model is an ensemble member
    assert "linear" in trained.candidates["ensemble-stacking"].model.estimator.members
    assert trained.seen_until >= trained.final.val_end and not trained.tuning_stopped_by_time()
    assert "oracle" in set(trained.table()["model"])


def test_training_is_deterministic_for_a_seed(market, trained):
    dataset, oracle = market
    again = train_horizon(dataset, NAMES, CONFIG, oracle=oracle)
    for name, candidate in trained.candidates.items():
        pd.testing.assert_frame_equal(candidate.predictions, again.candidates[name].predictions)
        # (NaN-aware: a metric undefined in both runs, e.g. precision with no predicted up, is equal)
        pd.testing.assert_series_equal(pd.Series(candidate.test), pd.Series(again.candidates[name].test))
    assert trained.shuffled_canary.statistic == again.shuffled_canary.statistic


def test_a_leaked_label_is_caught_by_the_oracle_canary(market):
    dataset, oracle = market
    leaky = dataset.assign(tomorrow=dataset["forward_return"])
    config = HorizonTrainingConfig(
        horizon="1w", algorithms=("lightgbm",), tuning_trials=0, canary_seeds=(11,), walk_forward=CONFIG.walk_forward
    )
    result = train_horizon(leaky, [*NAMES, "tomorrow"], config, oracle=oracle)
    leaks = result.leaked()
    assert [c.name for c in leaks] == ["oracle_ceiling"]
    assert "above the oracle" in leaks[0].message
    assert result.candidates["lightgbm"].test["rank_ic"] > 0.9


def test_tuning_only_sees_labels_known_before_the_first_test_day(market):
    frame = prepare(market[0])
    folds = walk_forward_folds(frame, CONFIG.walk_forward)
    first_test = folds[0].test_start
    for fold in tuning_folds(frame, NAMES, first_test, CONFIG.walk_forward):
        assert fold.val_frame["trade_date"].max() < first_test
        assert len(fold.X_train) and len(fold.X_val) == len(fold.val_frame)
    known = frame.set_index(["trade_date", "symbol"])["known_date"]
    tuned_rows = pd.concat([f.val_frame for f in tuning_folds(frame, NAMES, first_test, CONFIG.walk_forward)])
    assert (known.loc[list(zip(tuned_rows["trade_date"], tuned_rows["symbol"]))] < first_test).all()


def test_the_serving_model_round_trips_and_maps_scores_to_vfr_fields(trained, market):
    model = trained.selected().model
    restored = ServingModel.from_bytes(model.to_bytes())
    rows = market[0].tail(200)
    a, b = model.predict_frame(rows), restored.predict_frame(rows)
    pd.testing.assert_frame_equal(a, b)
    assert a["probability"].between(0, 1).all()
    # both VFR fields rise with the score: the mappings are monotone
    order = np.argsort(a["score"].to_numpy())
    assert (np.diff(a["expected_return"].to_numpy()[order]) >= 0).all()
    assert (np.diff(a["probability"].to_numpy()[order]) >= -1e-12).all()
    with pytest.raises(ValueError, match="lacks feature"):
        model.predict_frame(rows.drop(columns=[NAMES[0]]))


def _labelled_sessions(n_sessions: int, horizon_days: int, n_symbols: int = 3) -> pd.DataFrame:
    """Rows on consecutive business days whose label is known `horizon_days` sessions later."""
    days = pd.bdate_range("2022-01-03", periods=n_sessions + horizon_days).date
    return pd.DataFrame({
        "symbol": np.tile([f"S{i}" for i in range(n_symbols)], n_sessions),
        "trade_date": np.repeat(days[:n_sessions], n_symbols),
        "known_date": np.repeat(days[horizon_days:], n_symbols),
    })


@pytest.mark.parametrize("horizon", ["1d", "1w", "1m"])
def test_default_validation_window_holds_several_independent_labels(horizon):
    # The validation window feeds early stopping, the ensemble weights, the challenger choice and
    # the promotion gate, whose t counts overlapping labels once (n_days / horizon_days). With the
    # old 40 sessions for every horizon the purge left 24 sessions of 1m rows per fold: ONE
    # independent monthly label, so a 1m model was early-stopped, chosen and gated on noise.
    from vfr_ml_pipelines.lib.horizons import HORIZON_DAYS

    h = HORIZON_DAYS[horizon]
    wf = HorizonTrainingConfig(horizon=horizon).walk_forward
    n_symbols = 3
    folds = walk_forward_folds(_labelled_sessions(1000, h, n_symbols), wf)
    for fold in folds:
        sessions = fold.val_rows / n_symbols  # after the purge and embargo
        assert sessions / h >= 3, (horizon, fold.as_dict())
    assert sum(f.val_rows for f in folds) / n_symbols / h >= 10  # the gate's n_eff, pooled


def test_horizon_defaults_apply_unless_a_walk_forward_is_given():
    from vfr_ml_pipelines.defs.models.assets import ModelTrainingConfig
    from vfr_ml_pipelines.lib.models.pipeline import VAL_DAYS

    assert VAL_DAYS["1w"] > VAL_DAYS["1d"] and VAL_DAYS["1m"] > VAL_DAYS["1d"]
    for horizon, val_days in VAL_DAYS.items():
        assert HorizonTrainingConfig(horizon=horizon).walk_forward == WalkForwardConfig(val_days=val_days)
        assert ModelTrainingConfig().to_core(horizon).walk_forward.val_days == val_days
        assert ModelTrainingConfig(val_days=25).to_core(horizon).walk_forward.val_days == 25
    assert CONFIG.walk_forward.val_days == 30
    with pytest.raises(ValueError, match="unknown horizon"):
        HorizonTrainingConfig(horizon="2w")


def test_the_tuning_time_safety_net_is_reported_when_it_trips(market):
    """The default run is bounded by trials; the time bound is a safety net, and when it
    stops a search first the result says so (the Dagster metadata shows these notes)."""
    dataset, _ = market
    config = HorizonTrainingConfig(
        horizon="1w", algorithms=("linear",), tuning_trials=500, tuning_timeout_seconds=0.01,
        canary_seeds=(11,), walk_forward=CONFIG.walk_forward,
    )
    result = train_horizon(dataset, NAMES, config)
    notes = result.tuning_stopped_by_time()
    assert list(notes) == ["linear"]
    assert "safety net" in notes["linear"] and "of 500 trials" in notes["linear"]
    assert result.candidates["linear"].tuning.stopped_by == "timeout"
    # bounded by trials (the default), nothing is reported
    assert HorizonTrainingConfig(horizon="1w").tuning_timeout_seconds >= 600
