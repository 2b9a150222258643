"""The worker runs a re-run job on its requested model version, every other job on the default."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest

import worker.runtime
from classifier import services
from classifier.models import Job
from classifier.presenters import job_as_dict
from classifier.selectors import jobs_get_with_predictions
from ml.models import MODELS_DIR, default_model_path
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory
from tests.conftest import FakeClassifier
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def loads(monkeypatch, settings) -> list[Path]:
    """Every model file the worker loads; each load gives a fake named after the file."""
    settings.ECGSITE_MODEL = ""
    loaded: list[Path] = []

    def load(path: Path) -> FakeClassifier:
        loaded.append(path)
        label = "normal" if path.stem == "cnn-v2" else "mi"
        return FakeClassifier(name=path.stem, file_sha256=path.stem.ljust(64, "0"), label=label)

    monkeypatch.setattr(worker.runtime, "_classifiers", OrderedDict())
    monkeypatch.setattr(worker.runtime, "_load", load)
    monkeypatch.setattr("classifier.events._send_all", lambda *args: None)
    return loaded


def _run(job: Job) -> Job:
    classify.apply(args=[job.pk], task_id=job.task_id)
    return jobs_get_with_predictions(job_ids=[job.pk])[0]


def test_a_job_without_a_requested_model_runs_on_the_default(owner, loads):
    job = _run(JobFactory(batch=BatchFactory(owner=owner)))

    assert loads == [default_model_path()]
    assert job.status == Job.Status.SUCCEEDED


def test_a_rerun_job_runs_on_its_requested_model_and_shows_the_newest_prediction(owner, staff, loads):
    job = _run(JobFactory(batch=BatchFactory(owner=owner)))
    requested = ModelVersionFactory(name="cnn-v2", file_sha256="cnn-v2".ljust(64, "0"))

    services.job_rerun(job=job, model_version=requested, actor=staff)
    job = _run(job)

    assert loads == [default_model_path(), MODELS_DIR / "cnn-v2.keras"]
    assert (job.status, job.model_version) == (Job.Status.SUCCEEDED, requested)
    assert job.predictions.count() == 2
    shown = job_as_dict(job)
    assert (shown["label"], shown["model_version"]) == ("normal", "cnn-v2")


def test_a_requested_model_whose_file_differs_from_its_registration_fails_the_job(owner, staff, loads):
    job = _run(JobFactory(batch=BatchFactory(owner=owner)))
    requested = ModelVersionFactory(name="cnn-v2", file_sha256="f" * 64)

    services.job_rerun(job=job, model_version=requested, actor=staff)
    job = _run(job)

    assert job.status == Job.Status.FAILED
    assert "internal error" in job.error
