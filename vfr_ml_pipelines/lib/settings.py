"""Where local state lives and which environment variables configure the project.

Every server has a zero-configuration default under one state folder and a real-server
override by environment variable (DESIGN principle 3).
"""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


# --- typed environment variables -----------------------------------------------------------
# Every variable is read through these, so a wrong value stops the code location at load
# with an error that names the variable, the value and what is expected, instead of a bare
# ValueError (or a crash deep inside a run) that names neither.


class ConfigError(ValueError):
    """A configuration value (an environment variable) that cannot be used."""


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" of at least {minimum:g}"
    return f" of at most {maximum:g}" if maximum is not None else ""


def env_int(name: str, default: int | None, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole number within [minimum, maximum]; unset gives `default`."""
    raw = env_or_none(name)
    if raw is None:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number{_bounds(minimum, maximum)}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name}={raw!r}: expected a whole number{_bounds(minimum, maximum)}")
    return value


def env_float(
    name: str, default: float | None, *, minimum: float | None = None, maximum: float | None = None,
    positive: bool = False,
) -> float | None:
    """A finite number within [minimum, maximum] (and > 0 with `positive`); unset gives
    `default`."""
    raw = env_or_none(name)
    if raw is None:
        return default
    expected = f"expected a {'positive ' if positive else ''}finite number{_bounds(minimum, maximum)}"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: {expected}") from None
    if (value != value or value in (float("inf"), float("-inf")) or (positive and value <= 0)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise ConfigError(f"{name}={raw!r}: {expected}")
    return value


def env_date(name: str, default: date | None, *, earliest: date | None = None, latest: date | None = None) -> date | None:
    """A `YYYY-MM-DD` date within [earliest, latest]; unset gives `default`."""
    raw = env_or_none(name)
    if raw is None:
        return default
    span = f" from {earliest} to {latest}" if earliest and latest else ""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a date as YYYY-MM-DD{span}") from None
    if (earliest is not None and value < earliest) or (latest is not None and value > latest):
        raise ConfigError(f"{name}={raw!r}: outside the supported range{span} (the exchange calendar's)")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env_or_none(name)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw.lower()


def safe_url(url: str) -> str:
    """`url` with its password (and any user:password pair) masked, for messages."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def env_url(name: str, schemes: tuple[str, ...]) -> str | None:
    """A URL with one of `schemes` and a host (or a unix socket path); unset gives None.
    The message of a refused value masks its password."""
    raw = env_or_none(name)
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as error:
        raise ConfigError(f"{name}={safe_url(raw)!r}: not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ConfigError(f"{name}={safe_url(raw)!r}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    if not parts.hostname and not (scheme == "unix" and parts.path):
        raise ConfigError(f"{name}={safe_url(raw)!r}: the URL names no host")
    return raw
