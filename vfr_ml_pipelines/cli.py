"""`vfr-ml`: run the main job, read what VFR would read, manage the embedded servers.

    vfr-ml run                      materialize full_pipeline_job (recorded in DAGSTER_HOME)
    vfr-ml read-prediction AAPL     print the MLPrediction VFR reads for (AAPL, 1w, default)
    vfr-ml ui                       the Dagster UI on this instance (make ui)
    vfr-ml env                      print the environment for the Dagster / MLflow UIs
    vfr-ml stop                     stop embedded servers left by a crashed process
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import runpy
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import redis

from vfr_ml_pipelines.lib import embedded, settings
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader, served_pairs, served_symbols, validate_prediction


# The local instance of the zero-configuration default: Dagster's SQLite storage, no telemetry
# (it may run offline). A file carrying the first line is ours and rewritten when this
# changes; any other file is the user's and left alone.
LOCAL_INSTANCE_MARKER = "# written by vfr-ml: the zero-configuration local instance"
_OLD_LOCAL_INSTANCE = "telemetry:\n  enabled: false\n"  # what earlier versions wrote


# The core logs its progress (tuning trials, walk-forward folds) with Python's logging and
# never imports dagster; the instance hands those lines to the run's log, the console and the UI.
PYTHON_LOGS_YAML = "python_logs:\n  managed_python_loggers:\n    - vfr_ml_pipelines\n  python_log_level: INFO\n"


# `make ui` loads the code location in a code server, which Dagster gives 180 s to start: on a
# busy 2-core machine importing the definitions alone took 61 s and the server missed the
# deadline (measured 2026-12-07, load average 11), so the UI came up without the project.
CODE_SERVERS_YAML = "code_servers:\n  local_startup_timeout: 600\n"


def local_instance_yaml(home: str) -> str:
    return f"{LOCAL_INSTANCE_MARKER}\ntelemetry:\n  enabled: false\n{PYTHON_LOGS_YAML}{CODE_SERVERS_YAML}"


def _ensure_dagster_home() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(settings.state_dir() / "dagster")
        os.environ["DAGSTER_HOME"] = home
    os.makedirs(home, exist_ok=True)
    from vfr_ml_pipelines.defs.pipeline.runs import plan_ranges_per_asset

    plan_ranges_per_asset()  # `run` and `ui` both create range runs
    config = os.path.join(home, "dagster.yaml")
    current = open(config).read() if os.path.exists(config) else None
    if current is None or current == _OLD_LOCAL_INSTANCE or current.startswith(LOCAL_INSTANCE_MARKER):
        wanted = local_instance_yaml(home)
        if current != wanted:
            with open(config, "w") as handle:
                handle.write(wanted)
    return home


@contextmanager
def _redis_client() -> Iterator[redis.Redis]:
    url = settings.env_or_none(settings.REDIS_URL_ENV)
    state = None
    if not url:
        state = settings.state_dir()
        url = embedded.acquire_redis(state)
    client = redis.Redis.from_url(url)
    try:
        yield client
    finally:
        client.close()
        if state is not None:
            embedded.release_redis(state)


# After SIGTERM / Ctrl-C, the run's process gets this long to end on its own before it is
# killed. Dagster only flags a signal while it writes events or skips steps (it raises it
# inside step code alone), so the run is never trusted to stop by itself.
STOP_GRACE_SECONDS = 5.0


def _run_summary(result) -> list[str]:
    """What failed in a finished run and why: failed steps with their error, failed checks
    with their description (what to do), skipped steps counted."""
    lines = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            # Dagster wraps the step's exception ("Error occurred while executing op ..."):
            # the innermost cause is the sentence that says what went wrong
            while error is not None and error.cause is not None:
                error = error.cause
            message = (error.message or "").strip().splitlines()[0] if error else ""
            lines.append(f"  step {event.step_key} failed: {message}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.asset_check_evaluation_data
            if not check.passed:
                severity = check.severity.value if check.severity else "ERROR"
                why = check.description or "see its metadata in the Dagster UI"
                lines.append(f"  check {check.asset_key.to_user_string()}/{check.check_name} failed ({severity}): {why}")
    skipped = sum(1 for e in result.all_events if e.event_type_value == "STEP_SKIPPED")
    if skipped:
        lines.append(f"  {skipped} steps skipped after a blocking failure")
    return lines


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when `vfr-ml run` dies, even by SIGKILL, so a
    run never outlives the command that started it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent's own stop path still applies


def _execute_full_pipeline() -> None:
    """The run itself, in a child process of `vfr-ml run` (exit code 0 = success)."""
    _die_with_parent()
    home = _ensure_dagster_home()
    import uuid

    import dagster as dg

    from vfr_ml_pipelines import cli_report
    from vfr_ml_pipelines.definitions import defs
    from vfr_ml_pipelines.lib.horizons import HORIZONS
    from vfr_ml_pipelines.defs.resources import build_resources
    from vfr_ml_pipelines.defs.pipeline.runs import catch_up_range, range_tags, ui_listing_tags

    job = defs.resolve_job_def("full_pipeline_job")
    latest = build_resources()["market_data"].last_closed_session()
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:
        start, end = catch_up_range(instance, latest)
        print(f"full_pipeline_job over sessions {start} .. {end} (run {run_id})", flush=True)
        with cli_report.StepProgress(instance, run_id, lambda line: print(line, flush=True)):
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, tags={**range_tags(start, end), **ui_listing_tags()}, run_id=run_id,
                run_config=cli_report.QUIET_CONSOLE,
            )
    state = settings.state_dir()
    prefix = settings.env_or_none(settings.REDIS_KEY_PREFIX_ENV) or settings.DEFAULT_REDIS_KEY_PREFIX
    if not result.success:
        summary = "\n".join(_run_summary(result)) or "  (no failed step or check recorded)"
        print(f"\nfull_pipeline_job FAILED (run {result.run_id}):\n{summary}\nDetails: the run in the Dagster UI (make ui).",
              file=sys.stderr, flush=True)
        sys.exit(1)
    table = "\n".join(cli_report.summary_table(result, list(HORIZONS)))
    print(
        f"""
