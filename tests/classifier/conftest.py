from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from accounts.models import User


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A fresh, empty MEDIA_ROOT for this test, so "nothing stored" can be checked."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def owner_client(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def other_client(other_user: User) -> Client:
    client = Client()
    client.force_login(other_user)
    return client


@pytest.fixture
def staff_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def tiny_image_bytes(image_format: str = "PNG", size: tuple[int, int] = (40, 30), **save_options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, format=image_format, **save_options)
    return out.getvalue()
