from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vfr_ml_pipelines.lib.monitoring.alerts import (
    Alert, AlertDeliveryError, WebhookClient, WebhookConfig, slack_payload,
)
from vfr_ml_pipelines_tests.webhook_server import SECRET_PATH, webhook_server, webhook_url

TOKEN = "tok-very-secret-123"
ALERT = Alert("Drift detected", "champion 1w: drift score 0.41", "critical", {"horizon": "1w", "score": "0.41"})


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        server = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        behaviour = self.path.rsplit("/", 1)[-1]
        calls = len(server.received)
        if behaviour == "slow":
            time.sleep(1.0)
        code = {"ok": 200, "slow": 200, "bad": 400, "down": 503, "flaky": 500 if calls < 3 else 200}[behaviour]
        try:
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"error")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out on the slow answer and hung up

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with webhook_server(_Handler) as httpd:
        yield httpd


def _client(server: ThreadingHTTPServer, behaviour: str, sleeps: list[float], **config: float) -> tuple[WebhookClient, str]:
    url = webhook_url(server, behaviour)
    return WebhookClient(url, token=TOKEN, config=WebhookConfig(**config), sleep=sleeps.append), url


def _assert_no_secret(text: str, url: str) -> None:
    for secret in (url, SECRET_PATH, "T0SECRET", "xoxbSecretToken42", TOKEN):
        assert secret not in text


def test_payload_is_slack_compatible() -> None:
    payload = slack_payload(ALERT)
    assert "Drift detected" in payload["text"] and "0.41" in payload["text"]
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section"]
    assert payload["blocks"][2]["fields"][0]["text"] == "*horizon*\n1w"
    many = slack_payload(Alert("t", "x", fields={str(i): "v" for i in range(23)}))
    assert [len(b["fields"]) for b in many["blocks"][2:]] == [10, 10, 3]
    with pytest.raises(ValueError):
        Alert("t", "x", severity="panic")


def test_success_posts_once_with_the_token(server: ThreadingHTTPServer) -> None:
    sleeps: list[float] = []
    client, url = _client(server, "ok", sleeps)
    result = client.send(ALERT)
    assert (result.delivered, result.attempts, result.status) == (True, 1, 200)
    [(path, authorization, body)] = server.received
    assert authorization == f"Bearer {TOKEN}" and body == slack_payload(ALERT)
    assert sleeps == []
    _assert_no_secret(repr(client) + repr(result), url)


def test_retries_5xx_with_backoff_then_succeeds(server: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    client, url = _client(server, "flaky", sleeps, max_attempts=4, backoff_seconds=0.5)
    with caplog.at_level(logging.WARNING):
        result = client.send(ALERT)
    assert (result.delivered, result.attempts) == (True, 3)
    assert sleeps == [0.5, 1.0]
    assert len(server.received) == 3
    assert "HTTP 500" in caplog.text
    _assert_no_secret(caplog.text, url)


def test_always_failing_server_gives_up_after_max_attempts(server: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    client, url = _client(server, "down", sleeps, max_attempts=3)
    with caplog.at_level(logging.WARNING), pytest.raises(AlertDeliveryError) as caught:
        client.send(ALERT)
    assert caught.value.result.attempts == 3 and caught.value.result.status == 503
    assert "HTTP 503" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    _assert_no_secret(str(caught.value) + repr(caught.value.result) + caplog.text, url)
    quiet = client.send(ALERT, raise_on_failure=False)
    assert not quiet.delivered and quiet.error == "HTTP 503"


def test_4xx_is_not_retried(server: ThreadingHTTPServer) -> None:
    sleeps: list[float] = []
    client, url = _client(server, "bad", sleeps)
    result = client.send(ALERT, raise_on_failure=False)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 400)
    assert sleeps == [] and len(server.received) == 1


def test_slow_server_times_out_and_is_retried(server: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    client, url = _client(server, "slow", sleeps, timeout_seconds=0.2, max_attempts=2, backoff_seconds=0.1)
    with caplog.at_level(logging.WARNING), pytest.raises(AlertDeliveryError) as caught:
        client.send(ALERT)
    # each 1 s answer was cut off by the 0.2 s timeout (no status), and the send retried once
    assert caught.value.result.attempts == 2 and caught.value.result.status is None
    assert "timeout" in str(caught.value) and sleeps == [0.1]
    _assert_no_secret(str(caught.value) + caplog.text, url)


def test_unreachable_host_error_names_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:9{SECRET_PATH}"  # port 9 (discard): connection refused
    client = WebhookClient(url, token=TOKEN, config=WebhookConfig(max_attempts=2), sleep=lambda _: None)
    with caplog.at_level(logging.WARNING), pytest.raises(AlertDeliveryError) as caught:
        client.send(ALERT)
    assert caught.value.result.attempts == 2
    _assert_no_secret(str(caught.value) + caplog.text, url)
    with pytest.raises(ValueError) as bad:
        WebhookClient(f"ftp://example.com{SECRET_PATH}")
    _assert_no_secret(str(bad.value), f"ftp://example.com{SECRET_PATH}")
