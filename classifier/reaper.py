"""The reaper: finds jobs whose queue message was lost or whose worker died, and hands them back.

The database is the record; the queue only tells a worker. A Redis restart loses every queued
message, a worker killed with SIGKILL (solo pool) leaves its job running, and a task that used
up its database retries leaves its job where it was. Run on a schedule (the beat task
worker.reap_stale_jobs, `manage.py reap_stale_jobs` from cron, or the embedded runner's timer
thread), the reaper finds those jobs again:

1. A job queued for longer than ECGSITE_QUEUED_TIMEOUT_S since it was last handed to the
   broker (`enqueued_at`: the upload, or the reaper's latest hand-back), or running with its
   lease run out (`lease_expires`: the claim leases it, the worker's heartbeat renews it), is
   stale. So a job whose worker died or froze is back within the lease, and a slow job whose
   worker lives is never taken from it. A row from before `enqueued_at` falls back to
   `created`; one running from before leases, to ECGSITE_RUNNING_TIMEOUT_S since `started`.
2. A stale job that has used ECGSITE_MAX_ATTEMPTS claims is failed with a message its owner
   reads; any other gets a fresh task id and goes (back) to queued, for the caller to enqueue.
3. Each change is one conditional UPDATE that names the state, task id and attempts the reaper
   saw, so of two reapers (or a reaper and a worker) only one changes the job, and only that
   one enqueues it. A duplicate message left in the queue is harmless: the claim lets one
   delivery run the job, and the prediction's unique constraint covers the rest.

At most ECGSITE_REAPER_BATCH_SIZE jobs, oldest first, per run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from classifier.models import Job

logger = logging.getLogger(__name__)


def attempts_exhausted_message(attempts: int) -> str:
    """What the owner of a job that failed every attempt reads."""
    return f"We could not classify this image after {attempts} attempts. Please upload it again."


@dataclass
class ReapResult:
    """What one run of the reaper changed."""

    # (job id, new task id) for every job to enqueue again, in the order found.
    requeued: list[tuple[int, str]] = field(default_factory=list)
    # Jobs that were running and are queued again: their owners should hear of it.
    returned: list[int] = field(default_factory=list)
    # Jobs failed because their attempts were used up.
    failed: list[int] = field(default_factory=list)

    @property
    def changed(self) -> list[int]:
        """Jobs whose status changed, whose state should be reported."""
        return [*self.returned, *self.failed]


@dataclass(frozen=True)
class _Seen:
    job_id: int
    status: str
    task_id: str
    attempts: int


def jobs_stale(*, now: datetime, limit: int) -> list[_Seen]:
    """Up to `limit` stale queued or running jobs, oldest clock first, as the reaper saw them."""
    queued_before = now - timedelta(seconds=settings.ECGSITE_QUEUED_TIMEOUT_S)
    running_before = now - timedelta(seconds=settings.ECGSITE_RUNNING_TIMEOUT_S)
    clock = Case(
        When(status=Job.Status.QUEUED, then=Coalesce("enqueued_at", "created")),
        default=Coalesce("lease_expires", "started", "created"),
    )
    rows = (
        Job.objects.annotate(clock=clock)
        .filter(
            Q(status=Job.Status.QUEUED, clock__lt=queued_before)
            | Q(status=Job.Status.RUNNING, lease_expires__lt=now)
            | Q(status=Job.Status.RUNNING, lease_expires__isnull=True, clock__lt=running_before)
        )
        .order_by("clock", "pk")
        .values_list("pk", "status", "task_id", "attempts")[:limit]
    )
    return [_Seen(*row) for row in rows]


def jobs_reap_stale(*, now: datetime | None = None, limit: int | None = None) -> ReapResult:
    """Re-queue stale jobs under fresh task ids, or fail those out of attempts (see the module).

    Each job's change is its own single-statement transaction, committed before this returns;
    the caller enqueues `requeued` and reports `changed`. A crash in between only leaves a
    queued job without a message, which the next run finds again.
    """
    now = now or timezone.now()
    limit = limit if limit is not None else settings.ECGSITE_REAPER_BATCH_SIZE
    result = ReapResult()
    for seen in jobs_stale(now=now, limit=limit):
        as_seen = Job.objects.filter(
            pk=seen.job_id, status=seen.status, task_id=seen.task_id, attempts=seen.attempts
        )
        if seen.attempts >= settings.ECGSITE_MAX_ATTEMPTS:
            changed = as_seen.update(
                status=Job.Status.FAILED, error=attempts_exhausted_message(seen.attempts), finished=now
            )
            if changed:
                result.failed.append(seen.job_id)
                logger.warning("reaper: job %s failed after %s attempts", seen.job_id, seen.attempts)
            continue
        task_id = uuid.uuid4().hex
        # `enqueued_at` restarts the job's clock, so the next run waits a full timeout again.
        changed = as_seen.update(status=Job.Status.QUEUED, task_id=task_id, enqueued_at=now)
        if changed:
            result.requeued.append((seen.job_id, task_id))
            if seen.status == Job.Status.RUNNING:
                result.returned.append(seen.job_id)
            logger.warning(
                "reaper: job %s %s under task %s; re-queued as %s",
                seen.job_id,
                "lost its lease" if seen.status == Job.Status.RUNNING else "waited too long in the queue",
                seen.task_id,
                task_id,
            )
    return result
