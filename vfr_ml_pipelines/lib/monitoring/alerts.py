"""Alerts to a Slack-compatible webhook: `{"text": ...}` for any receiver plus Slack `blocks`
(a header, the text, and the fields), with a timeout, bounded retries with exponential backoff
on 5xx answers and network errors / timeouts, and no retry on 4xx (the request itself is wrong:
repeating it cannot help).

The webhook URL is a secret (Slack puts the credential in its path) and so is the optional
bearer token: neither appears in a log line, an exception message or a returned result. Every
text this module produces goes through `_Redactor`, which replaces the URL, its host, path and
query and the token; exceptions of the HTTP stack are summarized (status code or exception
class) and re-raised without their chain (`from None`), since urllib's exceptions carry the URL.
Only the standard library is used (urllib), so the client has no dependency to pin.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
_SEVERITY_ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
# Slack refuses a section with more than 10 fields
_MAX_FIELDS_PER_SECTION = 10
REDACTED = "<redacted>"


@dataclass(frozen=True)
class WebhookConfig:
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.5  # waits 0.5 s, then 1 s: a sensor tick stays well under its limit
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_attempts < 1 or self.backoff_seconds < 0 or self.backoff_factor < 1:
            raise ValueError(f"invalid webhook config {self}")


@dataclass(frozen=True)
class Alert:
    title: str
    text: str
    severity: str = "warning"
    fields: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


def slack_payload(alert: Alert) -> dict:
    icon = _SEVERITY_ICON[alert.severity]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {alert.text}"}},
    ]
    items = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in alert.fields.items()]
    for start in range(0, len(items), _MAX_FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": items[start : start + _MAX_FIELDS_PER_SECTION]})
    # "text" is what plain receivers read and Slack's notification fallback
    return {"text": f"{icon} [{alert.severity.upper()}] {alert.title}: {alert.text}", "blocks": blocks}


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    status: int | None  # the last HTTP status, None when no answer came
    error: str | None  # redacted


class AlertDeliveryError(RuntimeError):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(f"alert not delivered after {result.attempts} attempt(s): {result.error}")
        self.result = result


class _Redactor:
    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        candidates = [url, token, parts.netloc, parts.hostname, parts.path, parts.query, *parts.path.split("/")]
        # longest first so a part never leaves a piece of a longer secret behind
        self._secrets = sorted({c for c in candidates if c and len(c) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


class WebhookClient:
    """Posts alerts to one webhook. `sleep` is injectable so tests do not wait for backoffs."""

    def __init__(self, url: str, *, token: str | None = None, config: WebhookConfig = WebhookConfig(),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("the webhook URL must be http(s) (the URL itself is not shown: it is a secret)")
        self._url, self._token, self._config, self._sleep = url, token, config, sleep
        self._redact = _Redactor(url, token)

    def __repr__(self) -> str:
        return f"WebhookClient(url={REDACTED}, config={self._config})"

    def _post_once(self, body: bytes) -> int:
        request = urllib.request.Request(self._url, data=body, method="POST", headers={"Content-Type": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        with urllib.request.urlopen(request, timeout=self._config.timeout_seconds) as response:  # noqa: S310 (http(s) checked)
            response.read()
            return response.status

    def send(self, alert: Alert, *, raise_on_failure: bool = True) -> DeliveryResult:
        body = json.dumps(slack_payload(alert)).encode()
        config, status, error = self._config, None, None
        for attempt in range(1, config.max_attempts + 1):
            retry = False
            try:
                status = self._post_once(body)
                return DeliveryResult(True, attempt, status, None)
            except urllib.error.HTTPError as failure:
                status = failure.code
                failure.close()
                error = f"HTTP {failure.code}"
                retry = failure.code >= 500
            except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError, OSError) as failure:
                reason = getattr(failure, "reason", failure)
                kind = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else type(reason).__name__
                status, error, retry = None, self._redact(f"{kind}: {reason}"), True
            log.warning(self._redact(f"webhook attempt {attempt}/{config.max_attempts} failed ({error})"))
            if not retry or attempt == config.max_attempts:
                break
            self._sleep(config.backoff_seconds * config.backoff_factor ** (attempt - 1))
        result = DeliveryResult(False, attempt, status, error)
        if raise_on_failure:
            raise AlertDeliveryError(result) from None
        return result


# Slack shows a field of a few hundred characters at most; a stack trace belongs in the Dagster UI
_MAX_ERROR_CHARS = 500


def run_failure_alert(job: str, run_id: str, failed_steps: Mapping[str, str], run_error: str | None) -> Alert:
    """The alert for a failed Dagster run: the job, the run id, each failing step with the first
    line of its error (or the run's own error when no step failed, e.g. a run that never started)."""
    first_step = next(iter(failed_steps), None)
    error = failed_steps[first_step] if first_step else (run_error or "unknown error")
    error = (error.strip().splitlines() or ["unknown error"])[0][:_MAX_ERROR_CHARS]
    fields = {"job": job, "run id": run_id, "failing step": ", ".join(failed_steps) or "(none: the run itself failed)",
              "error": error}
    return Alert(f"Run failed: {job}", f"run {run_id} of {job} failed at {first_step or 'run level'}: {error}",
                 "critical", fields)

