"""The backtests group in the shared end-to-end pipeline (the `pipeline` fixture: every asset
materialized once on the synthetic market): its materialization metadata, the MLflow artifacts
and tag it leaves on the challengers, and the walk-forward predictions training stored."""

from __future__ import annotations

import math

import mlflow
from sqlalchemy import text

from vfr_ml_pipelines.lib.backtests.report import BENCHMARK, ORACLE
from vfr_ml_pipelines.lib.models.champions import BACKTEST_IR_TAG
from vfr_ml_pipelines.lib.models.pipeline import ENSEMBLES

HORIZONS = ("1d", "1w", "1m")
CANDIDATES = {"lightgbm", "xgboost", "linear", *ENSEMBLES}


def _metadata(pipeline, node: str) -> dict:
    (mat,) = pipeline["result"].asset_materializations_for_node(node)
    return {key: value.value for key, value in mat.metadata.items()}


def test_each_horizon_backtest_tables_model_oracle_and_benchmark_without_a_leak(pipeline):
    client = mlflow.MlflowClient(pipeline["tracking_uri"], registry_uri=pipeline["tracking_uri"])
    for h in HORIZONS:
        meta = _metadata(pipeline, f"backtest_{h}")
        table = meta["table"]
        rows = {line.split("|")[1].strip() for line in table.splitlines()[2:]}
        assert {ORACLE, BENCHMARK, meta["challenger_candidate"]} <= rows and CANDIDATES <= rows, (h, rows)
        assert math.isfinite(meta["challenger_share_of_oracle"]) and math.isfinite(meta["challenger_information_ratio"]), (h, table)
        assert meta["leak_suspected"] and not any(meta["leak_suspected"].values()), (h, meta["leak_suspected"])
        assert meta["plots"].count("](data:image/png;base64,") == 4
        # the book is a sixth of the universe (Qlib's share, at most 50), and the metadata says so
        topk, n_drop, _ = meta["topk_n_drop_rebalance"].split(" / ")
        assert meta["book_rule"].startswith(f"top {topk} drop {n_drop} of ") and "round(0.1667 x " in meta["book_rule"], meta["book_rule"]
        listed = {a.path for a in client.list_artifacts(meta["mlflow_run_id"], f"backtest/{h}")}
        assert {f"backtest/{h}/{name}" for name in ("table.csv", "table.json", "equity_drawdown.png", "ic_decay.png")} <= listed
        challenger = client.get_model_version_by_alias(f"vfr-{h}", "challenger")
        assert challenger.run_id == meta["mlflow_run_id"]
        assert float(challenger.tags[BACKTEST_IR_TAG]) == meta["challenger_information_ratio"]
        champion = _metadata(pipeline, f"champion_{h}_model")
        assert champion["challenger_backtest_information_ratio"] == meta["challenger_information_ratio"]
        assert isinstance(champion["challenger_validation_rank_ic"], float)


def test_training_stored_every_candidates_walk_forward_predictions(pipeline):
    with pipeline["engine"].connect() as conn:
        stored = conn.execute(text(
            "SELECT horizon, candidate, segment, count(*), count(DISTINCT mlflow_run_id) FROM vfr_ml.walk_forward_predictions "
            "GROUP BY horizon, candidate, segment"
        )).all()
    by_key = {(h, c, s): (n, runs) for h, c, s, n, runs in stored}
    for h in HORIZONS:
        for candidate in CANDIDATES:
            assert by_key[(h, candidate, "test")][0] > 0 and by_key[(h, candidate, "val")][0] > 0, (h, candidate)
            assert by_key[(h, candidate, "test")][1] == 1


def test_risk_report_and_live_track_record_report_every_horizon(pipeline):
    risk = _metadata(pipeline, "risk_report")
    for h in HORIZONS:
        assert f"| {h} challenger |" in risk["table"] and f"| {h} {BENCHMARK} |" in risk["table"]
    assert risk["var_exceptions"].count("data:image/png;base64,") == 2 * len(HORIZONS)
    # the constrained optimizer against the equal-weight top-k book, every horizon at its rebalancing
    for h in HORIZONS:
        for strategy in ("equal_weight_topk", "min_variance", "max_sharpe"):
            assert f"| {h} {strategy} |" in risk["optimizer_vs_topk"], (h, strategy)
        assert risk[f"optimizer_seconds_{h}"] > 0
    client = mlflow.MlflowClient(pipeline["tracking_uri"], registry_uri=pipeline["tracking_uri"])
    for h in HORIZONS:
        run_id = client.get_model_version_by_alias(f"vfr-{h}", "challenger").run_id
        assert {f"risk/{h}/table.csv", f"risk/{h}/optimizer.csv"} <= {a.path for a in client.list_artifacts(run_id, f"risk/{h}")}
    live = _metadata(pipeline, "live_track_record")
    for h in HORIZONS:
        # one pipeline run serves one session: the served book waits for more days
        assert live[f"{h}_days_with_outcomes"] >= 0 and live[f"{h}_days_missing"] > 0, h
        assert live[f"{h}_status"].startswith("not enough days yet"), live[f"{h}_status"]
