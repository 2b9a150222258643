"""Actors for the security tests: `owner` (alice) uploads; `other_user` (bob) must never see
alice's batches, jobs, images or events; `staff` (charlie) may use the admin.

Uploads go through both doors with the same bytes: the web form (`/upload/`, session) and the
API (`POST /api/v1/batches/`, token). Bodies are encoded here by hand, so a test controls the
exact file name the client sends (the test client would strip paths from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from accounts.tokens import api_token_create

BOUNDARY = "ecgsite-security-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
WEB_UPLOAD = "/upload/"
API_UPLOAD = "/api/v1/batches/"


@dataclass(frozen=True)
class Part:
    """One file as a client sends it: the name, the bytes and the declared type, all untrusted."""

    name: str
    content: bytes
    content_type: str = "application/octet-stream"


def multipart_body(parts: list[Part], field: str = "images") -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{part.name}"\r\n'
            f"Content-Type: {part.content_type}\r\n\r\n"
        )
        chunks += [head.encode("latin-1"), part.content, b"\r\n"]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A fresh, empty MEDIA_ROOT for this test, so "nothing stored" can be checked."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def upload_temp_dir(settings, tmp_path: Path) -> Path:
    """Every uploaded file spills to a temporary file here, so leaks can be seen."""
    folder = tmp_path / "upload-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    return folder


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture(autouse=True)
def fresh_rate_counters() -> Iterator[None]:
    """allauth and the API throttles count in the cache; each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def enqueue(monkeypatch: pytest.MonkeyPatch) -> mock.Mock:
    """Records what would be handed to the queue instead of classifying it."""
    recorder = mock.Mock()
    monkeypatch.setattr("worker.queue.enqueue_classify", recorder)
    return recorder


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner: User) -> Client:
    return logged_in(owner)


@pytest.fixture
def other_client(other_user: User) -> Client:
    return logged_in(other_user)


@pytest.fixture
def staff_client(staff: User) -> Client:
    return logged_in(staff)


def token_client(user: User) -> Client:
    """A client that sends `Authorization: Token <key>` and no session."""
    return Client(headers={"authorization": f"Token {api_token_create(user=user, name='tests')[1]}"})


@pytest.fixture
def owner_api(owner: User) -> Client:
    return token_client(owner)


@pytest.fixture
def other_api(other_user: User) -> Client:
    return token_client(other_user)
