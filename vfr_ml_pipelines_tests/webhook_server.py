"""A local HTTP server standing in for a Slack-style webhook in the alert tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# a path shaped like a Slack webhook's, whose parts must never appear in logs or errors
SECRET_PATH = "/services/T0SECRET/B0HOOK/xoxbSecretToken42"


@contextmanager
def webhook_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """The server on a free port, its requests appended by `handler` to `server.received`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.received = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def webhook_url(server: ThreadingHTTPServer, behaviour: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}/{behaviour}"
