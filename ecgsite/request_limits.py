"""A ceiling on request bodies, enforced before Django reads them.

Django's ASGI handler reads the whole body into a spooled temporary file before any middleware,
authentication or view runs, so an anonymous 400 MB POST was read in full just to be told 401.
This ASGI middleware answers 413 first: at once when Content-Length is over
settings.ECGSITE_MAX_REQUEST_BYTES, or, for a body without one (chunked), as soon as the bytes
received pass it. The proxy in front should refuse the same sizes (nginx `client_max_body_size`):
daphne itself still accepts what the client sends before the application sees it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

PROBLEM_CONTENT_TYPE = b"application/problem+json"


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # daphne/Django refuse a malformed length themselves
    return None


def too_large_body(path: str, limit: int) -> tuple[bytes, bytes]:
    detail = f"The request body is larger than this server accepts ({limit} bytes at most)."
    if path.startswith("/api/"):
        problem = {
            "type": "urn:ecgsite:problem:request-too-large",
            "title": "Request too large",
            "status": 413,
            "detail": detail,
            "field": None,
            "errors": [{"field": None, "detail": detail}],
        }
        return PROBLEM_CONTENT_TYPE, json.dumps(problem).encode()
    mib = limit / (1024 * 1024)
    text = f"Request too large: at most {mib:g} MiB may be sent at once. Send fewer files per upload.\n"
    return b"text/plain; charset=utf-8", text.encode()


class RequestSizeLimitMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.ECGSITE_MAX_REQUEST_BYTES
        declared = _content_length(scope.get("headers", []))
        if declared is not None:
            if declared > limit:
                return await self._refuse(scope, send, limit)
            # A declared length is enforced by the server: no more than that arrives.
            return await self.app(scope, receive, send)

        received = 0
        over = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # To Django this is a client gone mid-body: it drops what it spooled and
                    # answers nothing, so the 413 below is the only response.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting_receive, send)
        if over:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: dict[str, Any], send: Any, limit: int) -> None:
        content_type, body = too_large_body(scope.get("path", ""), limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    # The client may still be sending: tell it this connection is done.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
