"""worker.tasks.classify with the fake classifier: claim, classify, record, report, exactly once."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from celery.exceptions import SoftTimeLimitExceeded
from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import reverse

from classifier import services
from classifier.models import CLASS_KEYS, Batch, Job, ModelVersion, Prediction
from ml.preprocess import InvalidImageError
from tests.classifier.factories import BatchFactory, JobFactory
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner, name="Ward 3")


@pytest.fixture
def job(batch) -> Job:
    return JobFactory(batch=batch)


def _run(job: Job, task_id: str | None = None) -> None:
    classify.apply(args=[job.pk], task_id=task_id or job.task_id)


def _types(sent) -> list[str]:
    return [event_type for _, event_type, _ in sent]


def test_a_successful_run_records_the_prediction_and_succeeds_the_job(job, fake_classifier, sent):
    _run(job)

    job.refresh_from_db()
    prediction = Prediction.objects.get(job=job)
    assert job.status == Job.Status.SUCCEEDED
    assert (job.attempts, job.error) == (1, "")
    assert prediction.label == "mi"
    assert set(prediction.probabilities) == set(CLASS_KEYS)
    assert prediction.probabilities["mi"] == pytest.approx(0.7)
    assert prediction.inference_ms == 12.5
    assert (prediction.model_version.name, job.model_version) == ("fake-v1", prediction.model_version)


def test_the_model_version_is_registered_from_the_loaded_model(job, fake_classifier, sent):
    _run(job)

    version = ModelVersion.objects.get()
    assert (version.name, version.architecture, version.file_sha256) == ("fake-v1", "fake", "0" * 64)
    assert (version.metrics["macro_f1"], version.metrics["source"]) == (0.5, "card metrics")


def test_the_classifier_gets_the_stored_image_bytes(job, fake_classifier, sent, monkeypatch):
    seen: list[bytes] = []
    real_read = fake_classifier.read_page
    monkeypatch.setattr(
        fake_classifier, "read_page", lambda data, **options: seen.append(data) or real_read(data, **options)
    )

    _run(job)

    with job.image.open("rb") as stored:
        assert seen == [stored.read()]


def test_a_job_uploaded_as_a_photo_reaches_the_classifier_as_one_for_its_photo_rule(
    batch, fake_classifier, sent
):
    """The stored page is straightened already; the job says it was a photo (ml.decision)."""
    scan, photo = JobFactory(batch=batch), JobFactory(batch=batch, photographed=True)

    _run(scan)
    _run(photo)

    assert fake_classifier.photographed == [False, True]


def test_running_the_task_twice_for_a_job_keeps_one_prediction_and_classifies_once(
    job, fake_classifier, sent
):
    _run(job)
    _run(job)  # the same delivery again
    _run(job, task_id="another-delivery")

    assert Prediction.objects.filter(job=job).count() == 1
    assert fake_classifier.calls == 1
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)


def test_a_job_owned_by_another_running_delivery_is_left_alone(job, fake_classifier, sent):
    services.job_claim(job_id=job.pk, task_id="first-delivery")

    _run(job, task_id="second-delivery")

    job.refresh_from_db()
    assert (job.status, job.task_id) == (Job.Status.RUNNING, "first-delivery")
    assert fake_classifier.calls == 0


def test_an_invalid_image_fails_the_job_with_the_classifiers_message(job, fake_classifier, sent):
    fake_classifier.error = InvalidImageError("is too small (40x30 pixels).")

    _run(job)

    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.FAILED, "The file is too small (40x30 pixels).")
    assert job.finished is not None
    assert not Prediction.objects.exists()


def test_a_classification_over_the_time_limit_fails_the_job(job, fake_classifier, sent):
    fake_classifier.error = SoftTimeLimitExceeded()

    _run(job)

    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.FAILED, "Classification took too long and was stopped.")


def test_a_redelivery_after_the_last_attempt_fails_the_job_without_classifying(
    job, fake_classifier, sent, settings
):
    settings.ECGSITE_MAX_ATTEMPTS = 1
    services.job_claim(job_id=job.pk, task_id=job.task_id)  # the first attempt, whose worker died

    _run(job)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "after 1 attempts" in job.error
    assert fake_classifier.calls == 0
    assert "batch.completed" in _types(sent)


def test_database_errors_are_retried_with_bounded_backoff():
    assert set(classify.autoretry_for) == {OperationalError, InterfaceError}
    assert classify.max_retries == 5
    assert classify.retry_backoff and classify.retry_backoff_max == 60
    assert classify.acks_late is True
    assert classify.time_limit > classify.soft_time_limit


def test_a_database_error_is_retried_and_the_job_then_succeeds(job, fake_classifier, sent, monkeypatch):
    real_claim = services.job_claim
    calls = []

    def flaky_claim(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real_claim(**kwargs)

    monkeypatch.setattr(services, "job_claim", flaky_claim)

    _run(job)

    assert len(calls) == 2
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1)


def test_a_classifier_error_that_is_not_transient_is_not_retried(job, fake_classifier, sent):
    fake_classifier.error = InvalidImageError("is not a JPEG or PNG image.")

    _run(job)

    assert fake_classifier.calls == 1


def test_an_unexpected_error_fails_the_job_with_a_plain_message_instead_of_leaving_it_running(
    job, fake_classifier, sent
):
    fake_classifier.error = RuntimeError("tensor shape mismatch")

    _run(job)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "An internal error stopped the classification. It has been logged."
    assert "tensor shape" not in job.error
    assert not Prediction.objects.filter(job=job).exists()


# Events and the completion email


def test_the_owner_is_told_the_job_is_running_and_then_its_result(job, owner, fake_classifier, sent):
    _run(job)

    job_events = [payload for user_id, event_type, payload in sent if event_type == "job.updated"]
    assert {user_id for user_id, _, _ in sent} == {owner.pk}
    assert [payload["status"] for payload in job_events] == ["running", "succeeded"]
    final = job_events[-1]
    assert (final["id"], final["label"], final["model_version"]) == (job.pk, "mi", "fake-v1")
    assert final["probabilities"] == pytest.approx(
        {"normal": 0.1, "mi": 0.7, "history_mi": 0.1, "abnormal": 0.1}
    )


def test_a_failed_job_event_carries_its_error(job, fake_classifier, sent):
    fake_classifier.error = InvalidImageError("is empty.")

    _run(job)

    final = [payload for _, event_type, payload in sent if event_type == "job.updated"][-1]
    assert (final["status"], final["error"], final["label"]) == ("failed", "The file is empty.", None)


def test_batch_completion_is_announced_and_emailed_exactly_once(
    batch, owner, fake_classifier, sent, mailoutbox, settings
):
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 1  # one job per task, so the first leaves the batch open
    first, second = JobFactory(batch=batch), JobFactory(batch=batch)

    _run(first)
    assert "batch.completed" not in _types(sent)
    assert mailoutbox == []

    _run(second)
    _run(second)  # a duplicate delivery after completion
    _run(first, task_id="late-redelivery")

    completed = [payload for _, event_type, payload in sent if event_type == "batch.completed"]
    assert len(completed) == 1
    assert (completed[0]["id"], completed[0]["status"], completed[0]["total"]) == (batch.pk, "completed", 2)
    assert len(mailoutbox) == 1
    batch.refresh_from_db()
    assert batch.completed is not None


def test_the_completion_email_goes_to_the_owner_with_counts_and_a_link(
    batch, owner, fake_classifier, sent, mailoutbox, settings
):
    settings.ECGSITE_SITE_URL = "https://ecg.example.org/"
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 1
    good, bad = JobFactory(batch=batch), JobFactory(batch=batch)
    _run(good)
    fake_classifier.error = InvalidImageError("is empty.")

    _run(bad)

    (email,) = mailoutbox
    assert email.to == [owner.email]
    assert "Ward 3" in email.subject
    assert "1 image classified, 1 could not be read" in email.body
    assert "refused" not in email.body  # every file of the upload was taken
    assert "https://ecg.example.org" + reverse("classifier:batch-detail", args=[batch.pk]) in email.body


def test_the_completion_email_counts_the_files_refused_at_upload(
    batch, fake_classifier, sent, mailoutbox, settings
):
    batch.rejected = [{"name": "a.png", "reason": "is empty."}, {"name": "b.png", "reason": "is empty."}]
    batch.save(update_fields=["rejected"])

    _run(JobFactory(batch=batch))

    (email,) = mailoutbox
    assert "1 image classified." in email.body
    assert "2 files of the upload were refused and not stored: the batch page says why." in email.body


def test_a_failing_email_does_not_fail_the_job(job, fake_classifier, sent, monkeypatch):
    def broken_send_mail(**kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("classifier.notifications.send_mail", broken_send_mail)

    _run(job)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


@pytest.fixture
def layer():
    channel_layer = get_channel_layer()
    async_to_sync(channel_layer.flush)()
    yield channel_layer
    async_to_sync(channel_layer.flush)()


async def _drain(layer, channel: str) -> list[dict]:
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout=0.1))
        except TimeoutError:
            return received


def test_job_events_reach_the_owners_group_and_no_other(job, owner, other_user, fake_classifier, layer):
    owner_channel = async_to_sync(layer.new_channel)()
    other_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user-{owner.pk}", owner_channel)
    async_to_sync(layer.group_add)(f"user-{other_user.pk}", other_channel)

    _run(job)

    received = async_to_sync(_drain)(layer, owner_channel)
    assert [message["type"] for message in received] == ["job.updated", "job.updated", "batch.completed"]
    final = received[1]["payload"]
    assert (final["id"], final["status"], final["label"]) == (job.pk, "succeeded", "mi")
    assert set(final["probabilities"]) == set(CLASS_KEYS)
    assert async_to_sync(_drain)(layer, other_channel) == []


def test_a_broken_channel_layer_does_not_fail_the_job(job, fake_classifier, monkeypatch):
    class BrokenLayer:
        async def group_send(self, group, message):
            raise ConnectionError("redis is down")

    monkeypatch.setattr("classifier.events.get_channel_layer", lambda: BrokenLayer())

    _run(job)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


# The whole path, as the site runs it: upload, commit, classify.


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_batch_is_classified_once_its_transaction_commits(
    owner, make_upload, fake_classifier, mailoutbox
):
    client = Client()
    client.force_login(owner)

    response = client.post("/upload/", {"images": [make_upload("a.png"), make_upload("b.png")]})

    assert response.status_code == 302
    batch = Batch.objects.get()
    assert list(batch.jobs.values_list("status", flat=True)) == [Job.Status.SUCCEEDED] * 2
    assert Prediction.objects.filter(job__batch=batch).count() == 2
    assert batch.completed is not None
    assert len(mailoutbox) == 1
