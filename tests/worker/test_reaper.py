"""classifier.reaper and its faces (beat task, management command, embedded timer).

A job whose message was lost or whose worker died is handed back to the queue under a fresh task
id; one out of attempts is failed with a message its owner reads; two reapers never both enqueue.
"""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from classifier import reaper
from classifier.models import Batch, Job, Prediction
from classifier.services import jobs_reap_and_enqueue
from tests.classifier.factories import BatchFactory, JobFactory
from worker.tasks import classify, reap_stale_jobs

WAIT_SECONDS = 30


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


@pytest.fixture
def timeouts(settings):
    settings.ECGSITE_QUEUED_TIMEOUT_S = 600
    settings.ECGSITE_RUNNING_TIMEOUT_S = 300
    settings.ECGSITE_MAX_ATTEMPTS = 3
    return settings


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def _queued(batch: Batch, *, waiting_s: float, **fields) -> Job:
    """A queued job handed to the broker `waiting_s` ago, as batch_create leaves it."""
    job = JobFactory(batch=batch, **fields)
    Job.objects.filter(pk=job.pk).update(created=_ago(waiting_s), enqueued_at=_ago(waiting_s))
    job.refresh_from_db()
    return job


def _running(batch: Batch, *, running_s: float, attempts: int = 1, task_id: str = "dead-worker") -> Job:
    return JobFactory(
        batch=batch, status=Job.Status.RUNNING, task_id=task_id, attempts=attempts, started=_ago(running_s)
    )


pytestmark = pytest.mark.django_db


# Which jobs are stale


def test_it_requeues_a_job_queued_past_its_timeout_under_a_fresh_task_id(batch, timeouts, enqueued):
    job = _queued(batch, waiting_s=601)
    old_task_id = job.task_id

    result = reaper.jobs_reap_stale()

    job.refresh_from_db()
    assert result.requeued == [(job.pk, job.task_id)]
    assert job.task_id != old_task_id
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 0)
    assert job.enqueued_at is not None and timezone.now() - job.enqueued_at < timedelta(seconds=5)
    assert job.started is None


def test_it_leaves_a_job_queued_within_its_timeout_alone(batch, timeouts):
    job = _queued(batch, waiting_s=590)

    result = reaper.jobs_reap_stale()

    assert result.requeued == [] and result.failed == []
    assert Job.objects.get(pk=job.pk).task_id == job.task_id


def test_a_queued_jobs_clock_is_when_it_was_last_enqueued_not_when_it_was_created(batch, timeouts):
    # Created long ago, but handed to the broker again a minute ago (an admin re-run, a hand-back).
    job = _queued(batch, waiting_s=5000)
    Job.objects.filter(pk=job.pk).update(enqueued_at=_ago(60))

    assert reaper.jobs_reap_stale().requeued == []
    assert len(reaper.jobs_reap_stale(now=timezone.now() + timedelta(seconds=541)).requeued) == 1


def test_a_queued_job_from_before_enqueued_at_existed_is_timed_from_its_creation(batch, timeouts):
    job = _queued(batch, waiting_s=601)
    Job.objects.filter(pk=job.pk).update(enqueued_at=None)

    assert [job_id for job_id, _ in reaper.jobs_reap_stale().requeued] == [job.pk]


def test_a_running_jobs_clock_is_its_latest_claim_not_when_it_was_enqueued(batch, timeouts):
    job = _running(batch, running_s=60)
    Job.objects.filter(pk=job.pk).update(enqueued_at=_ago(5000))

    assert reaper.jobs_reap_stale().requeued == []


def test_a_requeued_job_waits_a_full_timeout_before_it_is_requeued_again(batch, timeouts):
    _queued(batch, waiting_s=601)
    assert len(reaper.jobs_reap_stale().requeued) == 1

    assert reaper.jobs_reap_stale().requeued == []
    later = timezone.now() + timedelta(seconds=601)
    assert len(reaper.jobs_reap_stale(now=later).requeued) == 1


def test_it_returns_a_job_running_past_its_timeout_to_the_queue(batch, timeouts):
    job = _running(batch, running_s=301)

    result = reaper.jobs_reap_stale()

    job.refresh_from_db()
    assert result.requeued == [(job.pk, job.task_id)]
    assert result.returned == [job.pk]
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 1)
    assert job.task_id != "dead-worker"
    assert timezone.now() - job.enqueued_at < timedelta(seconds=5)


