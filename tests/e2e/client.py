"""Clients of a running ecgsite, as a script or another program would use it: plain HTTP with
a cookie jar (sign-up through the allauth form, CSRF, multipart upload), and the websocket
/ws/notifications/ with the session cookie and an allowed Origin.

Standard library and ``websockets`` only, loopback only. Used by the real-stack tests and the
bench, with no pytest or Django in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PASSWORD = "correct-horse-battery-staple-e2e"
Message = dict[str, Any]


CONFIRMATION_LINK = re.compile(r"/accounts/confirm-email/[^/\s]+/")


def confirmation_path(mail_dir: Path, email: str, timeout: float = 30.0) -> str:
    """The path of the newest address-confirmation link mailed to ``email`` (Django's file
    email backend writes one file per message into ``mail_dir``)."""
    deadline = time.monotonic() + timeout
    while True:
        messages = (
            sorted(mail_dir.glob("*.log"), key=lambda path: path.stat().st_mtime) if mail_dir.exists() else []
        )
        for message in reversed(messages):
            text = message.read_text(encoding="utf-8", errors="replace")
            link = CONFIRMATION_LINK.search(text)
            if f"To: {email}" in text and link:
                return link.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no confirmation link for {email} was mailed to {mail_dir} in {timeout:.0f} s"
            )
        time.sleep(0.1)


def render_ecg_png(label: str, seed: int) -> bytes:
    """A synthetic 12-lead page (``ml.synthetic``) as PNG bytes; never the real data set."""
    from ml.synthetic import render_ecg

    out = io.BytesIO()
    render_ecg(label, seed).save(out, format="PNG")
    return out.getvalue()


def synthetic_images(count: int, first_seed: int = 0) -> list[tuple[str, bytes]]:
    """``count`` (file name, PNG bytes) pairs cycling through the four labels."""
    from ml.labels import CLASSES

    images = []
    for index in range(count):
        label = CLASSES[index % len(CLASSES)]
        seed = first_seed + index
        images.append((f"{label}-{seed}.png", render_ecg_png(label, seed)))
    return images


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class HttpResult:
    status: int
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class SiteClient:
    """One browser-less user agent: its own cookie jar, CSRF handled like the site's forms."""

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        # An empty ProxyHandler: never route a loopback request through a configured proxy.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies)
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    @property
    def cookie_header(self) -> str:
        """The Cookie header a browser would send to this site (session and CSRF cookies)."""
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return HttpResult(response.status, response.url, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return HttpResult(error.code, url, error.read(), dict(error.headers))

    def get(self, path: str) -> HttpResult:
        return self.request("GET", path)

    def csrf_token(self, path: str) -> str:
        """Load ``path`` (a page with a form) and return the CSRF token its form carries."""
        page = self.get(path)
        if page.status != 200:
            raise AssertionError(f"GET {path} answered {page.status}, expected 200:\n{page.text[:2000]}")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not match:
            raise AssertionError(f"GET {path} has no CSRF token in its form")
        return match.group(1)

    def post_form(self, path: str, fields: dict[str, str], *, token: str) -> HttpResult:
        body = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        return self.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

    def sign_up(self, email: str, mail_dir: Path, password: str = PASSWORD) -> None:
        """Create an account through the allauth sign-up form and confirm its address by the
        link emailed to it (the site writes mail to files in ``mail_dir``); leaves this client
        signed in."""
        token = self.csrf_token("/accounts/signup/")
        result = self.post_form(
            "/accounts/signup/", {"email": email, "password1": password, "password2": password}, token=token
        )
        if result.status != 200:
            raise AssertionError(f"sign-up of {email} answered HTTP {result.status}:\n{result.text[:3000]}")
        confirm = confirmation_path(mail_dir, email)
        result = self.post_form(confirm, {}, token=self.csrf_token(confirm))
        if result.status != 200 or not urllib.parse.urlsplit(result.url).path.startswith("/upload/"):
            raise AssertionError(
                f"confirming {email} ended at {result.url} (HTTP {result.status}), expected /upload/:\n"
                f"{result.text[:3000]}"
            )
        if not self.cookie("sessionid"):
            raise AssertionError(f"sign-up of {email} set no session cookie")

    def upload(self, images: Sequence[tuple[str, bytes]], name: str = "") -> Message:
        """POST the images to /upload/ as the page's script does; the JSON answer {batch, url}."""
        token = self.csrf_token("/upload/")
        boundary = f"----e2e{uuid.uuid4().hex}"
        parts = [
            _form_part(boundary, "csrfmiddlewaretoken", token.encode()),
            _form_part(boundary, "name", name.encode()),
        ]
        for filename, content in images:
            parts.append(_form_part(boundary, "images", content, filename=filename, content_type="image/png"))
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        result = self.request(
            "POST",
            "/upload/",
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Accept": "application/json",
                "X-CSRFToken": token,
            },
        )
        if result.status != 201:
            raise AssertionError(f"upload answered HTTP {result.status}, expected 201:\n{result.text[:3000]}")
        answer: Message = result.json()
        return answer


