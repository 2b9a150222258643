"""Leases: a running job is its worker's while the worker's heartbeat renews it, and the reaper's
once the lease has run out; a worker that lost its job (frozen past its lease) cannot finish it.

Also the heartbeat itself (worker.heartbeat), the container probe (worker.alive) and which
queue each task goes to. The real-process faults (SIGKILL, SIGSTOP) are in
tests/realstack/test_faults.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from classifier import services
from classifier.models import Batch, Job, Prediction, WorkerProcess
from ecgsite.celery import app as celery_app
from tests.classifier.factories import BatchFactory, JobFactory
from worker import alive, heartbeat, tasks
from worker.runtime import LOADING
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


def _seconds_from_now(moment) -> float:
    return (moment - timezone.now()).total_seconds()


def _running(batch: Batch, *, task_id: str, lease_in_s: float, started_ago_s: float = 1.0) -> Job:
    job = JobFactory(batch=batch)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING,
        task_id=task_id,
        attempts=1,
        started=now - timedelta(seconds=started_ago_s),
        lease_expires=now + timedelta(seconds=lease_in_s),
    )
    job.refresh_from_db()
    return job


def test_a_claim_leases_the_job_for_the_configured_time(batch, settings):
    settings.ECGSITE_LEASE_S = 40
    job = JobFactory(batch=batch)
    claimed = services.jobs_claim_batch(job_id=job.pk, task_id="t-1", limit=1)
    assert [claimed_job.pk for claimed_job in claimed] == [job.pk]
    job.refresh_from_db()
    assert 38 <= _seconds_from_now(job.lease_expires) <= 40


def test_jobs_claimed_beside_the_first_are_leased_too(batch, settings):
    settings.ECGSITE_LEASE_S = 40
    first, second = JobFactory(batch=batch), JobFactory(batch=batch)
    services.jobs_claim_batch(job_id=first.pk, task_id="t-1", limit=2)
    second.refresh_from_db()
    assert second.status == Job.Status.RUNNING
    assert 38 <= _seconds_from_now(second.lease_expires) <= 40


def test_renewing_extends_only_this_deliverys_running_jobs(batch, settings):
    settings.ECGSITE_LEASE_S = 60
    mine = _running(batch, task_id="mine", lease_in_s=2)
    theirs = _running(batch, task_id="theirs", lease_in_s=2)
    renewed = services.jobs_lease_renew(task_id="mine", job_ids=[mine.pk, theirs.pk])
    assert renewed == 1
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert _seconds_from_now(mine.lease_expires) > 55
    assert _seconds_from_now(theirs.lease_expires) < 3


def test_the_reaper_takes_back_a_job_whose_lease_ran_out(batch, enqueued):
    job = _running(batch, task_id="dead-worker", lease_in_s=-1)
    result = services.jobs_reap_and_enqueue()
    job.refresh_from_db()
    assert result.returned == [job.pk]
    assert job.status == Job.Status.QUEUED
    assert job.task_id != "dead-worker"
    assert enqueued == [(job.pk, job.task_id)]


def test_the_reaper_leaves_a_slow_job_whose_lease_is_renewed(batch, enqueued, settings):
    """Running far longer than the old running timeout, but its worker still beats."""
    settings.ECGSITE_RUNNING_TIMEOUT_S = 60
    job = _running(batch, task_id="slow-but-alive", lease_in_s=10, started_ago_s=3600)
    result = services.jobs_reap_and_enqueue()
    job.refresh_from_db()
    assert result.requeued == []
    assert job.status == Job.Status.RUNNING
    assert job.task_id == "slow-but-alive"


def test_a_job_running_from_before_leases_falls_back_to_the_running_timeout(batch, enqueued, settings):
    settings.ECGSITE_RUNNING_TIMEOUT_S = 60
    fresh = _running(batch, task_id="a", lease_in_s=0, started_ago_s=10)
    old = _running(batch, task_id="b", lease_in_s=0, started_ago_s=120)
    Job.objects.filter(pk__in=[fresh.pk, old.pk]).update(lease_expires=None)
    result = services.jobs_reap_and_enqueue()
    assert result.returned == [old.pk]


def test_a_worker_that_lost_its_job_cannot_finish_or_fail_it(batch, fake_classifier, sent):
    """A worker frozen past its lease wakes up after the reaper gave the job to another
    delivery: its result and its failure are both refused, the new holder's stand."""
    job = _running(batch, task_id="frozen", lease_in_s=-1)
    stale_view = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(task_id="new-holder")
    model_version = services.model_version_register(identity=tasks.model_identity(fake_classifier))
    services.prediction_record(
        job=stale_view,
        model_version=model_version,
        label="mi",
        probabilities={"normal": 0.1, "mi": 0.7, "history_mi": 0.1, "abnormal": 0.1},
        inference_ms=1.0,
    )
    services.jobs_fail_unfinished(job_ids=[job.pk], error="stopped", task_id="frozen")
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert job.task_id == "new-holder"
    assert Prediction.objects.filter(job=job).count() == 0