def test_it_leaves_a_job_running_within_its_timeout_alone(batch, timeouts):
    job = _running(batch, running_s=290)

    assert reaper.jobs_reap_stale().requeued == []
    job.refresh_from_db()
    assert (job.status, job.task_id) == (Job.Status.RUNNING, "dead-worker")


@pytest.mark.parametrize("status", [Job.Status.SUCCEEDED, Job.Status.FAILED])
def test_it_never_touches_a_finished_job(batch, timeouts, status):
    job = JobFactory(batch=batch, status=status, attempts=1, started=_ago(10_000), finished=_ago(9_000))

    result = reaper.jobs_reap_stale()

    assert result.requeued == [] and result.failed == []
    job.refresh_from_db()
    assert job.status == status


def test_it_fails_a_stale_job_that_used_up_its_attempts_with_a_message_for_its_owner(batch, timeouts):
    job = _running(batch, running_s=301, attempts=3)

    result = reaper.jobs_reap_stale()

    job.refresh_from_db()
    assert result.failed == [job.pk] and result.requeued == []
    assert job.status == Job.Status.FAILED
    assert job.error == "We could not classify this image after 3 attempts. Please upload it again."
    assert job.finished is not None


def test_it_takes_a_bounded_batch_oldest_first(batch, timeouts):
    oldest = _queued(batch, waiting_s=3000)
    middle = _queued(batch, waiting_s=2000)
    _queued(batch, waiting_s=1000)

    result = reaper.jobs_reap_stale(limit=2)

    assert [job_id for job_id, _ in result.requeued] == [oldest.pk, middle.pk]


def test_the_batch_size_setting_bounds_a_run(batch, timeouts):
    timeouts.ECGSITE_REAPER_BATCH_SIZE = 1
    _queued(batch, waiting_s=3000)
    _queued(batch, waiting_s=2000)

    assert len(reaper.jobs_reap_stale().requeued) == 1


# Two reapers, and a reaper against a worker


def test_a_second_reaper_that_saw_the_same_jobs_changes_and_enqueues_nothing(batch, timeouts, monkeypatch):
    running = _running(batch, running_s=301)
    queued = _queued(batch, waiting_s=601)
    exhausted = _running(batch, running_s=301, attempts=3, task_id="other-dead-worker")
    # Both reapers select the same stale rows before either updates one.
    seen_by_both = reaper.jobs_stale(now=timezone.now(), limit=100)
    monkeypatch.setattr(reaper, "jobs_stale", lambda **kwargs: seen_by_both)

    first = reaper.jobs_reap_stale()
    second = reaper.jobs_reap_stale()

    assert sorted(job_id for job_id, _ in first.requeued) == sorted([running.pk, queued.pk])
    assert first.failed == [exhausted.pk]
    assert (second.requeued, second.failed) == ([], [])


def test_a_job_a_worker_resumed_meanwhile_is_not_requeued(batch, timeouts, monkeypatch):
    job = _running(batch, running_s=301)
    seen = reaper.jobs_stale(now=timezone.now(), limit=100)
    monkeypatch.setattr(reaper, "jobs_stale", lambda **kwargs: seen)
    # The original delivery comes back (its worker was only slow) and resumes the job.
    Job.objects.filter(pk=job.pk).update(attempts=2, started=timezone.now())

    assert reaper.jobs_reap_stale().requeued == []
    job.refresh_from_db()
    assert (job.status, job.task_id, job.attempts) == (Job.Status.RUNNING, "dead-worker", 2)


def test_only_one_of_the_old_and_the_new_delivery_runs_a_requeued_job(batch, timeouts, fake_classifier, sent):
    job = _running(batch, running_s=301, task_id="old-delivery")
    [(_, new_task_id)] = reaper.jobs_reap_stale().requeued

    classify.apply(args=[job.pk], task_id="old-delivery")  # the lost message turns up after all
    classify.apply(args=[job.pk], task_id=new_task_id)

    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)
    assert Prediction.objects.filter(job=job).count() == 1
    assert fake_classifier.calls == 1


# Running it: enqueue, report, fail