def _form_part(
    boundary: str, name: str, content: bytes, *, filename: str | None = None, content_type: str | None = None
) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


@dataclass
class EventStream:
    """A websocket to /ws/notifications/ whose messages a background task collects in order.

    ``received`` keeps every message with its arrival time (time.monotonic()), so a caller can
    wait for one and still inspect all of them afterwards.
    """

    connection: ClientConnection
    received: list[tuple[float, Message]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed_reason: str | None = None

    @classmethod
    async def open(cls, websocket_url: str, *, cookie_header: str, origin: str) -> EventStream:
        connection = await connect(
            websocket_url,
            origin=origin,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie_header},
            proxy=None,
            max_size=8 * 1024 * 1024,
            open_timeout=20,
        )
        stream = cls(connection)
        stream._reader = asyncio.create_task(stream._read())
        return stream

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                self.received.append((time.monotonic(), json.loads(raw)))
                self._arrived.set()
        except Exception as error:
            self.closed_reason = repr(error)
        else:
            self.closed_reason = f"closed by the server (code {self.connection.close_code})"
        finally:
            self._arrived.set()

    @property
    def messages(self) -> list[Message]:
        return [message for _, message in self.received]

    async def send(self, message: Message) -> None:
        await self.connection.send(json.dumps(message))

    async def wait_for(
        self, predicate: Callable[[Message], bool], *, timeout: float, what: str, start: int = 0
    ) -> tuple[float, Message]:
        """The first message from index ``start`` on that satisfies ``predicate``, with its arrival
        time; AssertionError naming ``what`` and listing what did arrive after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.received):
                arrived, message = self.received[index]
                index += 1
                if predicate(message):
                    return arrived, message
            if self.closed_reason is not None:
                raise AssertionError(
                    f"websocket ended ({self.closed_reason}) before {what}; got {self.summary()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout:.0f}s; got {self.summary()}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=remaining)

    def summary(self, limit: int = 30) -> str:
        """A short list of the received messages, for failure messages."""
        parts = []
        for _, message in self.received[-limit:]:
            kind = message.get("type")
            if kind == "job.updated":
                parts.append(f"job.updated(job {message['job']['id']}: {message['job']['status']})")
            elif kind == "batch.completed":
                parts.append(f"batch.completed(batch {message['batch']['id']})")
            else:
                parts.append(str(kind))
        return f"{len(self.received)} messages: [{', '.join(parts)}]"

    async def close(self) -> None:
        await self.connection.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, timeout=10)


def is_job_update(job_id: int | None = None, status: str | None = None) -> Callable[[Message], bool]:
    def matches(message: Message) -> bool:
        if message.get("type") != "job.updated":
            return False
        job = message["job"]
        return (job_id is None or job["id"] == job_id) and (status is None or job["status"] == status)

    return matches


def is_batch_completed(batch_id: int) -> Callable[[Message], bool]:
    return lambda message: message.get("type") == "batch.completed" and message["batch"]["id"] == batch_id