def test_the_classify_task_holds_its_jobs_while_it_runs_and_lets_go_after(batch, fake_classifier, sent):
    job = JobFactory(batch=batch)
    held_during: list[dict] = []
    real_classify = fake_classifier.classify

    def classify_and_look(pages):
        held_during.append(heartbeat.held())
        return real_classify(pages)

    fake_classifier.classify = classify_and_look
    classify.apply(args=[job.pk], task_id=job.task_id)
    assert held_during == [{job.task_id: frozenset({job.pk})}]
    assert heartbeat.held() == {}
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_a_heartbeat_renews_held_leases_and_records_the_worker(batch, settings, tmp_path, monkeypatch):
    settings.ECGSITE_LEASE_S = 60
    settings.ECGSITE_WORKER_HEARTBEAT_FILE = str(tmp_path / "beat.json")
    monkeypatch.setattr(heartbeat, "_queues", ("classify",))
    monkeypatch.setattr("worker.heartbeat.model_status", lambda: LOADING)
    job = _running(batch, task_id="t-9", lease_in_s=1)
    with heartbeat.holding("t-9", [job.pk]):
        heartbeat.beat_once()
    job.refresh_from_db()
    assert _seconds_from_now(job.lease_expires) > 55
    worker = WorkerProcess.objects.get()
    assert (worker.pid, worker.queues, worker.state) == (os.getpid(), "classify", "loading")
    record = json.loads(Path(settings.ECGSITE_WORKER_HEARTBEAT_FILE).read_text())
    assert record["state"] == "loading"
    assert record["pid"] == os.getpid()


def test_the_probe_file_is_written_even_when_the_database_is_away(settings, tmp_path, monkeypatch):
    from django.db import OperationalError

    settings.ECGSITE_WORKER_HEARTBEAT_FILE = str(tmp_path / "beat.json")
    monkeypatch.setattr(heartbeat, "_queues", ("maintenance",))

    def database_away(**_kwargs):
        raise OperationalError("gone")

    monkeypatch.setattr(services, "worker_seen", database_away)
    with pytest.raises(OperationalError):
        heartbeat.beat_once()
    assert alive.problem(settings.ECGSITE_WORKER_HEARTBEAT_FILE) == ""


def test_a_maintenance_worker_is_ready_without_a_model(settings, tmp_path, monkeypatch):
    settings.ECGSITE_WORKER_HEARTBEAT_FILE = str(tmp_path / "beat.json")
    monkeypatch.setattr(heartbeat, "_queues", ("maintenance",))
    heartbeat.beat_once()
    worker = WorkerProcess.objects.get()
    assert (worker.model, worker.state) == ("", "ready")


def test_a_maintenance_worker_process_loads_no_model(monkeypatch):
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(heartbeat, "start", started.append)
    monkeypatch.setattr(tasks, "_consumed_queues", ("maintenance",))
    monkeypatch.setattr(
        tasks, "prove_default_model", lambda: pytest.fail("a maintenance worker loaded a model")
    )
    tasks.load_model_after_fork()
    assert started == [("maintenance",)]


def test_the_reaper_forgets_workers_gone_for_an_hour(enqueued):
    now = timezone.now()
    for name, seen in (("gone", now - timedelta(hours=2)), ("here", now)):
        WorkerProcess.objects.create(
            name=name, hostname="h", pid=1, state="ready", started=seen, seen=seen, queues="classify"
        )
    services.jobs_reap_and_enqueue()
    assert list(WorkerProcess.objects.values_list("name", flat=True)) == ["here"]


@pytest.mark.parametrize(
    ("record", "age_s", "expected"),
    [
        ({"state": "ready", "model": "hybrid-v5"}, 2, ""),
        ({"state": "ready", "model": "hybrid-v5"}, 45, "last heartbeat 45 s ago"),
        ({"state": "loading", "model": "hybrid-v5"}, 2, "the worker is loading, not ready"),
        ({"state": "unavailable", "model": "hybrid-v5"}, 2, "the worker is unavailable"),
    ],
)
def test_the_probe_wants_a_fresh_heartbeat_of_a_ready_worker(tmp_path, record, age_s, expected):
    path = tmp_path / "beat.json"
    now = time.time()
    path.write_text(json.dumps({**record, "at": now - age_s}))
    reason = alive.problem(str(path), now=now)
    assert reason.startswith(expected) if expected else reason == ""


def test_the_probe_fails_without_a_heartbeat_file_and_runs_without_django(tmp_path):
    env = {**os.environ, "ECGSITE_WORKER_HEARTBEAT_FILE": str(tmp_path / "none.json")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    missing = subprocess.run(
        [sys.executable, "-m", "worker.alive"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1
    assert "no heartbeat yet" in missing.stderr
    (tmp_path / "none.json").write_text(json.dumps({"state": "ready", "at": time.time()}))
    present = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "worker.alive"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert present.returncode == 0, present.stderr
    assert "django" not in present.stderr.lower()  # -X importtime lists every module imported


def test_the_probe_reads_the_same_file_the_settings_name(settings):
    assert alive.DEFAULT_HEARTBEAT_FILE == "/tmp/ecgsite-worker-heartbeat.json"
    from django.conf import settings as live_settings

    if "ECGSITE_WORKER_HEARTBEAT_FILE" not in os.environ:
        assert live_settings.ECGSITE_WORKER_HEARTBEAT_FILE == alive.DEFAULT_HEARTBEAT_FILE


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("worker.classify", "classify"),
        ("worker.deliver_webhook", "maintenance"),
        ("worker.sweep_webhooks", "maintenance"),
        ("worker.reap_stale_jobs", "maintenance"),
    ],
)
def test_each_task_goes_to_its_queue(task, queue):
    route = celery_app.amqp.router.route({}, task)
    assert route["queue"].name == queue


def test_maintenance_tasks_have_time_limits():
    for name in ("worker.deliver_webhook", "worker.sweep_webhooks", "worker.reap_stale_jobs"):
        task = celery_app.tasks[name]
        assert 0 < task.soft_time_limit < task.time_limit
