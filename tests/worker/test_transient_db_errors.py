"""A database that blinks mid-task: the classify task retries, and nothing is ever half-written.

Each service is one transaction, so an error halfway through one leaves the job as it was; the
retry (same task id) resumes the job and records exactly one prediction.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError

from classifier import reaper, services
from classifier.models import Batch, Job, Prediction
from ml.models import ModelIdentity
from tests.classifier.factories import BatchFactory, JobFactory
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


@pytest.fixture
def job(batch) -> Job:
    return JobFactory(batch=batch)


@pytest.fixture
def quiet_events(monkeypatch) -> None:
    monkeypatch.setattr("classifier.events._send_all", lambda *args: None)


def _break_prediction_create(monkeypatch, *, times: int) -> list[int]:
    """Prediction.objects.create raises OperationalError the first `times` calls."""
    calls: list[int] = []
    real_create = Prediction.objects.create

    def create(**kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("(2013, 'Lost connection to server during query')")
        return real_create(**kwargs)

    monkeypatch.setattr(Prediction.objects, "create", create)
    return calls


def test_an_error_while_recording_the_prediction_leaves_the_job_running_with_nothing_stored(
    job, monkeypatch, fake_classifier
):
    claimed = services.job_claim(job_id=job.pk, task_id=job.task_id)
    assert claimed is not None
    _break_prediction_create(monkeypatch, times=1)
    version = services.model_version_register(
        identity=ModelIdentity(name="fake-v1", architecture="fake", file_sha256="0" * 64, card={})
    )

    with pytest.raises(OperationalError):
        services.prediction_record(
            job=claimed,
            model_version=version,
            label="mi",
            probabilities={"normal": 0.1, "mi": 0.7, "history_mi": 0.1, "abnormal": 0.1},
            inference_ms=1.0,
        )

    job.refresh_from_db()
    # The status change and the prediction went together: neither happened.
    assert (job.status, job.model_version_id, job.finished) == (Job.Status.RUNNING, None, None)
    assert not Prediction.objects.filter(job=job).exists()


def test_the_retry_after_such_an_error_resumes_the_job_and_records_one_prediction(
    job, monkeypatch, fake_classifier, quiet_events
):
    calls = _break_prediction_create(monkeypatch, times=1)

    classify.apply(args=[job.pk], task_id=job.task_id)

    job.refresh_from_db()
    assert len(calls) == 2
    assert (job.status, job.task_id) == (Job.Status.SUCCEEDED, job.task_id)
    assert Prediction.objects.filter(job=job).count() == 1
    assert fake_classifier.calls == 2


def test_a_database_down_through_every_retry_leaves_the_job_queued_for_the_reaper(
    job, monkeypatch, fake_classifier, quiet_events, settings
):
    real_claim = services.job_claim

    def claim_without_a_database(**kwargs):
        raise OperationalError('(2003, "Can\'t connect to MySQL server")')

    monkeypatch.setattr(services, "job_claim", claim_without_a_database)

    result = classify.apply(args=[job.pk], task_id=job.task_id)

    assert isinstance(result.result, OperationalError)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 0)
    # Once the database is back, the reaper hands the job to a fresh delivery.
    monkeypatch.setattr(services, "job_claim", real_claim)
    settings.ECGSITE_QUEUED_TIMEOUT_S = 0
    [(job_id, task_id)] = reaper.jobs_reap_stale().requeued
    classify.apply(args=[job_id], task_id=task_id)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)
    assert Prediction.objects.filter(job=job).count() == 1


def test_writes_that_keep_failing_after_the_claim_end_in_a_clear_failure_not_a_stuck_job(
    job, monkeypatch, fake_classifier, quiet_events, settings
):
    settings.ECGSITE_MAX_ATTEMPTS = 3
    _break_prediction_create(monkeypatch, times=100)

    classify.apply(args=[job.pk], task_id=job.task_id)

    job.refresh_from_db()
    # Each retry resumes the job and counts an attempt; the claim fails it after the last.
    assert (job.status, job.attempts) == (Job.Status.FAILED, 3)
    assert job.error == "We could not classify this image after 3 attempts. Please upload it again."
    assert not Prediction.objects.filter(job=job).exists()


def test_an_error_while_reaping_keeps_every_job_it_had_already_requeued_findable(
    batch, monkeypatch, settings
):
    settings.ECGSITE_QUEUED_TIMEOUT_S = 0
    first, second = JobFactory(batch=batch), JobFactory(batch=batch)
    real_filter = Job.objects.filter
    calls: list[int] = []

    def failing_on_the_second_job(*args, **kwargs):
        if kwargs.get("pk") == second.pk and "task_id" in kwargs:
            calls.append(1)
            raise OperationalError("server has gone away")
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(Job.objects, "filter", failing_on_the_second_job)
    with pytest.raises(OperationalError):
        reaper.jobs_reap_stale()
    monkeypatch.setattr(Job.objects, "filter", real_filter)

    assert calls == [1]
    # Both are still queued; the next run (after the timeout) finds both again.
    assert {job_id for job_id, _ in reaper.jobs_reap_stale().requeued} == {first.pk, second.pk}
