"""worker.queue: one call, three transports. The job's task id travels with it in each."""

from __future__ import annotations

import pytest

from worker import queue


def test_the_celery_runner_publishes_the_task_with_the_jobs_task_id(settings, monkeypatch):
    settings.ECGSITE_TASK_RUNNER = "celery"
    published = []
    monkeypatch.setattr(
        "worker.tasks.classify.apply_async", lambda args, task_id: published.append((args, task_id))
    )

    queue.enqueue_classify(job_id=42, task_id="abc123")

    assert published == [([42], "abc123")]


def test_the_embedded_runner_submits_to_the_worker_thread(settings, monkeypatch):
    settings.ECGSITE_TASK_RUNNER = "embedded"
    submitted = []
    monkeypatch.setattr("worker.embedded.runner.submit", lambda **kwargs: submitted.append(kwargs))

    queue.enqueue_classify(job_id=42, task_id="abc123")

    assert submitted == [{"job_id": 42, "task_id": "abc123"}]


def test_the_inline_runner_runs_the_task_in_the_calling_thread(settings, monkeypatch):
    settings.ECGSITE_TASK_RUNNER = "inline"
    applied = []
    monkeypatch.setattr("worker.tasks.classify.apply", lambda args, task_id: applied.append((args, task_id)))

    queue.enqueue_classify(job_id=42, task_id="abc123")

    assert applied == [([42], "abc123")]


@pytest.mark.parametrize("runner", ["celery", "embedded", "inline"])
def test_no_runner_publishes_through_another_transport(settings, monkeypatch, runner):
    settings.ECGSITE_TASK_RUNNER = runner
    used = []
    monkeypatch.setattr("worker.tasks.classify.apply_async", lambda **kwargs: used.append("celery"))
    monkeypatch.setattr("worker.embedded.runner.submit", lambda **kwargs: used.append("embedded"))
    monkeypatch.setattr("worker.tasks.classify.apply", lambda **kwargs: used.append("inline"))

    queue.enqueue_classify(job_id=1, task_id="t")

    assert used == [runner]
