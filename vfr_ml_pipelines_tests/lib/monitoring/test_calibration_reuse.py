"""The drift calibration is computed once per champion version and stored with it
(lib/monitoring/champion_drift.py): on a real MLflow registry backed by PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import make_url

from vfr_ml_pipelines.lib.features import catalog
from vfr_ml_pipelines.lib.features.offline_store import OfflineFeatureStore
from vfr_ml_pipelines.lib.market_data import calendar
from vfr_ml_pipelines.lib.models.registry import CHAMPION
from vfr_ml_pipelines.lib.monitoring.champion_drift import CALIBRATION_FOLDER, calibration_key, champions_drift
from vfr_ml_pipelines.lib.monitoring.drift import DriftConfig
from vfr_ml_pipelines_tests.defs.monitoring.champion import NAMES, champion_version, register_champion

DAYS = calendar.trading_days(pd.Timestamp("2025-01-02").date(), pd.Timestamp("2025-12-31").date())
TRAIN_END = DAYS[-41]
TAGS = {"data_start": str(DAYS[0]), "data_end": str(TRAIN_END)}


def _store(root: Path) -> OfflineFeatureStore:
    rng = np.random.default_rng(11)
    index = pd.MultiIndex.from_product([pd.to_datetime(DAYS), [f"S{i:02d}" for i in range(40)]], names=["trade_date", "symbol"])
    frame = pd.DataFrame(rng.normal(size=(len(index), len(NAMES))), columns=NAMES, index=index).reset_index()
    store = OfflineFeatureStore(root / "store")
    store.write(catalog.MATRIX_VERSION, frame[["symbol", "trade_date", *NAMES]], lineage={})
    return store


@pytest.fixture
def registry_on_postgres(make_database, tmp_path: Path):
    url = make_url(make_database("mlflow")).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return register_champion(tmp_path, TAGS, tracking_uri=url), _store(tmp_path)


def _stored(registry, version, config: DriftConfig = DriftConfig(calibration_window=20)) -> dict | None:
    path = f"{CALIBRATION_FOLDER}/{calibration_key(NAMES, DAYS[0], TRAIN_END, config)}.json"
    blob = registry.read_run_artifact(version.run_id, path)
    return json.loads(blob) if blob else None


def test_the_first_run_stores_the_calibration_the_second_reads_it_a_new_champion_recalibrates(registry_on_postgres) -> None:
    registry, store = registry_on_postgres
    assert registry.tracking_uri.startswith("postgresql")
    first_version = champion_version(registry)
    assert _stored(registry, first_version) is None

    [first] = champions_drift(registry, store)
    assert first.calibration == "computed"
    stored = _stored(registry, first_version)
    assert stored["features"] == NAMES and stored["breadth_threshold"] == first.report.breadth_threshold
    table = first.report.table().set_index("feature").loc[NAMES]
    np.testing.assert_allclose(stored["thresholds"], table[["psi_threshold", "ks_threshold", "wasserstein_threshold"]].to_numpy())

    # the second run reads the stored thresholds: doctored ones show up in its table
    doctored = {**stored, "thresholds": [[9.0, 0.9, 9.0]] * len(NAMES), "breadth_threshold": 0.99}
    key = calibration_key(NAMES, DAYS[0], TRAIN_END, DriftConfig(calibration_window=20))
    registry.log_run_artifacts(first_version.run_id, {f"{CALIBRATION_FOLDER}/{key}.json": json.dumps(doctored).encode()})
    [second] = champions_drift(registry, store)
    assert second.calibration == "reused" and second.report.breadth_threshold == 0.99
    assert (second.report.table()["psi_threshold"] == 9.0).all()

    # a config the calibration reads has another key: calibrated afresh (one it does not read keeps it)
    assert champions_drift(registry, store, DriftConfig(calibration_margin=1.2))[0].calibration == "computed"
    assert champions_drift(registry, store, DriftConfig(score_threshold=0.3))[0].calibration == "reused"

    # a new champion (another version, another run) is calibrated on its first run, then reused
    register_champion(Path(store.root).parent, TAGS, tracking_uri=registry.tracking_uri)
    new_version = champion_version(registry)
    assert new_version.version != first_version.version and new_version.run_id != first_version.run_id
    assert registry.by_alias(new_version.name, CHAMPION).version == new_version.version
    [third] = champions_drift(registry, store)
    assert third.calibration == "computed" and third.model_id != first.model_id
    assert _stored(registry, new_version)["thresholds"] == stored["thresholds"]  # same data, same thresholds
    assert champions_drift(registry, store)[0].calibration == "reused"


@pytest.mark.parametrize("blob", [b"{not json", b'{"features": ["x"]}', b"\xff\xfe", None])
def test_a_stored_calibration_that_is_unreadable_or_of_other_features_is_computed_again_and_replaced(registry_on_postgres, blob) -> None:
    registry, store = registry_on_postgres
    version = champion_version(registry)
    [first] = champions_drift(registry, store)
    honest = _stored(registry, version)
    key = calibration_key(NAMES, DAYS[0], TRAIN_END, DriftConfig(calibration_window=20))
    bad = blob if blob is not None else json.dumps({**honest, "features": list(reversed(NAMES))}).encode()
    registry.log_run_artifacts(version.run_id, {f"{CALIBRATION_FOLDER}/{key}.json": bad})

    [again] = champions_drift(registry, store)
    assert again.calibration.startswith("computed again:") and CALIBRATION_FOLDER in again.calibration
    assert again.report.breadth_threshold == first.report.breadth_threshold
    assert _stored(registry, version) == honest  # the bad file was replaced by the computed one
    assert champions_drift(registry, store)[0].calibration == "reused"
