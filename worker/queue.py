"""Handing a job to whatever runs classifications: Celery workers, or the embedded thread."""

from __future__ import annotations

from django.conf import settings


def enqueue_classify(*, job_id: int, task_id: str) -> None:
    """Queue one job. Call after the job's transaction committed (services do)."""
    from worker.tasks import classify

    runner = settings.ECGSITE_TASK_RUNNER
    if runner == "celery":
        classify.apply_async(args=[job_id], task_id=task_id)
    elif runner == "embedded":
        from worker.embedded import runner as embedded_runner

        embedded_runner.submit(job_id=job_id, task_id=task_id)
    else:  # "inline": tests run the task in the calling thread
        classify.apply(args=[job_id], task_id=task_id)


def classification_unavailable() -> str:
    """The model that stops new jobs from being classified now, or "" when they can be.

    Known only where the worker lives in this process (the embedded default): its model failed
    the self-test. Celery workers whose model cannot run exit instead of taking jobs.
    """
    if settings.ECGSITE_TASK_RUNNER != "embedded":
        return ""
    from worker.runtime import model_status

    status = model_status()
    return status.model if status.unavailable else ""


def enqueue_webhook(*, delivery_id: int, countdown: float = 0.0) -> None:
    """Queue one webhook attempt, `countdown` seconds from now. Call after commit.

    The delivery row's `next_attempt_at` is the record; this only saves the sweep
    (worker.tasks.sweep_webhooks) the wait. Long waits are left to the sweep instead of a
    broker countdown, which must stay well below the broker's visibility timeout.
    """
    from worker.tasks import deliver_webhook

    if countdown > settings.ECGSITE_WEBHOOK_MAX_COUNTDOWN_S:
        return
    runner = settings.ECGSITE_TASK_RUNNER
    if runner == "celery":
        deliver_webhook.apply_async(args=[delivery_id], countdown=countdown or None)
    elif runner == "embedded":
        from worker.embedded import runner as embedded_runner

        embedded_runner.submit_webhook(delivery_id=delivery_id, countdown=countdown)
    elif countdown <= 0:  # "inline" (tests): run now; a later attempt is left to the sweep
        deliver_webhook.apply(args=[delivery_id])
