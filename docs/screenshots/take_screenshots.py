"""Screenshots of the Dagster UI's main views for the docs, from a finished state folder.

    python docs/screenshots/take_screenshots.py --state .vfr_ml          # after `make run`

It copies the state folder (the UI writes into its instance: the folder you give is never
touched), starts `vfr-ml ui` on the copy, waits until each page has rendered what its caption
promises (named texts present, no "Loading" placeholder left), saves PNGs into docs/images/,
then stops the UI it started and removes the copy.

Needs Playwright, kept out of the project's pins (a venv of its own), and a Chromium:

    python3 -m venv /work/pw-venv && /work/pw-venv/bin/pip install playwright
    apt-get install -y chromium      # or: /work/pw-venv/bin/playwright install chromium
    /work/pw-venv/bin/python docs/screenshots/take_screenshots.py --state /tmp/run-idle/.vfr_ml
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
START_BOUND_SECONDS = 900  # a busy 2-core machine loads the code location in minutes
PAGE_BOUND_MS = 300_000


@dataclass(frozen=True)
class View:
    file: str  # under docs/images/
    path: str  # URL path of the UI
    shows: tuple[str, ...]  # texts the page must show before the shot (what the caption promises)
    expand_groups: bool = False
    scroll_to: str | None = None  # a heading to bring to the top of the page


VIEWS = (
    View("ui_asset_groups.png", "/asset-groups", ("market_data", "features", "models", "serving", "backtests", "monitoring")),
    View("ui_serving_lineage.png", "/locations/vfr_ml_pipelines/asset-groups/serving/lineage",
         ("redis_predictions", "ml_predictions", "vfr_live_model", "predictions")),
    View("ui_promotion_gate_1w.png", "/assets/challenger_1w_model?view=checks",
         ("promotion_gate", "Latest execution", "validation_rank_ic")),
    View("ui_redis_predictions_metadata.png", "/assets/redis_predictions",
         ("1w_champion", "entries_written", "1m_verdict"), scroll_to="Metadata"),
    View("ui_vfr_live_model_metadata.png", "/assets/vfr_live_model", ("Metadata",), scroll_to="Metadata"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(state: Path, port: int, python: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VFR_ML_HOME")}
    env.update({"VFR_ML_HOME": str(state), "DAGSTER_HOME": str(state / "dagster"), "PYTHONPATH": str(REPO)})
    return subprocess.Popen(
        [python, "-m", "vfr_ml_pipelines.cli", "ui", "--port", str(port)], cwd=REPO, env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for_code_location(port: int, ui: subprocess.Popen, log: Path) -> None:
    """The webserver answers and the code location has loaded (its jobs are listed)."""
    query = b'{"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"}'
    deadline = time.monotonic() + START_BOUND_SECONDS
    while time.monotonic() < deadline:
        if ui.poll() is not None:
            sys.exit(f"vfr-ml ui ended with code {ui.returncode} before the UI came up; its log: {log}")
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                if b"full_pipeline_job" in response.read():
                    return
        except OSError:
            pass
        time.sleep(3)
    sys.exit(f"the UI did not load the code location within {START_BOUND_SECONDS} s; its log: {log}")


def dismiss_dialogs(page: Page) -> None:
    """Dagster's first-visit 'Join the Dagster community' dialog covers the page once."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def rendered(page: Page, view: View) -> None:
    for text in view.shows:
        page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=PAGE_BOUND_MS)
    dismiss_dialogs(page)
    deadline = time.monotonic() + PAGE_BOUND_MS / 1000
    # node bodies and tables fill in after the frame: wait until no placeholder is left
    while page.get_by_text("Loading", exact=False).count() and time.monotonic() < deadline:
        page.wait_for_timeout(1000)
    page.wait_for_load_state("networkidle", timeout=PAGE_BOUND_MS)
    page.wait_for_timeout(1500)


def shoot(page: Page, base: str, view: View, out: Path) -> None:
    page.goto(base + view.path)
    page.wait_for_timeout(2000)
    dismiss_dialogs(page)
    rendered(page, view)
    if view.scroll_to:
        page.get_by_text(view.scroll_to, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
    page.screenshot(path=str(out / view.file))
    print(f"saved {out / view.file}", flush=True)


def shoot_all(args: argparse.Namespace, base: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium or None, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        for view in VIEWS:
            shoot(page, base, view, args.out)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=REPO / ".vfr_ml", help="a finished state folder (VFR_ML_HOME of a run)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                        help="the project's Python (runs vfr-ml ui); default .venv/bin/python")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "", help="a Chromium binary; default: on PATH")
    parser.add_argument("--url", help="a UI already running on a copy of the state (skips the copy and the start)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        shoot_all(args, args.url.rstrip("/"))
        return 0
    if not (args.state / "dagster").is_dir():
        sys.exit(f"--state {args.state}: no dagster/ folder in it; give the VFR_ML_HOME of a finished `make run`")
    with tempfile.TemporaryDirectory(prefix="vfr-ml-ui-state-") as tmp:
        state = Path(tmp) / "state"
        shutil.copytree(args.state, state, symlinks=True)
        port, log = free_port(), Path(tmp) / "ui.log"
        ui = start_ui(state, port, args.python, log)
        try:
            wait_for_code_location(port, ui, log)
            shoot_all(args, f"http://127.0.0.1:{port}")
        finally:
            os.killpg(ui.pid, signal.SIGTERM)  # the UI we started, with its code server and daemon
            try:
                ui.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(ui.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
