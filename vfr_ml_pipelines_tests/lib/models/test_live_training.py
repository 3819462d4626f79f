"""The live model's inputs: the top k by |mean daily Rank IC| (or by the gain of a LightGBM)
on the first fold's training rows only, so no validation or test label can choose them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.models.live_training import SELECTIONS, selection_rows, top_k_by_gain, top_k_by_rank_ic
from vfr_ml_pipelines.lib.models.pipeline import HorizonTrainingConfig
from vfr_ml_pipelines.lib.models.splits import WalkForwardConfig

NAMES = [f"f{i:02d}" for i in range(12)]
CONFIG = HorizonTrainingConfig(horizon="1w", algorithms=("lightgbm",), tuning_trials=0,
                               walk_forward=WalkForwardConfig(n_folds=2, val_days=30, min_train_days=60))


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    """Labels driven by f03 and f07 (f03 the stronger), the other inputs noise."""
    rng = np.random.default_rng(4)
    days = pd.bdate_range("2024-01-01", periods=320).date
    frame = pd.DataFrame([(d, f"S{s:02d}") for d in days for s in range(60)], columns=["trade_date", "symbol"])
    for name in NAMES:
        frame[name] = rng.normal(size=len(frame))
    frame["forward_return"] = 0.02 * frame["f03"] + 0.01 * frame["f07"] + 0.02 * rng.normal(size=len(frame))
    frame["excess_return"] = frame["forward_return"]
    frame["known_date"] = (pd.to_datetime(frame["trade_date"]) + pd.Timedelta(days=7)).dt.date
    return frame


def _relabelled(dataset: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
    """`dataset` whose labels on `rows` follow f11 alone, strongly."""
    out = dataset.copy()
    out.loc[rows, "forward_return"] = 0.05 * out.loc[rows, "f11"]
    return out


def _keys(frame: pd.DataFrame) -> pd.Series:
    return frame["trade_date"].astype(str) + "/" + frame["symbol"]


def test_the_planted_inputs_are_chosen_in_the_models_order(dataset):
    assert top_k_by_gain(dataset, NAMES, CONFIG, 2) == ["f03", "f07"]
    assert top_k_by_gain(dataset, NAMES, CONFIG, 1) == ["f03"]
    with pytest.raises(ValueError, match="k must be"):
        top_k_by_gain(dataset, NAMES, CONFIG, 0)


def test_the_planted_inputs_are_chosen_by_rank_ic_too(dataset):
    assert top_k_by_rank_ic(dataset, NAMES, CONFIG, 2) == ["f03", "f07"]
    assert top_k_by_rank_ic(dataset, NAMES, CONFIG, 1) == ["f03"]
    # a negative relation counts as much as a positive one (the model may use either sign)
    flipped = dataset.assign(f03=-dataset["f03"])
    assert top_k_by_rank_ic(flipped, NAMES, CONFIG, 1) == ["f03"]
    with pytest.raises(ValueError, match="k must be"):
        top_k_by_rank_ic(dataset, NAMES, CONFIG, 13)


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
def test_validation_and_test_labels_do_not_change_the_choice(dataset, selection):
    choose = SELECTIONS[selection]
    seen = set(_keys(selection_rows(dataset, CONFIG)))
    later = ~_keys(dataset).isin(seen)
    # the selection rows end before the first validation window: most rows are later ones
    assert 0.3 < later.mean() < 0.9
    changed = _relabelled(dataset, later)
    assert choose(changed, NAMES, CONFIG, 2) == ["f03", "f07"]
    # the same change on every row moves the choice: the test above could have failed
    assert "f11" in choose(_relabelled(dataset, pd.Series(True, index=dataset.index)), NAMES, CONFIG, 2)
