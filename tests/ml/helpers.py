"""Helpers for the ml tests."""

from __future__ import annotations

import io

from PIL import Image


def encode(image: Image.Image, image_format: str = "JPEG", **options: object) -> bytes:
    """Encode ``image`` to bytes in ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()
