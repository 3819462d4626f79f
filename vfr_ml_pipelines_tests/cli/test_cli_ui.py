"""`vfr-ml ui` (what `make ui` runs) on a zero-configuration state, as a newcomer starts it:
the console carries none of Dagster's notices a user cannot act on (the repository's
production dagster.yaml "will not be used", `dg dev`, beta / preview), and the webserver's
GraphQL API shows what a user looks for: the asset groups with their assets' descriptions,
the jobs, the schedules (stopped until turned on), and a run of `vfr-ml run` on its job's page
(in-process runs are listed there by the tags `vfr-ml run` gives them)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import dagster as dg
import psutil
from dagster import DagsterRun, DagsterRunStatus

from vfr_ml_pipelines.cli import _ensure_dagster_home
from vfr_ml_pipelines.defs.pipeline.runs import range_tags, ui_listing_tags

REPO = Path(__file__).resolve().parents[2]
START_BOUND_SECONDS = 600  # a loaded 2-core machine loads the code location slowly
STOP_BOUND_SECONDS = 120  # a bound on "stops at all", not a speed: it stops in seconds when idle


def _group_members(pgid: int) -> list[str]:
    """What still runs in the process group `pgid` (the UI's session), after a short grace."""
    deadline = time.monotonic() + 15
    while True:
        members = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if _pgid(p.pid) == pgid]
        if not members or time.monotonic() > deadline:
            return [" ".join(c or [])[:120] for c in members]
        time.sleep(1)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


REPOSITORY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  name location { name }
  assetGroups { groupName }
  assetNodes { assetKey { path } groupName description }
  jobs { name }
  schedules { name scheduleState { status } }
} } } }"""

JOB_RUNS = """{ pipelineOrError(params: {pipelineName: "full_pipeline_job", repositoryName: "__repository__",
  repositoryLocationName: "vfr_ml_pipelines"}) { ... on Pipeline { runs { runId status } } } }"""


def test_the_ui_starts_quietly_and_shows_the_graph_the_jobs_and_a_cli_run(tmp_path, monkeypatch):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VFR_ML_HOME")}
    env.update({"VFR_ML_HOME": str(state), "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(state / "dagster")})
    # a run as `vfr-ml run` records it, in the instance the UI will read (the worker's own
    # DAGSTER_HOME, e.g. make test's, is back afterwards)
    with monkeypatch.context() as patch:
        patch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        _ensure_dagster_home()
        with dg.DagsterInstance.get() as instance:
            run_id = str(uuid.uuid4())
            instance.add_run(DagsterRun(
                job_name="full_pipeline_job", run_id=run_id, status=DagsterRunStatus.SUCCESS,
                tags={**range_tags("2026-11-02", "2026-11-20"), **ui_listing_tags()},
            ))

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfr_ml_pipelines.cli", "ui", "--port", str(port)], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_BOUND_SECONDS
        repository = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                nodes = _graphql(port, REPOSITORY)["repositoriesOrError"].get("nodes") or []
                if nodes:
                    repository = nodes[0]
                    break
            except OSError:
                pass
            time.sleep(2)
        runs = _graphql(port, JOB_RUNS)["pipelineOrError"]["runs"] if repository is not None else None
    finally:
        # as a service manager or `kill` stops it: SIGTERM to vfr-ml alone, which must stop
        # dagster dev's webserver, daemon and code server too (plain `dagster dev` ignores it)
        proc.send_signal(signal.SIGTERM)
        try:
            console, _ = proc.communicate(timeout=STOP_BOUND_SECONDS)
            stopped_by_sigterm = True
        except subprocess.TimeoutExpired:
            stopped_by_sigterm = False
            os.killpg(proc.pid, signal.SIGKILL)
            console, _ = proc.communicate()
        left_behind = _group_members(proc.pid)
        if left_behind:
            os.killpg(proc.pid, signal.SIGKILL)

    assert stopped_by_sigterm, f"vfr-ml ui ignored SIGTERM for {STOP_BOUND_SECONDS} s:\n{console[-2000:]}"
    assert left_behind == [], f"processes left running after vfr-ml ui stopped: {left_behind}"

    assert repository is not None, f"the code location never loaded (exit {proc.returncode}):\n{console[-3000:]}"
    assert repository["location"]["name"] == "vfr_ml_pipelines"
    assert {g["groupName"] for g in repository["assetGroups"]} >= {"market_data", "features", "models", "serving"}
    undescribed = [n["assetKey"]["path"] for n in repository["assetNodes"] if not (n["description"] or "").strip()]
    assert undescribed == []
    assert {"full_pipeline_job", "daily_pipeline_job", "retraining_job"} <= {j["name"] for j in repository["jobs"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    assert schedules == {"daily_pipeline_schedule": "STOPPED", "weekly_retraining_schedule": "STOPPED"}
    assert [r["runId"] for r in runs] == [run_id]
    for noise in ("will not be used", "dg dev", "currently in beta", "currently in preview"):
        assert noise not in console, console[-3000:]
