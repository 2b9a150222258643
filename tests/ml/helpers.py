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


def unrunnable_model(folder: Path) -> Path:
    """A page model with a ``DepthwiseConv2D`` of strides (2, 1), saved with a card: it loads,
    but TensorFlow's plain kernels (no oneDNN, ARM, GPU) refuse to run it, as they did
    hybrid-v2 to v4 before ``ml.rebuild``. Built by hand: ``ml.network`` refuses to."""
    import keras

    from ml.preprocess import INPUT_SIZE

    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = keras.layers.DepthwiseConv2D(3, strides=(2, 1), padding="same", name="uneven_depthwise")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax", name="probabilities")(x)
    model_file = folder / "unrunnable.keras"
    keras.Model(inputs, outputs, name="unrunnable").save(model_file)
    write_card(model_file, {"name": "unrunnable", "architecture": "cnn", "classes": list(CLASSES)})
    return model_file


def nan_model(folder: Path) -> Path:
    """The tiny CNN with every weight NaN: it loads and runs, but answers no probabilities."""
    import keras
    import numpy as np

    model_file, card = tiny_model(folder)
    model = keras.models.load_model(model_file, compile=False)
    model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
    model.save(model_file)
    write_card(
        model_file,
        {**card, "name": "nan", "file_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest()},
    )
    return model_file
