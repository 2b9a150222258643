"""Request size at the server (issue 19, item 2): the web container's daphne (`python -m
ecgsite.serve`, docker/entrypoint.sh) answers 413 to a body over ECGSITE_MAX_REQUEST_BYTES as
soon as its size is known, without waiting for (or buffering) the body: plain daphne reads the
whole body into memory before the application is even called.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ECGSITE_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "ECGSITE_MAX_REQUEST_BYTES": str(LIMIT),
    }
    command = ["-m", "ecgsite.serve", "-b", "127.0.0.1", "-p", str(port), "ecgsite.asgi:application"]
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("ecgsite.serve did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def _exchange(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Sends the head and as much of the body as the server takes; returns its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        try:
            for part in body_parts:
                connection.sendall(part)
        except OSError:
            pass  # the server closed the connection mid-body: expected when refused
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer) > 200:
                    break
        except OSError:
            pass
        return answer


def _status(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert match, answer[:200]
    return int(match.group(1))


def test_a_declared_size_over_the_ceiling_is_refused_before_any_body_is_sent(server):
    head = (
        b"POST /api/v1/batches/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 419430400\r\n\r\n"
    )

    # No body at all: plain daphne would wait for all 400 MB before answering.
    answer = _exchange(server, head, [])

    assert _status(answer) == 413
    assert b"application/problem+json" in answer.lower()
    assert b"urn:ecgsite:problem:request-too-large" in answer


def test_a_chunked_body_over_the_ceiling_is_refused(server):
    head = (
        b"POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"190\r\n" + b"x" * 400 + b"\r\n"  # 0x190 = 400 bytes; no final chunk is ever sent

    assert _status(_exchange(server, head, [chunk] * 5)) == 413


def test_a_body_under_the_ceiling_reaches_the_application(server):
    body = b"x" * 500
    head = (
        b"POST /api/v1/batches/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 500\r\n\r\n"
    )

    assert _status(_exchange(server, head, [body])) == 401  # the API's answer: no credentials


def test_the_web_container_runs_this_server():
    script = (REPO / "docker" / "entrypoint.sh").read_text()
    (web,) = [line for line in script.splitlines() if re.match(r"\s*web\)", line)]

    assert "python -m ecgsite.serve" in web
