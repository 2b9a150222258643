"""Load a trained model once and classify ECG page images with it.

TensorFlow is imported only when a ``Classifier`` is loaded, never at import time of this
module's callers' parents: TF is not fork-safe, so workers load after they fork.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml import representations
from ml.calibration import logits_from_probabilities, softmax
from ml.decision import ARGMAX, DecisionRule, rule_from_card
from ml.device import configure_tensorflow
from ml.explain import Explainer, explainable
from ml.labels import CLASSES
from ml.models import default_model_path, read_card
from ml.preprocess import MAX_PIXELS, decode_page
from ml.representations import Inputs
from ml.synthetic import render_ecg


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable, or does not match its card or our classes."""


class ModelSelfTestError(ModelLoadError):
    """The model loaded but could not classify a page the project renders itself."""


# The self-test's page: a synthetic normal ECG (``ml.synthetic``), the same on every machine.
SELF_TEST_LABEL, SELF_TEST_SEED = "normal", 0


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one image."""

    label: str  # one of CLASSES: the card's decision rule applied to the probabilities
    probabilities: dict[str, float]  # exactly the CLASSES keys, summing to 1
    inference_ms: float  # this image's share of the batch forward pass plus its preprocessing


@dataclass(frozen=True)
class PageInputs:
    """One page read for a model (``Classifier.read_page``): the page, decoded once, and the
    model's inputs built from it, with the milliseconds that took."""

    image: Image.Image
    inputs: Inputs
    preprocess_ms: float
    photographed: bool = False  # straightened from a photo (``ml.rectify``): the card's photo rule


