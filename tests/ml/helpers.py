"""Helpers for the ml tests."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from ml.labels import CLASSES


def encode(image: Image.Image, image_format: str = "JPEG", **options: object) -> bytes:
    """Encode ``image`` to bytes in ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def tiny_model(folder: Path) -> tuple[Path, dict[str, Any]]:
    """An untrained CNN saved as ``folder/tiny.keras`` with a minimal card beside it; returns
    the file and the card, which ``write_card`` can rewrite with extra entries."""
    from ml.network import build_model

    model_file = folder / "tiny.keras"
    build_model("cnn", seed=0).save(model_file)
    card = {
        "name": "tiny",
        "architecture": "cnn",
        "file_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "classes": list(CLASSES),
    }
    write_card(model_file, card)
    return model_file, card


def write_card(model_file: Path, card: dict[str, Any]) -> None:
    """Write ``card`` as the card beside ``model_file`` (``<name>.json``)."""
    model_file.with_suffix(".json").write_text(json.dumps(card))
