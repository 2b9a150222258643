"""worker.runtime: which models a worker runs, each loaded once per process on first use."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client

import worker.runtime as runtime
from classifier.models import CLASS_KEYS, Batch, Job, Prediction
from ml.inference import Classifier
from ml.models import MODELS_DIR, default_model_path


@pytest.fixture
def unloaded(monkeypatch):
    """This process has not loaded a model yet (the previous ones are restored afterwards)."""
    monkeypatch.setattr(runtime, "_classifiers", OrderedDict())


def test_no_configured_model_means_the_shipped_default(settings):
    settings.ECGSITE_MODEL = ""

    assert runtime.model_path() == default_model_path()


def test_a_model_name_means_that_shipped_model(settings):
    settings.ECGSITE_MODEL = "cnn-v1"

    assert runtime.model_path() == MODELS_DIR / "cnn-v1.keras"


def test_a_keras_path_is_used_as_given(settings):
    settings.ECGSITE_MODEL = "/srv/models/retrained.keras"

    assert runtime.model_path() == Path("/srv/models/retrained.keras")


def test_concurrent_first_calls_load_the_model_once(unloaded, monkeypatch):
    loads = []

    def slow_load(path):
        loads.append(path)
        time.sleep(0.05)  # long enough for every thread to arrive while the first loads
        return SimpleNamespace(name="stub", architecture="stub", device="CPU")

    monkeypatch.setattr(Classifier, "load", staticmethod(slow_load))
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(runtime.get_classifier())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loads) == 1
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_the_configured_model_path_is_what_gets_loaded(unloaded, monkeypatch, settings):
    settings.ECGSITE_MODEL = "cnn-v1"
    loads = []
    monkeypatch.setattr(
        Classifier,
        "load",
        staticmethod(
            lambda path: loads.append(path) or SimpleNamespace(name="s", architecture="s", device="CPU")
        ),
    )

    runtime.get_classifier()

    assert loads == [MODELS_DIR / "cnn-v1.keras"]


def _stub_loads(monkeypatch) -> list[Path]:
    """Classifier.load records each path and returns a stub named after the file."""
    loads: list[Path] = []

    def load(path):
        loads.append(path)
        return SimpleNamespace(name=Path(path).stem, architecture="stub", device="CPU")

    monkeypatch.setattr(Classifier, "load", staticmethod(load))
    return loads


def test_a_named_model_loads_that_shipped_model_file(unloaded, monkeypatch, settings):
    settings.ECGSITE_MODEL = ""
    loads = _stub_loads(monkeypatch)

    classifier = runtime.get_classifier("cnn-v2")

    assert loads == [MODELS_DIR / "cnn-v2.keras"]
    assert classifier.name == "cnn-v2"


def test_each_model_is_loaded_once_and_kept_beside_the_default(unloaded, monkeypatch, settings):
    settings.ECGSITE_MODEL = ""
    loads = _stub_loads(monkeypatch)

    default = runtime.get_classifier()
    other = runtime.get_classifier("cnn-v2")

    assert runtime.get_classifier() is default
    assert runtime.get_classifier("cnn-v2") is other
    assert len(loads) == 2


def test_naming_the_default_model_finds_the_one_already_loaded(unloaded, monkeypatch, settings):
    settings.ECGSITE_MODEL = "cnn-v1"
    loads = _stub_loads(monkeypatch)

    assert runtime.get_classifier("cnn-v1") is runtime.get_classifier()
    assert loads == [MODELS_DIR / "cnn-v1.keras"]


def test_the_least_recently_used_model_is_unloaded_past_the_limit(unloaded, monkeypatch, settings):
    monkeypatch.setattr(runtime, "MAX_LOADED_MODELS", 2)
    loads = _stub_loads(monkeypatch)

    runtime.get_classifier("a")
    runtime.get_classifier("b")
    runtime.get_classifier("a")  # b is now the least recently used
    runtime.get_classifier("c")
    runtime.get_classifier("a")
    runtime.get_classifier("b")

    assert [path.stem for path in loads] == ["a", "b", "c", "b"]


def test_model_identity_carries_what_the_database_records(fake_classifier):
    identity = runtime.model_identity(fake_classifier)

    assert (identity.name, identity.architecture, identity.file_sha256) == ("fake-v1", "fake", "0" * 64)
    assert identity.card == {"metrics": {"macro_f1": 0.5}}


# The shipped model itself (TensorFlow): slow.


@pytest.fixture(scope="session")
def shipped_model():
    """The shipped default model, loaded once per test run through get_classifier()."""
    saved = runtime._classifiers
    runtime._classifiers = OrderedDict()
    try:
        return runtime.get_classifier()
    finally:
        runtime._classifiers = saved  # other tests keep whatever they had


@pytest.fixture
def real_classifier(shipped_model, monkeypatch):
    """This process has loaded the shipped model, as a worker has after its first job."""
    monkeypatch.setattr(runtime, "_classifiers", OrderedDict({runtime.model_path(): shipped_model}))
    return shipped_model


@pytest.mark.slow
def test_get_classifier_loads_the_shipped_default_model(real_classifier):
    import hashlib

    assert real_classifier.file_sha256 == hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert real_classifier.device


@pytest.mark.slow
def test_get_classifier_returns_the_loaded_model_without_loading_again(real_classifier, monkeypatch):
    def no_second_load(path):
        raise AssertionError("the model was loaded a second time")

    monkeypatch.setattr(Classifier, "load", staticmethod(no_second_load))

    assert runtime.get_classifier() is real_classifier
    assert runtime.get_classifier() is real_classifier


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_synthetic_ecg_upload_is_classified_by_the_shipped_model(
    real_classifier, owner, make_upload, ecg_jpeg
):
    client = Client()
    client.force_login(owner)

    response = client.post(
        "/upload/", {"images": [make_upload("ecg.png"), make_upload("ecg.jpg", ecg_jpeg, "image/jpeg")]}
    )

    assert response.status_code == 302
    batch = Batch.objects.get()
    assert list(batch.jobs.values_list("status", flat=True)) == [Job.Status.SUCCEEDED] * 2
    for prediction in Prediction.objects.filter(job__batch=batch):
        assert set(prediction.probabilities) == set(CLASS_KEYS)
        assert math.isclose(sum(prediction.probabilities.values()), 1.0, abs_tol=1e-3)
        assert prediction.label == real_classifier.decision.label_of(prediction.probabilities)
        assert prediction.model_version.name == real_classifier.name
        assert prediction.inference_ms > 0
    assert batch.completed is not None


# TensorFlow's threads: each process its share of the cores it may run on


def test_tensorflow_threads_are_the_workers_share_of_its_cores(settings, monkeypatch):
    settings.ECGSITE_TF_THREADS = 0
    monkeypatch.setattr(runtime, "usable_cores", lambda: 8)
    monkeypatch.setattr(runtime, "_concurrency", 1)
    assert runtime.tensorflow_threads() == 8
    runtime.set_concurrency(4)  # celery worker --concurrency 4: four processes share the 8 cores
    assert runtime.tensorflow_threads() == 2
    runtime.set_concurrency(16)
    assert runtime.tensorflow_threads() == 1  # never none


def test_ecgsite_tf_threads_overrides_the_share(settings, monkeypatch):
    settings.ECGSITE_TF_THREADS = 3
    monkeypatch.setattr(runtime, "_concurrency", 2)
    assert runtime.tensorflow_threads() == 3


def test_the_celery_workers_concurrency_is_recorded_before_its_pool_forks(monkeypatch):
    from celery.signals import worker_init

    from worker.tasks import share_the_cores

    assert share_the_cores in [ref() for _, ref in worker_init.receivers]  # connected

    class Worker:  # what Celery sends: its WorkController
        concurrency = 3

    monkeypatch.setattr(runtime, "_concurrency", 1)
    share_the_cores(sender=Worker())
    assert runtime._concurrency == 3
