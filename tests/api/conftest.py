"""API actors: `owner` with a token (alice), `other_user` with another (bob), who must never see
alice's batches, jobs or images."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import api_token_create


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A fresh, empty MEDIA_ROOT for this test, so what is stored and removed can be checked."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture(autouse=True)
def fresh_rate_counters() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner_key(owner: User) -> str:
    return api_token_create(user=owner, name="tests")[1]


@pytest.fixture
def api(owner_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {owner_key}")
    return client


@pytest.fixture
def other_api(other_user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=other_user)[1]}")
    return client


def assert_problem(response, status: int, field: str | None = "unset") -> dict:
    """The response is RFC 9457 problem JSON with this status (and field at fault, if given)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["type"].startswith("urn:ecgsite:problem:")
    assert body["title"] and body["detail"]
    if field != "unset":
        assert body["field"] == field
    return body


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
