"""A local HTTP server standing in for a Slack-style webhook in the alert tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# a path shaped like a Slack webhook's, whose parts must never appear in logs or errors
SECRET_PATH = "/services/T0SECRET/B0HOOK/xoxbSecretToken42"


class RecordingHandler(BaseHTTPRequestHandler):
    """Appends each posted JSON body to `server.received`; answers 503 on a path ending in
    `/down`, 200 otherwise."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        code = 503 if self.path.endswith("/down") else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


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
