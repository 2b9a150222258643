"""worker.embedded: the default's worker thread runs the same tasks, by name, and picks up what a
crash left.

These tests need committed rows (the worker thread has its own connection), hence transaction=True.
pytest-django's SQLite test database is in memory with a shared cache, which every thread's
connection opens by name, so the worker thread sees the same database.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from django.test import Client

from classifier import dispatch
from classifier.models import Batch, Job, Prediction
from tests.classifier.factories import BatchFactory, JobFactory
from worker.embedded import EmbeddedRunner

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 30


@pytest.fixture
def runner():
    embedded = EmbeddedRunner()
    yield embedded
    embedded._executor.shutdown(wait=True)


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


def test_submit_runs_the_job_on_the_worker_thread(runner, batch, fake_classifier, monkeypatch):
    job = JobFactory(batch=batch)
    threads: list[str] = []
    real_classify = fake_classifier.classify
    monkeypatch.setattr(
        fake_classifier,
        "classify",
        lambda pages: threads.append(threading.current_thread().name) or real_classify(pages),
    )

    future = runner.submit(dispatch.TASK_CLASSIFY, [job.pk], task_id=job.task_id)

    assert isinstance(future, Future)
    assert future.result(timeout=WAIT_SECONDS) is None
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert Prediction.objects.filter(job=job).count() == 1
    assert len(threads) == 1 and threads[0].startswith("embedded-worker")


def test_a_job_that_raises_on_the_worker_thread_does_not_stop_the_next(
    runner, batch, fake_classifier, monkeypatch
):
    broken = JobFactory(batch=batch)
    real_classify = fake_classifier.classify
    calls = []

    def classify_failing_once(pages):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("GPU fell over")
        return real_classify(pages)

    monkeypatch.setattr(fake_classifier, "classify", classify_failing_once)
    runner.submit(dispatch.TASK_CLASSIFY, [broken.pk], task_id=broken.task_id).result(timeout=WAIT_SECONDS)
    fine = JobFactory(batch=batch)  # queued after the failure: not in the failed task's batch

    runner.submit(dispatch.TASK_CLASSIFY, [fine.pk], task_id=fine.task_id).result(timeout=WAIT_SECONDS)

    fine.refresh_from_db()
    assert fine.status == Job.Status.SUCCEEDED


def test_recover_unfinished_requeues_and_runs_a_job_left_running(runner, batch, fake_classifier):
    orphan = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="dead-process", attempts=1)
    waiting = JobFactory(batch=batch)

    runner.recover_unfinished().result(timeout=WAIT_SECONDS)
    # Recovery submits the jobs to the same single thread: an empty task queued after them
    # finishes only once they have run.
    runner._executor.submit(lambda: None).result(timeout=WAIT_SECONDS)

    orphan.refresh_from_db()
    waiting.refresh_from_db()
    assert (orphan.status, orphan.attempts) == (Job.Status.SUCCEEDED, 2)
    assert orphan.task_id != "dead-process"
    assert waiting.status == Job.Status.SUCCEEDED
    batch.refresh_from_db()
    assert batch.completed is not None


def test_the_embedded_queue_hands_uploads_to_the_worker_thread(
    runner, owner, make_upload, fake_classifier, settings, monkeypatch
):
    settings.ECGSITE_TASK_RUNNER = "embedded"
    monkeypatch.setitem(dispatch._local_runners, "embedded", runner)
    handed: list[dict] = []
    real_submit = runner.submit
    # The hand-off is recorded and its job run once the response is out: the in-memory SQLite
    # test database (shared cache) locks whole tables, so the request's reads after the commit
    # would meet the worker's writes ("table is locked") instead of waiting as a file database
    # does. The request itself writes nothing after the commit (batch_create audits inside it).
    monkeypatch.setattr(runner, "submit", lambda *args, **kwargs: handed.append((args, kwargs)))
    client = Client()
    client.force_login(owner)

    response = client.post("/upload/", {"images": [make_upload()]}, headers={"accept": "application/json"})

    assert response.status_code == 201
    job = Job.objects.get()
    assert handed == [(("worker.classify", [job.pk]), {"task_id": job.task_id, "countdown": 0.0})]
    real_submit(*handed[0][0], **handed[0][1]).result(timeout=WAIT_SECONDS)
    assert Job.objects.get().status == Job.Status.SUCCEEDED
