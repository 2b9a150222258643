"""worker.tasks.classify takes queued jobs in batches: one forward pass over up to
ECGSITE_CLASSIFY_BATCH_SIZE of them, still exactly once per job, a bad page failing only its own."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from classifier.models import Batch, Job, Prediction
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory
from worker import tasks
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


def _run(job: Job, task_id: str | None = None) -> None:
    classify.apply(args=[job.pk], task_id=task_id or job.task_id)


def _statuses(jobs: list[Job]) -> list[str]:
    return [Job.objects.get(pk=job.pk).status for job in jobs]


def test_one_task_classifies_the_queued_jobs_in_one_forward_pass(batch, fake_classifier, sent):
    jobs = [JobFactory(batch=batch) for _ in range(5)]

    _run(jobs[0])

    assert fake_classifier.batch_sizes == [5]
    assert _statuses(jobs) == [Job.Status.SUCCEEDED] * 5
    assert Prediction.objects.count() == 5
    assert all(Job.objects.get(pk=job.pk).attempts == 1 for job in jobs)
    # Their own messages arrive later and find nothing to do.
    for job in jobs[1:]:
        _run(job)
    assert fake_classifier.batch_sizes == [5]
    assert Prediction.objects.count() == 5


def test_every_claimed_job_is_reported_running_then_finished(batch, fake_classifier, sent):
    jobs = [JobFactory(batch=batch) for _ in range(3)]

    _run(jobs[0])

    for job in jobs:
        statuses = [p["status"] for _, kind, p in sent if kind == "job.updated" and p["id"] == job.pk]
        assert statuses == ["running", "succeeded"]
    assert [kind for _, kind, _ in sent].count("batch.completed") == 1


def test_a_task_claims_at_most_the_batch_size_and_passes_them_forward_in_chunks(
    batch, fake_classifier, sent, settings
):
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 12
    jobs = [JobFactory(batch=batch) for _ in range(15)]

    _run(jobs[0])

    chunk = tasks.FORWARD_CHUNK
    assert fake_classifier.batch_sizes == [chunk, 12 - chunk]
    assert _statuses(jobs) == [Job.Status.SUCCEEDED] * 12 + [Job.Status.QUEUED] * 3
    _run(jobs[13])  # the next message takes the rest
    assert _statuses(jobs) == [Job.Status.SUCCEEDED] * 15


def test_an_unreadable_page_fails_only_its_own_job(batch, fake_classifier, sent):
    good = [JobFactory(batch=batch) for _ in range(2)]
    bad = JobFactory(batch=batch, image=ContentFile(b"\x89PNG\r\n\x1a\n not really", name="bad.png"))
    last = JobFactory(batch=batch)

    _run(good[0])

    assert _statuses([*good, bad, last]) == [Job.Status.SUCCEEDED] * 2 + [
        Job.Status.FAILED,
        Job.Status.SUCCEEDED,
    ]
    assert Job.objects.get(pk=bad.pk).error == "The file is not a JPEG or PNG image."
    assert fake_classifier.batch_sizes == [3]


def test_jobs_for_another_model_are_left_for_their_own_task(batch, fake_classifier, sent):
    default_job = JobFactory(batch=batch)
    rerun = JobFactory(batch=batch, requested_model=ModelVersionFactory(name="cnn-v2"))

    _run(default_job)

    assert _statuses([default_job, rerun]) == [Job.Status.SUCCEEDED, Job.Status.QUEUED]
    assert fake_classifier.batch_sizes == [1]


def test_a_job_running_under_another_delivery_is_not_taken(batch, fake_classifier, sent):
    mine = JobFactory(batch=batch)
    theirs = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="other-worker", attempts=1)

    _run(mine)

    theirs.refresh_from_db()
    assert (theirs.status, theirs.task_id, theirs.attempts) == (Job.Status.RUNNING, "other-worker", 1)


def test_a_redelivered_task_resumes_every_job_it_had_claimed(batch, fake_classifier, sent):
    """The worker died mid-batch: the broker redelivers its message, under the same task id."""
    first = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="dead-task", attempts=1)
    company = [
        JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="dead-task", attempts=1) for _ in range(2)
    ]

    _run(first, task_id="dead-task")

    assert _statuses([first, *company]) == [Job.Status.SUCCEEDED] * 3
    assert [Job.objects.get(pk=job.pk).attempts for job in (first, *company)] == [2, 2, 2]
    assert Prediction.objects.count() == 3


def test_a_job_out_of_attempts_is_not_taken_as_company(batch, fake_classifier, sent, settings):
    first = JobFactory(batch=batch)
    spent = JobFactory(batch=batch, attempts=settings.ECGSITE_MAX_ATTEMPTS)

    _run(first)

    assert _statuses([first, spent]) == [Job.Status.SUCCEEDED, Job.Status.QUEUED]


def test_a_lone_job_waits_briefly_once_for_company(batch, fake_classifier, sent, settings, monkeypatch):
    settings.ECGSITE_CLASSIFY_BATCH_WAIT_MS = 50
    lone = JobFactory(batch=batch)
    waits: list[float] = []
    arriving: list[Job] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        arriving.append(JobFactory(batch=batch))  # an upload lands meanwhile

    monkeypatch.setattr(tasks.time, "sleep", sleep)

    _run(lone)

    assert waits == [0.05]
    assert fake_classifier.batch_sizes == [2]
    assert _statuses([lone, *arriving]) == [Job.Status.SUCCEEDED] * 2


def test_no_wait_when_there_is_company_already(batch, fake_classifier, sent, settings, monkeypatch):
    settings.ECGSITE_CLASSIFY_BATCH_WAIT_MS = 50
    jobs = [JobFactory(batch=batch) for _ in range(2)]
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: pytest.fail("waited with company at hand"))

    _run(jobs[0])

    assert fake_classifier.batch_sizes == [2]


def test_each_result_goes_out_as_it_is_stored_not_when_the_batch_is_done(
    batch, fake_classifier, sent, monkeypatch
):
    jobs = [JobFactory(batch=batch) for _ in range(tasks.FORWARD_CHUNK + 2)]
    succeeded_before_each_pass: list[int] = []
    real_classify = fake_classifier.classify

    def classify(pages):
        succeeded_before_each_pass.append(
            sum(1 for _, kind, p in sent if kind == "job.updated" and p["status"] == "succeeded")
        )
        return real_classify(pages)

    monkeypatch.setattr(fake_classifier, "classify", classify)

    _run(jobs[0])

    assert succeeded_before_each_pass == [0, tasks.FORWARD_CHUNK]


def test_an_internal_error_fails_the_unfinished_jobs_once_and_says_so(batch, fake_classifier, sent):
    jobs = [JobFactory(batch=batch) for _ in range(3)]
    fake_classifier.error = RuntimeError("tensor shape mismatch")

    _run(jobs[0])

    assert _statuses(jobs) == [Job.Status.FAILED] * 3
    for job in jobs:
        statuses = [p["status"] for _, kind, p in sent if kind == "job.updated" and p["id"] == job.pk]
        assert statuses == ["running", "failed"]


def test_a_message_whose_job_was_taken_still_takes_the_queued_jobs(batch, fake_classifier, sent, settings):
    """Messages go out one per batch of jobs: a message whose own job another task took may be
    the only one left for the jobs still waiting (two uploads whose messages crossed)."""
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 2
    first_upload = [JobFactory(batch=batch) for _ in range(2)]  # its message: first_upload[0]
    second_upload = [JobFactory(batch=BatchFactory(owner=batch.owner)) for _ in range(2)]

    _run(second_upload[0])  # takes its own job and the oldest queued one: first_upload[0]
    assert _statuses(first_upload + second_upload) == [
        Job.Status.SUCCEEDED, Job.Status.QUEUED, Job.Status.SUCCEEDED, Job.Status.QUEUED
    ]  # fmt: skip
    _run(first_upload[0])  # its job is done: it takes the two still waiting

    assert _statuses(first_upload + second_upload) == [Job.Status.SUCCEEDED] * 4
    assert fake_classifier.batch_sizes == [2, 2]


def test_a_message_with_nothing_left_to_take_does_nothing(batch, fake_classifier, sent):
    job = JobFactory(batch=batch)
    _run(job)

    _run(job, task_id="a-duplicate")

    assert fake_classifier.batch_sizes == [1]
    assert Prediction.objects.count() == 1


def test_a_page_whose_stored_file_is_gone_fails_only_its_own_job(batch, fake_classifier, sent, caplog):
    jobs = [JobFactory(batch=batch) for _ in range(3)]
    jobs[1].image.storage.delete(jobs[1].image.name)

    _run(jobs[0])

    assert _statuses(jobs) == [Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.SUCCEEDED]
    assert Job.objects.get(pk=jobs[1].pk).error == tasks.INTERNAL_ERROR
    assert any("its page could not be read" in record.getMessage() for record in caplog.records)


def test_a_chunk_of_results_is_reported_with_one_read_and_one_completion_check(
    batch, sent, django_assert_max_num_queries
):
    from classifier import services

    jobs = [JobFactory(batch=batch, status=Job.Status.SUCCEEDED) for _ in range(4)]

    # The jobs with their predictions (2 reads), then the batch: unfinished jobs (1), stamp (1),
    # and what its completion event and email read.
    with django_assert_max_num_queries(8):
        services.jobs_report(job_ids=[job.pk for job in jobs])

    kinds = [kind for _, kind, _ in sent]
    assert kinds == ["job.updated"] * 4 + ["batch.completed"]
