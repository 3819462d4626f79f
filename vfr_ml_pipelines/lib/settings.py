"""Where local state lives and which environment variables configure the project.

Every server has a zero-configuration default under one state folder and a real-server
override by environment variable (DESIGN principle 3).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vfr_ml_pipelines import __version__

STATE_DIR_ENV = "VFR_ML_HOME"
DATABASE_URL_ENV = "DATABASE_URL"
REDIS_URL_ENV = "REDIS_URL"
REDIS_KEY_PREFIX_ENV = "VFR_REDIS_KEY_PREFIX"
PUBLISH_MAX_ENTRIES_ENV = "VFR_PUBLISH_MAX_ENTRIES_PER_TRANSACTION"
MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
VFR_MODELS_DIR_ENV = "VFR_MODELS_DIR"

DEFAULT_STATE_DIRNAME = ".vfr_ml"
DEFAULT_REDIS_KEY_PREFIX = "veritak:mcp:"


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The local state folder (absolute), created on first use."""
    raw = explicit or os.environ.get(STATE_DIR_ENV) or Path.cwd() / DEFAULT_STATE_DIRNAME
    path = Path(raw).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def mlflow_default_uri(state: Path) -> str:
    """MLflow on a SQLite file in the state folder; always absolute (MLflow resolves
    relative URIs against the working directory, which differs between processes)."""
    db = state / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def sql_dir() -> Path:
    """The numbered migrations: packaged inside the wheel, or the repo's top-level sql/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "sql", here.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ migrations folder next to {here}")


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
