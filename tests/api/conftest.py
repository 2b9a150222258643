"""API test helpers: `api` (alice's token client) and a webhook receiver on loopback. The actors
and their clients are in tests/conftest.py."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api(owner_api: APIClient) -> APIClient:
    """The owner's token client, under the name the API tests use."""
    return owner_api


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 answering the queued status codes (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    redirect_to: str | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?source=ecg"

    def verified(self, secret: str, request: dict) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, request["headers"].get("X-ECG-Signature", ""))


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.ECGSITE_WEBHOOK_ALLOW_PRIVATE = True
    settings.ECGSITE_WEBHOOK_BACKOFF_S = 0
    settings.ECGSITE_WEBHOOK_TIMEOUT_S = 5
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            code = state.statuses.pop(0) if state.statuses else 200
            self.send_response(code)
            if state.redirect_to and code in (301, 302, 307, 308):
                self.send_header("Location", state.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
