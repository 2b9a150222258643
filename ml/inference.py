"""Load a trained model once and classify ECG page images with it.

TensorFlow is imported only when a ``Classifier`` is loaded, never at import time of this
module's callers' parents: TF is not fork-safe, so workers load after they fork.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.labels import CLASSES
from ml.models import default_model_path, read_card
from ml.preprocess import INPUT_SIZE, preprocess_bytes

INPUT_SHAPE: tuple[int, int, int] = (INPUT_SIZE, INPUT_SIZE, 3)


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable, or does not match its card or our classes."""


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one image."""

    label: str  # one of CLASSES
    probabilities: dict[str, float]  # exactly the CLASSES keys, summing to 1
    inference_ms: float  # this image's share of the batch forward pass plus its preprocessing


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Classifier:
    """A loaded model with its card; create it with ``Classifier.load``."""

    def __init__(
        self,
        *,
        model: Any,
        forward: Any,
        name: str,
        architecture: str,
        file_sha256: str,
        card: dict[str, Any],
        device: str,
    ) -> None:
        self._model = model
        self._forward = forward
        self.name = name
        self.architecture = architecture
        self.file_sha256 = file_sha256
        self.card = card
        self.device = device

    def __repr__(self) -> str:
        return f"Classifier(name={self.name!r}, architecture={self.architecture!r}, device={self.device!r})"

    @classmethod
    def load(cls, model_path: str | Path | None = None) -> Classifier:
        """Load ``model_path`` (default: the shipped default model) and warm it up.

        1. Check the file exists and, when a card (``<name>.json``) lies beside it, that
           the card's sha256 and class order match; a mismatch raises ``ModelLoadError``.
        2. Configure TensorFlow (GPU memory growth) and load the Keras model.
        3. Wrap the forward pass in a ``tf.function`` with a fixed input signature (no
           retracing per batch size) and call it once, so the first request is not slow.
        """
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelLoadError(f"No model file at {path}.")
        card = read_card(path)
        file_sha256 = _sha256(path)
        if card.get("file_sha256") not in (None, file_sha256):
            raise ModelLoadError(
                f"{path} does not match its card: sha256 {file_sha256} != {card['file_sha256']}."
            )
        if card.get("classes") not in (None, list(CLASSES)):
            raise ModelLoadError(
                f"{path} was trained for classes {card['classes']}, expected {list(CLASSES)}."
            )

        from ml.device import configure_tensorflow

        device = configure_tensorflow()
        import keras
        import tensorflow as tf

        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"Could not load {path}: {error}") from error
        if tuple(model.input_shape[1:]) != INPUT_SHAPE or model.output_shape[-1] != len(CLASSES):
            raise ModelLoadError(
                f"{path} maps {model.input_shape} to {model.output_shape}; expected "
                f"(None, {INPUT_SIZE}, {INPUT_SIZE}, 3) to (None, {len(CLASSES)})."
            )

        @tf.function(input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)])
        def forward(batch: tf.Tensor) -> tf.Tensor:
            return model(batch, training=False)

        forward(tf.zeros((1, *INPUT_SHAPE), tf.float32))  # trace and warm up
        return cls(
            model=model,
            forward=forward,
            name=str(card.get("name", path.stem)),
            architecture=str(card.get("architecture", "unknown")),
            file_sha256=file_sha256,
            card=card,
            device=device,
        )

    def predict(self, images: Sequence[bytes]) -> list[Prediction]:
        """Classify image bytes as one batch; raises ``InvalidImageError`` for a bad image."""
        arrays = []
        preprocess_ms = []
        for data in images:
            start = time.perf_counter()
            arrays.append(preprocess_bytes(data))
            preprocess_ms.append((time.perf_counter() - start) * 1000)
        if not arrays:
            return []
        return self._run(np.stack(arrays), preprocess_ms)

    def predict_arrays(self, arrays: np.ndarray) -> list[Prediction]:
        """Classify already preprocessed float32 arrays of shape (n, 224, 224, 3)."""
        arrays = np.asarray(arrays, dtype=np.float32)
        if arrays.ndim != 4 or arrays.shape[1:] != INPUT_SHAPE:
            raise ValueError(
                f"'arrays' must have shape (n, {INPUT_SIZE}, {INPUT_SIZE}, 3). Received: shape {arrays.shape}"
            )
        if len(arrays) == 0:
            return []
        return self._run(arrays, [0.0] * len(arrays))

    def predict_preprocessed(self, arrays: np.ndarray, preprocess_ms: Sequence[float]) -> list[Prediction]:
        """Like ``predict_arrays``, adding each image's measured preprocessing time."""
        if len(preprocess_ms) != len(arrays):
            raise ValueError("'preprocess_ms' needs one entry per array.")
        if len(arrays) == 0:
            return []
        return self._run(np.asarray(arrays, dtype=np.float32), preprocess_ms)

    def _run(self, arrays: np.ndarray, preprocess_ms: Sequence[float]) -> list[Prediction]:
        start = time.perf_counter()
        outputs = np.asarray(self._forward(arrays), dtype=np.float64)
        model_ms = (time.perf_counter() - start) * 1000 / len(arrays)
        predictions = []
        for row, extra_ms in zip(outputs, preprocess_ms, strict=True):
            # float32 softmax sums to 1 only within ~1e-7; renormalise in float64.
            row = np.clip(row, 0.0, None)
            row = row / row.sum()
            predictions.append(
                Prediction(
                    label=CLASSES[int(row.argmax())],
                    probabilities={c: float(p) for c, p in zip(CLASSES, row, strict=True)},
                    inference_ms=round(model_ms + extra_ms, 3),
                )
            )
        return predictions
