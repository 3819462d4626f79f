"""What VFR's live ensemble adds to a daily publish at 5,000 symbols: the model's inputs (those a split reads) as
`ml_feature_store` rows (`live_path.live_input_rows` + COPY) next to the raw-feature export the
publish already does (`feature_export.feature_store_rows` + COPY, the reference), and the
model files (`live_model.write_live_model`) of an ensemble of a LightGBM and an XGBoost model.

    [DATABASE_URL=postgresql://...] .venv/bin/python benchmarks/bench_live_export.py [--symbols 5000] [--inputs 117]

PostgreSQL is a scratch database (benchmarks/_servers.py). Prints seconds of each and the
ratio live / raw export.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import scratch_database  # noqa: E402

from vfr_ml_pipelines.lib import settings  # noqa: E402
from vfr_ml_pipelines.lib.features import catalog  # noqa: E402
from vfr_ml_pipelines.lib.models import algorithms  # noqa: E402
from vfr_ml_pipelines.lib.models.calibration import ReturnCalibration  # noqa: E402
from vfr_ml_pipelines.lib.models.ensemble import fit_stacking_ensemble  # noqa: E402
from vfr_ml_pipelines.lib.models.serving_model import ServingModel  # noqa: E402
from vfr_ml_pipelines.lib.serving import feature_export, live_model, live_path  # noqa: E402
from vfr_ml_pipelines.lib.warehouse import apply_migrations, create_warehouse_engine  # noqa: E402

DAY = date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--inputs", type=int, default=117)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    raw = list(catalog.RAW_NAMES)
    inputs = raw + [f"matrix_extra_{i:02d}" for i in range(args.inputs - len(raw))]
    values = rng.normal(size=(args.symbols, len(inputs)))
    values[rng.random(values.shape) < 0.05] = np.nan
    vectors = pd.DataFrame(values, columns=inputs)
    vectors.insert(0, "symbol", [f"S{i:05d}" for i in range(args.symbols)])
    vectors["quality_score"], vectors["completeness"] = 0.9, 0.95

    # the model files: a stacked LightGBM + XGBoost ensemble as the pipeline trains them
    X = rng.normal(size=(40_000, len(inputs)))
    y = X[:, 0] * 0.1 + rng.normal(size=len(X))
    members = {a: algorithms.fit_regressor(a, X[:30_000], y[:30_000], X[30_000:], y[30_000:], feature_names=inputs,
                                           params={"early_stopping_rounds": 1000, "num_boost_round": 300})
               for a in ("lightgbm", "xgboost")}
    model = ServingModel("1w", "ensemble-stacking", fit_stacking_ensemble(members, X[30_000:], y[30_000:] + X[30_000:, 1]),
                         ReturnCalibration(slope=0.02, intercept=0.001, residual_std=0.03, raw_slope=0.02, ic_t=3.0,
                                           shrinkage=8 / 9, drift=0.001, n_days=90))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = live_model.write_live_model(Path(tmp), "vfr-1w", "1", model, [live_path.live_feature_name(n) for n in inputs])
        files_seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in folder.iterdir())
    used = live_model.used_features(model)
    print(f"model files: {files_seconds:.2f} s, {size / 1e6:.1f} MB "
          f"({sum(len(live_model.estimator_trees(m)[0]) for m in members.values())} trees, {len(used)} of {len(inputs)} inputs read by a split)")

    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        apply_migrations(engine, settings.sql_dir())
        with engine.begin() as conn:
            started = time.perf_counter()
            ids = feature_export.upsert_feature_definitions(conn, catalog.RAW_SPECS, catalog.FEATURE_SET_OF, provider="bench")
            rows, _ = feature_export.feature_store_rows(vectors, ids, DAY, "bench", catalog.RANGES)
            raw_written = feature_export.write_feature_store(conn, rows, DAY, list(vectors["symbol"]), ids)
            raw_seconds = time.perf_counter() - started
        with engine.begin() as conn:
            started = time.perf_counter()
            live_ids = live_path.upsert_live_feature_definitions(conn, used, "bench", catalog.MATRIX_VERSION)
            live_rows = live_path.live_input_rows(vectors, live_ids, DAY, "bench")
            live_written = feature_export.write_feature_store(conn, live_rows, DAY, list(vectors["symbol"]), live_ids)
            live_seconds = time.perf_counter() - started
        engine.dispose()
    print(f"raw-feature export (reference): {raw_written} rows in {raw_seconds:.2f} s")
    print(f"live-model inputs: {live_written} rows in {live_seconds:.2f} s = {live_seconds / raw_seconds:.2f}x the raw export")


if __name__ == "__main__":
    main()
