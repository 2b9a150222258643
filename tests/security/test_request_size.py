"""Request size (issue 19, item 2): a body over ECGSITE_MAX_REQUEST_BYTES is refused with 413
before Django reads it (Django's ASGI handler otherwise spools the whole body before any view or
authentication runs), for the web form and the API alike.

The ASGI application is called directly, with a `receive` that counts how much of the body was
asked for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ecgsite.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

LIMIT = 1000


@pytest.fixture(autouse=True)
def small_ceiling(settings):
    settings.ECGSITE_MAX_REQUEST_BYTES = LIMIT


class Client:
    """One HTTP request to the ASGI app: the body as `http.request` messages, counted as read."""

    def __init__(self, path: str, chunks: list[bytes], content_length: int | None) -> None:
        headers = [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=x")]
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("localhost", 8000),
        }
        self.messages = [
            {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
            for index, chunk in enumerate(chunks)
        ]
        self.body_bytes_read = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self.messages:
            message = self.messages.pop(0)
            self.body_bytes_read += len(message["body"])
            return message
        await asyncio.sleep(3600)  # the client waits for the answer
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def run(self) -> tuple[int, dict[bytes, bytes], bytes]:
        await asyncio.wait_for(application(self.scope, self.receive, self.send), timeout=20)
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), body


async def test_an_api_upload_declared_over_the_ceiling_is_refused_unread():
    client = Client("/api/v1/batches/", [b"x" * 500] * 4, content_length=400 * 1024 * 1024)

    status, headers, body = await client.run()

    assert status == 413
    assert headers[b"content-type"].startswith(b"application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["type"] == "urn:ecgsite:problem:request-too-large"
    assert problem["title"] and str(LIMIT) in problem["detail"]
    assert client.body_bytes_read == 0


async def test_a_web_upload_declared_over_the_ceiling_is_refused_unread():
    client = Client("/upload/", [b"x" * 500] * 4, content_length=2000)

    status, headers, body = await client.run()

    assert status == 413
    assert headers[b"content-type"].startswith(b"text/")
    assert b"too large" in body.lower()
    assert client.body_bytes_read == 0


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/upload/"])
async def test_a_chunked_body_is_cut_off_once_over_the_ceiling(path):
    # No Content-Length: the body is counted as it arrives and reading stops past the ceiling.
    client = Client(path, [b"x" * 400] * 50, content_length=None)

    status, _, _ = await client.run()

    assert status == 413
    assert client.body_bytes_read <= LIMIT + 400
    assert len(client.messages) >= 45


async def test_a_body_under_the_ceiling_reaches_the_app():
    client = Client("/api/v1/batches/", [b"x" * 300, b"x" * 300], content_length=600)

    status, _, _ = await client.run()

    # Django and DRF answered: no credentials.
    assert status == 401
    assert client.body_bytes_read == 600


async def test_a_chunked_body_under_the_ceiling_reaches_the_app():
    client = Client("/api/v1/batches/", [b"x" * 300, b"x" * 300], content_length=None)

    status, _, _ = await client.run()

    assert status == 401
    assert client.body_bytes_read == 600
