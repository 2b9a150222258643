"""Shared actors and helpers, for every test folder (one conftest: no copies elsewhere).

Actors: `owner` (alice) uploads batches; `other_user` (bob) must never see them; `staff`
(charlie) may use the admin. Each comes as a signed-in browser client (`owner_client`, ...) and
as an API client with a token (`owner_api`, `other_api`). Images come from the project's own
generator (ml.synthetic), never from the real data set.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import api_token_create
from classifier.models import CLASS_KEYS
from ml.inference import PageInputs
from ml.preprocess import MAX_PIXELS, InvalidImageError, decode_page
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


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner: User) -> Client:
    return logged_in(owner)


@pytest.fixture
def other_client(other_user: User) -> Client:
    return logged_in(other_user)


@pytest.fixture
def staff_client(staff: User) -> Client:
    return logged_in(staff)


def token_client(user: User, key: str | None = None) -> APIClient:
    """A client that sends `Authorization: Token <key>` (a new token of `user`'s) and no session."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key or api_token_create(user=user, name='tests')[1]}")
    return client


@pytest.fixture
def owner_key(owner: User) -> str:
    return api_token_create(user=owner, name="tests")[1]


@pytest.fixture
def owner_api(owner: User, owner_key: str) -> APIClient:
    return token_client(owner, owner_key)


@pytest.fixture
def other_api(other_user: User) -> APIClient:
    return token_client(other_user)


def assert_problem(response, status: int, field: str | None = "unset") -> dict:
    """The response is RFC 9457 problem JSON with this status (and field at fault, if given)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["type"].startswith("urn:ecgsite:problem:")
    assert body["title"] and body["detail"]
    if field != "unset":
        assert body["field"] == field
    return body


@pytest.fixture(autouse=True)
def no_heartbeat_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker process's heartbeat thread (worker.heartbeat.start) would outlive its test and keep
    writing to the test database: where a test runs a worker's start-up hooks, it starts none
    (tests/worker/test_leases.py beats by hand, with beat_once)."""
    import worker.heartbeat

    monkeypatch.setattr(worker.heartbeat, "start", lambda queues: None)


@pytest.fixture(autouse=True)
def fresh_rate_counters() -> Iterator[None]:
    """allauth and the API count attempts in the cache; each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A fresh, empty MEDIA_ROOT for this test, so what is stored and removed can be checked."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, dict]]:
    """Every event pushed to a user's websocket group, as (user id, type, payload)."""
    events: list[tuple[int, str, dict]] = []
    monkeypatch.setattr("classifier.events._send_all", events.extend)
    return events


@pytest.fixture
def enqueue(monkeypatch: pytest.MonkeyPatch) -> mock.Mock:
    """Records what would be handed to the queue instead of classifying it."""
    recorder = mock.Mock()
    monkeypatch.setattr("classifier.dispatch.enqueue_classify", recorder)
    return recorder


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


def render_photo_bytes(
    label: str = "normal", seed: int = 0, *, kind: str = "desk", keep: float = 1.0, quality: int = 80
) -> bytes:
    """A phone photo (ml.photos) of a synthetic printout, as a JPEG; ``keep`` < 1 keeps only that
    share of the photo's width from the left, cutting the page through its traces."""
    import numpy as np

    from ml.photos import photograph

    photo, _ = photograph(_ecg_page(label, seed, (1200, 852)), np.random.default_rng(seed), kind)
    photo = photo.crop((0, 0, round(photo.width * keep), photo.height))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=quality)
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


def fixed_explanation() -> dict:
    """An explanation as ``ml.explain`` stores it, its map heaviest on V2 and V3 at 5.0-7.5 s."""
    from ml import explain

    weights = np.full((explain.ROWS, explain.STEPS), 1.0)
    weights[1:3, 16:24] = 12.0  # rows 2 and 3 (II, aVL, V2, V5 / III, aVF, V3, V6), the third panel
    return explain.describe(weights).as_dict()


@dataclass
class FakeClassifier:
    """Stands in for ml.inference.Classifier where the real network would only slow a test."""

    name: str = "fake-v1"
    architecture: str = "fake"
    file_sha256: str = "0" * 64
    device: str = "CPU"
    card: dict = field(default_factory=lambda: {"metrics": {"macro_f1": 0.5}})
    label: str = "mi"
    calls: int = 0  # forward passes
    pages_read: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    photographed: list[bool] = field(default_factory=list)  # of each page classified, in order
    error: Exception | None = None
    explanation_error: Exception | None = None

    def read_page(
        self,
        data: bytes,
        *,
        min_trace_width: int = 0,
        max_pixels: int = MAX_PIXELS,
        straighten: bool = True,
        photographed: bool = False,
    ) -> PageInputs:
        """Decodes for real (the worker digitises the page); an ``InvalidImageError`` in
        ``error`` is raised here, as the real one raises it for a bad page."""
        self.pages_read += 1
        if isinstance(self.error, InvalidImageError):
            raise self.error
        decoded = decode_page(
            data, min_trace_width=min_trace_width, max_pixels=max_pixels, straighten=straighten
        )
        photographed = photographed or decoded.page_corners is not None
        return PageInputs(image=decoded.image, inputs={}, preprocess_ms=1.0, photographed=photographed)

    def classify(self, pages: Sequence[PageInputs]) -> list[FakePrediction]:
        self.calls += 1
        self.batch_sizes.append(len(pages))
        self.photographed.extend(page.photographed for page in pages)
        if self.error is not None:
            raise self.error
        probabilities = {key: 0.1 for key in CLASS_KEYS}
        probabilities[self.label] = 0.7
        return [FakePrediction(self.label, dict(probabilities)) for _ in pages]

    def explain(
        self, pages: Sequence[PageInputs], predictions: Sequence[FakePrediction]
    ) -> list[dict | None]:
        """The real ``ml.explain.describe`` of a fixed map that puts most weight on V2 and V3 over
        5.0-7.5 s; ``explanation_error`` is raised instead when set."""
        if self.explanation_error is not None:
            raise self.explanation_error
        return [fixed_explanation() for _ in pages]


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
