"""Model plots: valid, deterministic PNGs of the expected size; orderings; clear errors."""

from __future__ import annotations

import io
from datetime import date, timedelta

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from vfr_ml_pipelines.lib.figures import DPI
from vfr_ml_pipelines.lib.models import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == PNG_MAGIC
    return mpimg.imread(io.BytesIO(png), format="png")


def _expected_pixels(width_inches: float, height_inches: float) -> tuple[int, int]:
    return round(height_inches * DPI), round(width_inches * DPI)


@pytest.fixture(scope="module")
def shap_inputs() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(7000, 6))
    X[::50, 2] = np.nan  # missing values are drawn grey, not dropped or crashing
    strengths = np.array([0.5, 2.0, 0.1, 1.0, 0.0, 0.3])
    contributions = np.nan_to_num(X) * strengths
    return contributions, X, ["f0", "f1", "f2", "f3", "f4", "f5"]


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(150)]
    return pd.DataFrame(
        {
            "trade_date": days,
            "ic": rng.normal(0.02, 0.1, len(days)),
            "rank_ic": rng.normal(0.03, 0.1, len(days)),
            "segment": ["val"] * 50 + ["test"] * 100,
        }
    )


# ----------------------------------------------------------------------------- importance


def test_importance_order_is_by_importance_then_name_and_capped():
    importance = {"c": 0.2, "a": 0.5, "b": 0.2, "d": 0.1}
    assert plots.importance_order(importance) == ["a", "b", "c", "d"]
    assert plots.importance_order(importance, top=2) == ["a", "b"]


def test_feature_importance_png_is_valid_sized_and_deterministic():
    importance = {f"feature_{i}": float(i) for i in range(40)}
    png = plots.feature_importance_png(importance, top=25, title="importance")
    image = _decode(png)
    assert image.shape[:2] == _expected_pixels(plots.WIDTH_INCHES, plots._rows_height(25))
    assert png == plots.feature_importance_png(dict(reversed(importance.items())), top=25, title="importance")
    # fewer rows -> a shorter picture
    small = _decode(plots.feature_importance_png(importance, top=3, title="importance"))
    assert small.shape[0] < image.shape[0]


def test_feature_importance_png_draws_something():
    image = _decode(plots.feature_importance_png({"a": 1.0, "b": 0.5}, title="t"))
    # not a blank canvas: the bars' colour covers a visible share of the pixels
    bar_blue = np.all(np.abs(image[..., :3] - np.array([0x4C, 0x72, 0xB0]) / 255) < 0.02, axis=-1)
    assert bar_blue.mean() > 0.05


@pytest.mark.parametrize(
    ("importance", "top", "match"),
    [
        ({}, 25, "empty"),
        ({"a": float("nan")}, 25, "finite"),
        ({"a": -1.0}, 25, "finite and >= 0"),
        ({"a": 1.0}, 0, "top must be a positive integer"),
    ],
)
def test_feature_importance_bad_input(importance, top, match):
    with pytest.raises(ValueError, match=match):
        plots.feature_importance_png(importance, top=top, title="t")


# ----------------------------------------------------------------------------- SHAP summary


def test_shap_feature_order_is_by_mean_absolute_contribution():
    contributions = np.array([[0.1, -3.0, 1.0], [-0.1, 3.0, -1.0], [0.1, 0.0, 1.0]])
    # mean |c|: a 0.1, b 2.0, c 1.0
    assert plots.shap_feature_order(contributions, ["a", "b", "c"]) == ["b", "c", "a"]
    assert plots.shap_feature_order(contributions, ["a", "b", "c"], top=1) == ["b"]


def test_shap_summary_png_valid_sized_and_deterministic_for_a_seed(shap_inputs):
    contributions, X, names = shap_inputs
    png = plots.shap_summary_png(contributions, X, names, top=4, title="shap", max_points=2000, seed=1)
    image = _decode(png)
    assert image.shape[:2] == _expected_pixels(plots.WIDTH_INCHES, plots._rows_height(4))
    assert png == plots.shap_summary_png(contributions, X, names, top=4, title="shap", max_points=2000, seed=1)
    # another sample of the points gives another picture
    assert png != plots.shap_summary_png(contributions, X, names, top=4, title="shap", max_points=2000, seed=2)