full_pipeline_job succeeded (run {result.run_id}).

{table}

Where to look:
  Dagster UI:   make ui          (DAGSTER_HOME={home}), then http://127.0.0.1:3000
  MLflow UI:    make mlflow-ui   (tracking URI {settings.env_or_none(settings.MLFLOW_TRACKING_URI_ENV) or settings.mlflow_default_uri(state)}), then http://127.0.0.1:5000
  A prediction: make read SYMBOL=<ticker>   (Redis key prefix {prefix!r}; tickers: make read lists them)
""",
        flush=True,
    )
    sys.exit(0)


def _stop_embedded_servers() -> None:
    """Stop the embedded servers a killed run left running (unless another live process
    still uses them): the same as `vfr-ml stop`."""
    cmd_stop(argparse.Namespace())


def _descendants(pid: int | None) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True) if pid else []
    except psutil.NoSuchProcess:
        return []


def _end_processes(processes: list[psutil.Process]) -> None:
    """SIGTERM what still runs of `processes`, SIGKILL what ignores it for 3 s."""
    alive = [p for p in processes if p.is_running()]
    for process in alive:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=3)
    for process in still:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def cmd_run(args: argparse.Namespace) -> int:
    """Runs the job in a child process and watches it: SIGTERM or Ctrl-C stop the child
    (killed after STOP_GRACE_SECONDS) and the embedded servers, within seconds at any point."""
    _ensure_dagster_home()
    received: list[int] = []

    def _on_signal(signo: int, _frame) -> None:
        received.append(signo)

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        child = multiprocessing.get_context("spawn").Process(target=_execute_full_pipeline, name="vfr-ml-run")
        child.start()
        while child.is_alive() and not received:
            child.join(0.2)
        if not received:
            return 1 if child.exitcode is None else int(child.exitcode)
        name = signal.Signals(received[0]).name
        print(f"\n{name} received: stopping the run (pid {child.pid}) and the embedded servers", file=sys.stderr, flush=True)
        # what the run started (Dagster's log tailers, an embedded redis-server) goes with it
        tree = _descendants(child.pid)
        if child.is_alive():
            child.terminate()
            child.join(STOP_GRACE_SECONDS)
        if child.is_alive():
            child.kill()
            child.join()
        _stop_embedded_servers()
        _end_processes(tree)
        return 128 + received[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# `read-prediction` exit codes: an answer (a prediction, a list, or "nothing is served for
# that horizon", which is a state VFR handles, not a failure) is 0; a ticker the served set
# does not hold is an error; a payload VFR would refuse is another.
EXIT_UNKNOWN_SYMBOL = 1
EXIT_INVALID_PAYLOAD = 2


def _nothing_served(client: redis.Redis, prefix: str, horizon: str, model_id: str) -> str:
    pairs = served_pairs(client, prefix)
    served = ", ".join(f"({h}, {m})" for h, m in pairs) or "nothing at all (run `make run`, or ML was switched off)"
    return (
        f"Nothing is served for ({horizon}, {model_id}): no model serves that horizon under that id "
        "(a horizon whose challenger did not pass the promotion gate has no `default` entry, only a shadow "
        f"under the challenger's own id; see `make run`'s table). VFR finds no ML prediction there and uses "
        f"its classic analysis for it.\nServed (horizon, model id): {served}"
    )


def cmd_read_prediction(args: argparse.Namespace) -> int:
    prefix = settings.env_or_none(settings.REDIS_KEY_PREFIX_ENV) or settings.DEFAULT_REDIS_KEY_PREFIX
    with _redis_client() as client:
        symbols = served_symbols(client, prefix, args.horizon, args.model_id)
        if not symbols:
            print(_nothing_served(client, prefix, args.horizon, args.model_id))
            return 0
        if not args.symbol:
            print(f"{len(symbols)} symbols served for ({args.horizon}, {args.model_id}): {' '.join(symbols)}")
            return 0
        reader = VfrCacheReader(client, prefix, delete_expired=False)
        payload = reader.prediction(args.symbol, args.horizon, args.model_id)
        if payload is None:
            print(
                f"error: no prediction for {args.symbol.upper()!r} at ({args.horizon}, {args.model_id}): it is not one of the "
                f"{len(symbols)} symbols served there ({' '.join(symbols[:10])}{' ...' if len(symbols) > 10 else ''}). "
                "`make read` lists them.",
                file=sys.stderr,
            )
            return EXIT_UNKNOWN_SYMBOL
        print(json.dumps(payload, indent=2))
        problems = validate_prediction(payload)
        if problems:
            print(f"error: the entry is not a valid MLPrediction (VFR would refuse it): {problems}", file=sys.stderr)
            return EXIT_INVALID_PAYLOAD
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_stop_signals() -> None:
    """`dagster dev` shuts its webserver and daemon down on KeyboardInterrupt only: SIGTERM
    (a service manager, `kill`) would leave it running, and a shell that starts a command in
    the background makes it ignore SIGINT. Both signals interrupt it here."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def cmd_ui(args: argparse.Namespace) -> int:
    """`dagster dev` on the local instance (or DAGSTER_HOME's), quietly: started from the
    instance's own folder, since from this repository it would warn that the production
    dagster.yaml here is not used; without the notice that suggests `dg dev` (this project
    is a plain code location, which `dagster dev` serves as it is)."""
    home = _ensure_dagster_home()
    workspace = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workspace.yaml")
    target = ["-w", workspace] if os.path.exists(workspace) else ["-m", "vfr_ml_pipelines.definitions"]
    os.chdir(home)
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*is superseded")
    _interrupt_on_stop_signals()
    # `python -m dagster` in this process, so the warning filter above holds
    sys.argv = ["dagster", "dev", *target, "--host", args.host, "--port", str(args.port)]
    try:
        runpy.run_module("dagster", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state = settings.state_dir()
    print(f"VFR_ML_HOME={state}")
    print(f"DAGSTER_HOME={os.environ.get('DAGSTER_HOME') or state / 'dagster'}")
    print(f"MLFLOW_TRACKING_URI={settings.env_or_none(settings.MLFLOW_TRACKING_URI_ENV) or settings.mlflow_default_uri(state)}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    state = settings.state_dir()
    # joining and leaving as the only live user makes each embedded server stop itself
    if embedded.postgres_pid(state):
        embedded.acquire_postgres(state)
        embedded.release_postgres(state)
    if embedded.redis_pid(state):
        embedded.acquire_redis(state)
        embedded.release_redis(state)
    print(f"embedded PostgreSQL pid: {embedded.postgres_pid(state)}; embedded Redis pid: {embedded.redis_pid(state)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vfr-ml", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="materialize full_pipeline_job (catch-up run of everything)").set_defaults(fn=cmd_run)
    read = sub.add_parser("read-prediction", help="read a prediction exactly as VFR does")
    read.add_argument("symbol", nargs="?", help="ticker; omit to list the served tickers")
    read.add_argument("--horizon", default="1w")
    read.add_argument("--model-id", default="default")
    read.set_defaults(fn=cmd_read_prediction)
    ui = sub.add_parser("ui", help="the Dagster UI (dagster dev) on this instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(fn=cmd_ui)
    sub.add_parser("env", help="print state locations").set_defaults(fn=cmd_env)
    sub.add_parser("stop", help="stop orphaned embedded servers").set_defaults(fn=cmd_stop)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