def error_summary(error: BaseException) -> str:
    """``Type: the line that says what went wrong``. TensorFlow's messages open with "Graph
    execution error:" and a stack; the cause is the line before the failing node (``[[...]]``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    node = next((i for i, line in enumerate(lines) if line.startswith("[[")), None)
    cause = lines[node - 1] if node else (lines[0] if lines else "")
    cause = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", cause)
    return f"{type(error).__name__}: {cause}" if cause else type(error).__name__


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
        representation: str = "page",
        temperature: float = 1.0,
        decision: DecisionRule = ARGMAX,
        decision_photos: DecisionRule | None = None,
    ) -> None:
        self._model = model
        self.representation = representation
        self.temperature = temperature
        self.decision = decision
        self.decision_photos = decision if decision_photos is None else decision_photos
        self._forward = forward
        self.name = name
        self.architecture = architecture
        self.file_sha256 = file_sha256
        self.card = card
        self.device = device
        self._explainer: Any = None  # built on the first explanation (a compiled function)

    def __repr__(self) -> str:
        return f"Classifier(name={self.name!r}, architecture={self.architecture!r}, device={self.device!r})"

    @classmethod
    def load(cls, model_path: str | Path | None = None) -> Classifier:
        """Load ``model_path`` (default: the shipped default model) and warm it up.

        1. Check the file exists and, when a card (``<name>.json``) lies beside it, that
           the card's sha256 and class order match; a mismatch raises ``ModelLoadError``.
           The card names the input representation (default ``page``), the calibration
           temperature (default 1: the softmax as it is) and the decision rule that turns
           calibrated probabilities into a label (default: the argmax; ``ml.decision``).
        2. Configure TensorFlow (GPU memory growth) and load the Keras model; its inputs
           must have the representation's shapes, and every layer must run on TensorFlow's
           plain kernels (``ml.network.unsupported_operations``), so a model that would work
           only where oneDNN is on is refused on every machine, not just on the others.
        3. Wrap the forward pass in a ``tf.function`` with a fixed input signature (no
           retracing per batch size) and prove it with ``self_test``: one page the project
           renders, classified end to end (this also warms it up for the first request).
           A failure raises ``ModelSelfTestError`` saying why.
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
        try:
            spec = representations.get(card.get("input", {}).get("representation", "page"))
        except ValueError as error:
            raise ModelLoadError(f"{path}: {error}") from None
        temperature = float(card.get("calibration", {}).get("temperature", 1.0))
        if not temperature > 0:
            raise ModelLoadError(f"{path}: the card's temperature must be > 0, not {temperature}.")
        try:
            decision = rule_from_card(card)
            decision_photos = rule_from_card(card, photographed=True)
        except ValueError as error:
            raise ModelLoadError(f"{path}: {error}") from None

        device = configure_tensorflow()
        # TensorFlow is imported here, at load, never with this module (see the docstring).
        import keras
        import tensorflow as tf

        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"Could not load {path}: {error}") from error
        model_shapes = {tensor.name.split(":")[0]: tuple(tensor.shape[1:]) for tensor in model.inputs}
        expected = dict(spec.shapes)
        if len(expected) == 1:  # a one-input model is fed its array whatever the layer's name
            model_shapes = dict(zip(expected, model_shapes.values(), strict=False))
        if model_shapes != expected or model.output_shape[-1] != len(CLASSES):
            raise ModelLoadError(
                f"{path} maps {model_shapes} to {model.output_shape}; its {spec.name!r} inputs "
                f"need {expected} to (None, {len(CLASSES)})."
            )
        from ml.network import unsupported_operations  # imports Keras: lazy, as above

        problems = unsupported_operations(model)
        if problems:
            raise ModelLoadError(
                f"{path} cannot run on TensorFlow's plain kernels: {'; '.join(problems)}. "
                "Carry its weights onto a graph that can with `python -m ml.rebuild`."
            )
        signature = {name: tf.TensorSpec((None, *shape), tf.float32) for name, shape in expected.items()}

        @tf.function(input_signature=[signature])
        def forward(batch: dict[str, tf.Tensor]) -> tf.Tensor:
            return model(next(iter(batch.values())) if len(batch) == 1 else batch, training=False)

        classifier = cls(
            model=model,
            forward=forward,
            name=str(card.get("name", path.stem)),
            architecture=str(card.get("architecture", "unknown")),
            file_sha256=file_sha256,
            card=card,
            device=device,
            representation=spec.name,
            temperature=temperature,
            decision=decision,
            decision_photos=decision_photos,
        )
        classifier.self_test()
        return classifier

    def self_test(self) -> Prediction:
        """Classify a synthetic page end to end and check the answer is well formed.

        Raises ``ModelSelfTestError`` with the reason when the forward pass fails (a kernel
        this machine lacks, a broken file) or gives something that is not four probabilities.
        """
        page = io.BytesIO()
        render_ecg(SELF_TEST_LABEL, SELF_TEST_SEED).save(page, format="PNG")
        try:
            prediction = self.predict([page.getvalue()])[0]
        except Exception as error:  # any failure here means the model cannot serve
            raise ModelSelfTestError(
                f"{self.name} failed its self-test on {self.device}: {error_summary(error)}"
            ) from error
        values = np.array(list(prediction.probabilities.values()))
        if not (np.isfinite(values).all() and abs(values.sum() - 1) < 1e-6 and (values >= 0).all()):
            raise ModelSelfTestError(
                f"{self.name} failed its self-test on {self.device}: it answered {prediction.probabilities}, "
                "not four probabilities that sum to 1."
            )
        return prediction

    def read_page(
        self,
        data: bytes,
        *,
        min_trace_width: int = 0,
        max_pixels: int = MAX_PIXELS,
        straighten: bool = True,
        photographed: bool = False,
    ) -> PageInputs:
        """Decode image ``data`` once, at the larger of the width this model reads and
        ``min_trace_width`` (a caller that reads the page too, such as the digitiser), and
        build this model's inputs from it; raises ``InvalidImageError`` for a bad image.
        ``straighten=False`` skips looking for a photographed page (``ml.rectify``): for a page
        the upload path has straightened already, which says with ``photographed`` whether it
        was a photo (the page is then labelled by the card's photo rule, ``ml.decision``)."""
        spec = representations.get(self.representation)
        start = time.perf_counter()
        decoded = decode_page(
            data,
            min_trace_width=max(spec.min_trace_width, min_trace_width),
            max_pixels=max_pixels,
            straighten=straighten,
        )
        inputs = spec.build(decoded.image)
        photographed = photographed or decoded.page_corners is not None
        return PageInputs(decoded.image, inputs, (time.perf_counter() - start) * 1000, photographed)

    @property
    def explains(self) -> bool:
        """Whether this model's predictions get an explanation (``ml.explain``: the hybrids)."""
        return self.representation != "page" and explainable(self._model)

    def explain(self, pages: Sequence[PageInputs], predictions: Sequence[Prediction]) -> list[dict | None]:
        """Which lead and seconds drove each prediction (``ml.explain.Explanation.as_dict``), or
        None for each page when this model is not explained."""
        if not pages or not self.explains:
            return [None] * len(pages)
        if self._explainer is None:
            self._explainer = Explainer(self._model)
        inputs = representations.stack([page.inputs for page in pages])
        labels = [CLASSES.index(prediction.label) for prediction in predictions]
        return [explanation.as_dict() for explanation in self._explainer.explain(inputs, labels)]

    def classify(self, pages: Sequence[PageInputs]) -> list[Prediction]:
        """Classify pages read by ``read_page`` in one forward pass."""
        if not pages:
            return []
        return self.predict_inputs(
            representations.stack([page.inputs for page in pages]),
            [page.preprocess_ms for page in pages],
            [page.photographed for page in pages],
        )

    def predict(self, images: Sequence[bytes]) -> list[Prediction]:
        """Classify image bytes as one batch; raises ``InvalidImageError`` for a bad image."""
        return self.classify([self.read_page(data) for data in images])

    def predict_inputs(
        self,
        inputs: Inputs,
        preprocess_ms: Sequence[float] | None = None,
        photographed: Sequence[bool] | None = None,
    ) -> list[Prediction]:
        """Classify a batch already turned into this model's inputs (``self.representation``),
        adding each image's measured preprocessing time when given; ``photographed`` says which
        pages were straightened from a photo, which the card's photo rule labels (default none)."""
        expected = representations.get(self.representation).shapes
        shapes = {name: tuple(np.shape(array)[1:]) for name, array in inputs.items()}
        if shapes != expected:
            raise ValueError(f"inputs must have shapes {expected} after the batch axis. Received: {shapes}")
        n = representations.batch_size(inputs)
        preprocess_ms = [0.0] * n if preprocess_ms is None else preprocess_ms
        if len(preprocess_ms) != n:
            raise ValueError("'preprocess_ms' needs one entry per image.")
        photographed = [False] * n if photographed is None else list(photographed)
        if len(photographed) != n:
            raise ValueError("'photographed' needs one entry per image.")
        if n == 0:
            return []
        return self._run(
            {name: np.asarray(array, np.float32) for name, array in inputs.items()},
            preprocess_ms,
            photographed,
        )

    def _run(
        self, inputs: Inputs, preprocess_ms: Sequence[float], photographed: Sequence[bool]
    ) -> list[Prediction]:
        start = time.perf_counter()
        outputs = np.asarray(self._forward(inputs), dtype=np.float64)
        model_ms = (time.perf_counter() - start) * 1000 / len(outputs)
        # Temperature scaling (the card's, fitted out of fold); also renormalises in float64,
        # as a float32 softmax sums to 1 only within ~1e-7.
        outputs = softmax(logits_from_probabilities(outputs), self.temperature)
        labels = np.where(photographed, self.decision_photos.labels(outputs), self.decision.labels(outputs))
        predictions = []
        for row, label, extra_ms in zip(outputs, labels, preprocess_ms, strict=True):
            predictions.append(
                Prediction(
                    label=CLASSES[int(label)],
                    probabilities={c: float(p) for c, p in zip(CLASSES, row, strict=True)},
                    inference_ms=round(model_ms + extra_ms, 3),
                )
            )
        return predictions
