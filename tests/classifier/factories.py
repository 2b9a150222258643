"""Rows for classifier tests. Images are tiny PNGs: only tests of uploads need a real ECG."""

from __future__ import annotations

import functools
import json
import uuid

import factory
from factory.django import DjangoModelFactory

from classifier.models import CLASS_KEYS, Batch, Job, ModelVersion, Prediction


def probabilities_for(label: str, top: float = 0.7) -> dict[str, float]:
    """Four probabilities summing to 1, with `top` on `label`."""
    rest = (1.0 - top) / (len(CLASS_KEYS) - 1)
    return {key: (top if key == label else rest) for key in CLASS_KEYS}


class ModelVersionFactory(DjangoModelFactory):
    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"model-v{n}")
    architecture = "hybrid"
    file_sha256 = factory.Sequence(lambda n: f"{n:064x}")


class BatchFactory(DjangoModelFactory):
    """A batch; pass `owner=` (one of the shared actors)."""

    class Meta:
        model = Batch

    name = factory.Sequence(lambda n: f"Batch {n}")


class JobFactory(DjangoModelFactory):
    """A queued job with a small stored PNG; pass `batch=`."""

    class Meta:
        model = Job

    image = factory.django.ImageField(width=96, height=68, format="PNG", filename="upload.png", color="white")
    width = 96
    height = 68
    original_name = factory.Sequence(lambda n: f"ecg-{n}.png")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    task_id = factory.LazyFunction(lambda: uuid.uuid4().hex)


class PredictionFactory(DjangoModelFactory):
    """A prediction; pass `job=` and `model_version=`."""

    class Meta:
        model = Prediction

    label = "normal"
    probabilities = factory.LazyAttribute(lambda prediction: probabilities_for(prediction.label))
    inference_ms = 10.0


@functools.lru_cache(maxsize=4)
def _page_reading_json(label: str, seed: int) -> str:
    from classifier.ecg_signal import page_reading
    from ml.preprocess import decode_image
    from tests.conftest import render_ecg_bytes

    return json.dumps(page_reading(decode_image(render_ecg_bytes(label, seed)))._asdict())


def page_signal_for(label: str = "normal", seed: int = 0) -> dict:
    """The digitised leads of a synthetic page, as the worker stores them (a fresh copy each call)."""
    return json.loads(_page_reading_json(label, seed))["signal"]


def page_measurements_for(label: str = "normal", seed: int = 0) -> dict:
    """What was measured on those leads, as the worker stores it (a fresh copy each call)."""
    return json.loads(_page_reading_json(label, seed))["measurements"]
