"""Shared fixtures for the ml tests: synthetic pages, never the real scans."""

from __future__ import annotations

import pytest
from PIL import Image

from ml.synthetic import render_ecg
from tests.ml.helpers import encode


@pytest.fixture(scope="session")
def synthetic_page() -> Image.Image:
    """One synthetic 1200x852 MI page."""
    return render_ecg("mi", seed=7)


@pytest.fixture(scope="session")
def synthetic_jpeg(synthetic_page: Image.Image) -> bytes:
    """The synthetic page as a JPEG, like the scans users upload."""
    return encode(synthetic_page, "JPEG", quality=85)
