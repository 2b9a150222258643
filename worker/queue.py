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
