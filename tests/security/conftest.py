"""Helpers of the security tests (the actors, alice, bob and charlie, and their clients are in
tests/conftest.py): `alices_job`, a finished job with its stored image, and hand-made uploads.

Uploads go through both doors with the same bytes: the web form (`/upload/`, session) and the
API (`POST /api/v1/batches/`, token). Bodies are encoded here by hand, so a test controls the
exact file name the client sends (the test client would strip paths from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from classifier.models import Batch, Job
from tests.classifier.factories import BatchFactory, JobFactory

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
def alices_job(owner, media_root) -> Job:
    """A finished batch of alice's with one job and its stored image."""
    batch = BatchFactory(owner=owner)
    job = JobFactory(batch=batch, status="succeeded")
    Batch.objects.filter(pk=batch.pk).update(completed=batch.created)
    return job


@pytest.fixture
def upload_temp_dir(settings, tmp_path: Path) -> Path:
    """Every uploaded file spills to a temporary file here, so leaks can be seen."""
    folder = tmp_path / "upload-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    return folder
