"""`vfr-ml run` as a user runs it, in a real subprocess: a blocking failure ends the run
with a summary of what failed and why, and SIGTERM / Ctrl-C stop it within seconds and
leave no embedded server behind. The bounds are behaviour (a hung run never meets them)
and generous for a loaded 2-core machine."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from vfr_ml_pipelines.lib import embedded
from vfr_ml_pipelines.lib.market_data import calendar

REPO = Path(__file__).resolve().parents[2]
STOP_BOUND_SECONDS = 30  # after the signal
STARTUP_BOUND_SECONDS = 600  # until the embedded PostgreSQL is up
FAILED_RUN_BOUND_SECONDS = 1200  # a short history's market-data steps, then the failed check


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "VFR_ML_HOME")}
    env.update({"VFR_ML_HOME": str(tmp_path / "state"), "PYTHONPATH": str(REPO), **extra})
    return env


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vfr_ml_pipelines.cli", "run"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_blocking_failure_ends_the_run_with_what_failed_and_why(tmp_path, make_database, redis_url):
    # 20 symbols over 30 sessions; 3 stop trading after 10 sessions, but universe.csv keeps
    # them listed: coverage falls to 85 % (blocking)
    root = tmp_path / "export"
    (root / "prices").mkdir(parents=True)
    sessions = calendar.trading_days(date(2026, 10, 8), date(2026, 11, 20))[-30:]
    lines = ["symbol,name,sector,listed_on,delisted_on"]
    for k in range(20):
        symbol = f"S{k:02d}"
        days = sessions[:10] if k < 3 else sessions
        bars = [f"{d},{50 + k + i * 0.1:.2f},{51 + k + i * 0.1:.2f},{49 + k + i * 0.1:.2f},{50 + k + i * 0.1:.2f},"
                f"{50 + k + i * 0.1:.2f},100000" for i, d in enumerate(days)]
        (root / "prices" / f"{symbol}.csv").write_text("\n".join(["Date,Open,High,Low,Close,Adj Close,Volume", *bars]) + "\n")
        lines.append(f"{symbol},{symbol},Tech,{sessions[0]},")
    (root / "universe.csv").write_text("\n".join(lines) + "\n")
    prefix = f"vfrtest-cli-{secrets.token_hex(3)}:veritak:mcp:"
    env = _env(
        tmp_path, DATABASE_URL=make_database("cli_failed"), REDIS_URL=redis_url, VFR_REDIS_KEY_PREFIX=prefix,
        VFR_MARKET_DATA_PROVIDER="csv", VFR_CSV_DIR=str(root), VFR_AS_OF="2026-11-20", VFR_HISTORY_START=str(sessions[0]),
    )
    proc = _start(env)
    try:
        out, err = proc.communicate(timeout=FAILED_RUN_BOUND_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (out[-2000:], err[-4000:])
    summary = err[err.index("full_pipeline_job FAILED"):]
    assert "check raw_prices/raw_prices_cover_the_universe failed" in summary
    assert "S00" in summary and "delisted_on" in summary  # which symbols, and what to do
    # the catch-up planned each asset once, not once per session (defs/pipeline/runs.py), and
    # still recorded every session's prices
    with dg.DagsterInstance.from_config(str(tmp_path / "state" / "dagster")) as instance:
        assert len(instance.fetch_planned_materializations(dg.AssetKey("raw_prices"), limit=100).records) == 1
        assert len(instance.get_materialized_partitions(dg.AssetKey("raw_prices"))) == 30


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_and_the_embedded_servers(tmp_path, signo):
    state = tmp_path / "state"
    env = _env(tmp_path, VFR_SYNTHETIC_SYMBOLS="8", VFR_HISTORY_START="2026-08-03", VFR_AS_OF="2026-11-20")
    proc = _start(env)
    try:
        deadline = time.monotonic() + STARTUP_BOUND_SECONDS
        while embedded.postgres_pid(state) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        assert embedded.postgres_pid(state) is not None, "the run never started its embedded PostgreSQL"
        time.sleep(3)  # well inside the run: resources are up, steps are running
        proc.send_signal(signo)
        out, err = proc.communicate(timeout=STOP_BOUND_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signo, err[-3000:]
    assert f"{signal.Signals(signo).name} received" in err
    assert embedded.postgres_pid(state) is None
    assert embedded.redis_pid(state) is None


def test_no_asset_output_may_be_skipped():
    """Dagster 1.13's in-process executor spins forever (one core busy, signals only
    flagged) when a skipped output and a blocking failure meet downstream: the steps to
    skip that the abandon pass uncovers are never processed. The graph must therefore have
    no optional output (the synthetic oracle was one, with every provider but synthetic)."""
    from vfr_ml_pipelines.definitions import ALL_ASSETS

    optional = [
        f"{asset.node_def.name}.{output.name}"
        for asset in ALL_ASSETS
        for output in asset.node_def.output_defs
        if not output.is_required
    ]
    assert optional == []
