"""Shared actors and helpers.

Actors: `owner` uploads batches; `other_user` must never see them; `staff` may use the admin.
Images come from the project's own generator (ml.synthetic), never from the real data set.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from classifier.models import CLASS_KEYS
from worker.runtime import ModelStatus

PASSWORD = "correct-horse-battery-staple"


def verified_user(email: str, *, superuser: bool = False, password: str = PASSWORD) -> User:
    """A user whose address is confirmed, as after following allauth's link: only such an
    account may upload, see results or use a token (accounts.verification)."""
    from allauth.account.models import EmailAddress

    create = User.objects.create_superuser if superuser else User.objects.create_user
    user = create(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def owner(db: None) -> User:
    return verified_user("alice@example.com")


@pytest.fixture
def other_user(db: None) -> User:
    return verified_user("bob@example.com")


@pytest.fixture
def staff(db: None) -> User:
    return verified_user("charlie@example.com", superuser=True)


# Half the scans' 1200x852: the classifier and its upload guard (ml.guard) take any resolution of
# the layout, and small pages keep decoding, guarding and re-encoding in every upload test cheap.
TEST_PAGE_SIZE = (600, 426)


@functools.lru_cache(maxsize=16)
def _ecg_page(label: str, seed: int, size: tuple[int, int]) -> Image.Image:
    from ml.synthetic import render_ecg

    return render_ecg(label, seed, width=size[0], height=size[1])


def render_ecg_bytes(
    label: str = "normal",
    seed: int = 0,
    image_format: str = "PNG",
    *,
    size: tuple[int, int] = TEST_PAGE_SIZE,
    mode: str = "RGB",
    transpose: Image.Transpose | None = None,
    **save_options: object,
) -> bytes:
    """A synthetic 12-lead printout (the upload guard accepts it), encoded as the given format.

    `mode` converts it (e.g. "LA"); `transpose` stores it turned, as a camera would with an EXIF
    orientation passed in `save_options`.
    """
    image = _ecg_page(label, seed, size).convert(mode)
    if transpose is not None:
        image = image.transpose(transpose)
    out = io.BytesIO()
    image.save(out, format=image_format, **save_options)
    return out.getvalue()


def render_non_ecg_bytes(kind: str = "photo", seed: int = 0, image_format: str = "PNG") -> bytes:
    """An image the upload guard refuses (ml.nonecg: photo, text_page, blank_page, ...)."""
    from ml.nonecg import render_non_ecg

    out = io.BytesIO()
    render_non_ecg(kind, seed).save(out, format=image_format)
    return out.getvalue()


@pytest.fixture(scope="session")
def ecg_png() -> bytes:
    return render_ecg_bytes("normal", 0, "PNG")


@pytest.fixture(scope="session")
def ecg_jpeg() -> bytes:
    return render_ecg_bytes("abnormal", 1, "JPEG")


@pytest.fixture(scope="session")
def text_page_png() -> bytes:
    """A landscape page of text: no ECG grid and no trace rows, so the upload guard refuses it."""
    return render_non_ecg_bytes("letterhead", 0, "PNG")


@pytest.fixture
def make_upload(ecg_png: bytes) -> Callable[..., SimpleUploadedFile]:
    """An uploaded file as a view receives it; defaults to a valid synthetic ECG PNG."""

    def make(name: str = "ecg.png", content: bytes | None = None, content_type: str = "image/png"):
        return SimpleUploadedFile(name, ecg_png if content is None else content, content_type=content_type)

    return make


@dataclass
class FakePrediction:
    label: str
    probabilities: dict[str, float]
    inference_ms: float = 12.5


@dataclass
class FakeClassifier:
    """Stands in for ml.inference.Classifier where the real network would only slow a test."""

    name: str = "fake-v1"
    architecture: str = "fake"
    file_sha256: str = "0" * 64
    device: str = "CPU"
    card: dict = field(default_factory=lambda: {"metrics": {"macro_f1": 0.5}})
    label: str = "mi"
    calls: int = 0
    error: Exception | None = None

    def predict(self, images: Sequence[bytes]) -> list[FakePrediction]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        probabilities = {key: 0.1 for key in CLASS_KEYS}
        probabilities[self.label] = 0.7
        return [FakePrediction(self.label, dict(probabilities)) for _ in images]


UNAVAILABLE = ModelStatus("unavailable", "broken-v1", "the model 'broken-v1' cannot run: /srv/x.keras")


@pytest.fixture
def classification_unavailable(settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """The embedded default whose worker found that its model cannot run; returns its name."""
    import worker.runtime

    settings.ECGSITE_TASK_RUNNER = "embedded"
    monkeypatch.setattr(worker.runtime, "_status", UNAVAILABLE)
    return UNAVAILABLE.model


@pytest.fixture
def fake_classifier(monkeypatch: pytest.MonkeyPatch) -> FakeClassifier:
    """Makes the worker use one FakeClassifier, whatever model a job names, instead of TensorFlow."""
    from collections import OrderedDict

    import worker.runtime

    fake = FakeClassifier()
    monkeypatch.setattr(worker.runtime, "_classifiers", OrderedDict())
    monkeypatch.setattr(worker.runtime, "_load", lambda path: fake)
    return fake


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the throwaway media folder that tests/settings.py made for this run."""
    import shutil

    from django.conf import settings

    media_root = str(getattr(settings, "MEDIA_ROOT", ""))
    if "ecgsite-test-media-" in media_root:
        shutil.rmtree(media_root, ignore_errors=True)