def test_a_run_enqueues_what_it_requeued_and_tells_the_owner(batch, owner, timeouts, enqueued, sent):
    job = _running(batch, running_s=301)

    result = jobs_reap_and_enqueue()

    job.refresh_from_db()
    assert enqueued == [(job.pk, job.task_id)] == result.requeued
    updates = [payload for user_id, kind, payload in sent if kind == "job.updated"]
    assert user_ids(sent) == {owner.pk}
    assert [(update["id"], update["status"]) for update in updates] == [(job.pk, "queued")]


def test_a_job_left_running_by_a_dead_worker_is_classified_on_its_second_attempt(
    batch, timeouts, fake_classifier, sent
):
    job = _running(batch, running_s=301)

    jobs_reap_and_enqueue()  # tests run tasks inline: the re-queued job runs now

    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)
    assert Prediction.objects.filter(job=job).count() == 1


def test_failing_the_last_job_completes_the_batch_and_tells_the_owner(batch, timeouts, enqueued, sent):
    job = _running(batch, running_s=301, attempts=3)

    jobs_reap_and_enqueue()

    batch.refresh_from_db()
    assert batch.completed is not None
    assert enqueued == []
    kinds = [kind for _, kind, _ in sent]
    assert kinds == ["job.updated", "batch.completed"]
    assert sent[0][2]["id"] == job.pk and sent[0][2]["status"] == "failed"
    assert "Please upload it again" in sent[0][2]["error"]


def test_the_beat_task_reports_its_counts(batch, timeouts, enqueued, sent):
    _queued(batch, waiting_s=601)
    _running(batch, running_s=301, attempts=3)

    assert reap_stale_jobs.apply().get() == {"requeued": 1, "failed": 1}


def test_beat_runs_the_reaper_every_interval_and_drops_a_run_left_waiting():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["reap-stale-jobs"]
    assert entry["task"] == reap_stale_jobs.name == "worker.reap_stale_jobs"
    assert entry["schedule"] == settings.ECGSITE_REAPER_INTERVAL_S
    assert entry["options"]["expires"] == settings.ECGSITE_REAPER_INTERVAL_S


def test_the_management_command_runs_the_reaper_once(batch, timeouts, enqueued, sent):
    job = _queued(batch, waiting_s=601)
    out = StringIO()

    call_command("reap_stale_jobs", stdout=out)

    assert out.getvalue().strip() == "requeued 1 failed 0"
    assert enqueued == [(job.pk, Job.objects.get(pk=job.pk).task_id)]


def test_the_management_command_takes_a_limit(batch, timeouts, enqueued, sent):
    _queued(batch, waiting_s=601)
    _queued(batch, waiting_s=602)
    out = StringIO()

    call_command("reap_stale_jobs", "--limit", "1", stdout=out)

    assert out.getvalue().strip() == "requeued 1 failed 0"


def user_ids(sent) -> set[int]:
    return {user_id for user_id, _, _ in sent}


# The embedded default: a timer thread, not only the start-up recovery


@pytest.mark.django_db(transaction=True)
def test_the_embedded_runner_reaps_periodically_onto_its_worker_thread(owner, timeouts, fake_classifier):
    from worker.embedded import EmbeddedRunner

    job = _running(BatchFactory(owner=owner), running_s=301)
    runner = EmbeddedRunner(reap_interval_s=0.05)
    runner.start_reaping()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while Job.objects.get(pk=job.pk).status != Job.Status.SUCCEEDED:
            assert time.monotonic() < deadline, f"the embedded reaper did not finish job {job.pk}"
            time.sleep(0.05)
    finally:
        runner.stop_reaping()
        runner._executor.shutdown(wait=True)

    job.refresh_from_db()
    assert job.attempts == 2
    assert Prediction.objects.filter(job=job).count() == 1


def test_the_default_embedded_runner_reaps_on_the_configured_interval():
    from django.conf import settings

    from worker.embedded import runner

    assert runner._reap_interval_s == settings.ECGSITE_REAPER_INTERVAL_S > 0


@pytest.mark.django_db(transaction=True)
def test_a_runner_without_an_interval_starts_no_reaper_thread():
    from worker.embedded import EmbeddedRunner

    runner = EmbeddedRunner()
    runner.recover_unfinished().result(timeout=WAIT_SECONDS)
    runner._executor.shutdown(wait=True)

    assert runner._reaper_thread is None