def test_shap_summary_colours_low_values_blue_and_high_values_red():
    # one feature whose contribution grows with its value: the left end of the swarm
    # (low values) must be blue, the right end (high values) red
    x = np.linspace(-1.0, 1.0, 400)[:, None]
    image = _decode(plots.shap_summary_png(x * 5.0, x, ["only"], title="t", seed=0))[..., :3]
    red = (image[..., 0] > 0.6) & (image[..., 2] < 0.4)
    blue = (image[..., 2] > 0.6) & (image[..., 0] < 0.4)
    red_columns = np.nonzero(red.any(axis=0))[0]
    blue_columns = np.nonzero(blue.any(axis=0))[0]
    assert len(red_columns) and len(blue_columns)
    # the colour bar on the right is red at the top and blue at the bottom; compare the
    # swarm's own pixels, left of the colour bar
    swarm_red = red_columns[red_columns < image.shape[1] * 0.8]
    swarm_blue = blue_columns[blue_columns < image.shape[1] * 0.8]
    assert np.median(swarm_blue) < np.median(swarm_red)


@pytest.mark.parametrize(
    ("contributions", "X", "names", "match"),
    [
        (np.zeros((0, 2)), np.zeros((0, 2)), ["a", "b"], "no rows"),
        (np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"], "X has shape"),
        (np.zeros((3, 2)), np.zeros((3, 2)), ["a"], "1 feature names for 2"),
        (np.full((3, 2), np.nan), np.zeros((3, 2)), ["a", "b"], "not finite"),
        (np.zeros(3), np.zeros(3), ["a"], "2-D"),
    ],
)
def test_shap_summary_bad_input(contributions, X, names, match):
    with pytest.raises(ValueError, match=match):
        plots.shap_summary_png(contributions, X, names, title="t")


# ----------------------------------------------------------------------------- IC over time


def test_ic_over_time_png_valid_sized_and_deterministic(daily):
    png = plots.ic_over_time_png(daily, title="rank ic", window=10)
    image = _decode(png)
    assert image.shape[:2] == _expected_pixels(plots.WIDTH_INCHES * 1.3, plots.IC_HEIGHT_INCHES)
    assert png == plots.ic_over_time_png(daily.sample(frac=1.0, random_state=0), title="rank ic", window=10)
    # without segments there is no shading: another picture
    assert png != plots.ic_over_time_png(daily.drop(columns="segment"), title="rank ic", window=10)


def test_ic_over_time_shades_the_segments(daily):
    image = _decode(plots.ic_over_time_png(daily, title="t"))[..., :3]
    for colour in (plots.SEGMENT_COLOURS["val"], plots.SEGMENT_COLOURS["test"]):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
        # the shading is drawn at alpha 0.35 over white
        shaded = 1.0 - 0.35 * (1.0 - rgb)
        assert (np.abs(image - shaded).max(axis=-1) < 0.02).mean() > 0.02


def test_a_date_in_several_segments_is_shown_once_as_test(daily):
    # walk-forward: the next fold's validation window overlaps this fold's test period
    overlap = daily[daily["segment"] == "test"].iloc[:20].assign(segment="val", rank_ic=0.9)
    with_overlap = pd.concat([daily, overlap], ignore_index=True)
    assert plots.ic_over_time_png(with_overlap, title="t") == plots.ic_over_time_png(daily, title="t")
    frame = plots._check_daily(with_overlap, 20)
    assert len(frame) == len(daily)
    assert (frame["rank_ic"] != 0.9).all()


def test_segment_runs():
    assert plots._segment_runs(pd.Series(["val", "val", "test", "val"])) == [("val", 0, 1), ("test", 2, 2), ("val", 3, 3)]


@pytest.mark.parametrize(
    ("frame", "window", "match"),
    [
        (pd.DataFrame({"trade_date": [], "rank_ic": []}), 20, "no date with a finite rank_ic"),
        (pd.DataFrame({"trade_date": [date(2024, 1, 2)], "rank_ic": [float("nan")]}), 20, "no date with a finite rank_ic"),
        (pd.DataFrame({"trade_date": [date(2024, 1, 2)]}), 20, r"no column\(s\) \['rank_ic'\]"),
        (pd.DataFrame({"trade_date": [date(2024, 1, 2)] * 2, "rank_ic": [0.1, 0.2]}), 20, "duplicated"),
        (pd.DataFrame({"trade_date": [date(2024, 1, 2)], "rank_ic": [0.1]}), 0, "window"),
    ],
)
def test_ic_over_time_bad_input(frame, window, match):
    with pytest.raises(ValueError, match=match):
        plots.ic_over_time_png(frame, title="t", window=window)


def test_plots_leave_no_open_figures(daily, shap_inputs):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    contributions, X, names = shap_inputs
    for _ in range(3):
        plots.feature_importance_png({"a": 1.0}, title="t")
        plots.shap_summary_png(contributions, X, names, title="t", max_points=200)
        plots.ic_over_time_png(daily, title="t")
    assert plt.get_fignums() == before
