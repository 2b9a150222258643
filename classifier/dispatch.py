"""The core's one door to the queue: hands a task to whatever runs tasks, by name.

Dependencies run one way: the worker depends on the core, never the reverse. So the core sends
tasks by name, and ECGSITE_TASK_RUNNER chooses who runs them:

- "celery": a message to the broker through the project's Celery app (ecgsite.celery);
- "embedded": the worker thread inside this web process;
- "inline" (tests): the task runs in the calling thread.

The last two are local runners that the worker app registers at start-up (worker.apps), so
this module needs nothing from worker/. Call the enqueue functions after the transaction that
wrote the job or delivery committed (the services do, with transaction.on_commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from django.conf import settings

from ecgsite.celery import app as celery_app

# The names the worker's tasks are registered under (worker/tasks.py uses these constants).
TASK_CLASSIFY = "worker.classify"
TASK_DELIVER_WEBHOOK = "worker.deliver_webhook"
TASK_SWEEP_WEBHOOKS = "worker.sweep_webhooks"
TASK_REAP_STALE_JOBS = "worker.reap_stale_jobs"


class LocalRunner(Protocol):
    """Runs tasks in this process (the embedded thread, or the tests' inline mode)."""

    def submit(
        self, name: str, args: Sequence[Any], *, task_id: str | None = None, countdown: float = 0.0
    ) -> object:
        """Run task `name` with `args`, `countdown` seconds from now."""

    def model_unavailable(self) -> str:
        """The model that stops this runner from classifying now, or "" when it can."""


class NoLocalRunner(RuntimeError):
    """ECGSITE_TASK_RUNNER names a local runner that nothing registered."""


_local_runners: dict[str, LocalRunner] = {}


def register_local_runner(mode: str, runner: LocalRunner) -> None:
    """Make `runner` run the tasks when ECGSITE_TASK_RUNNER is `mode` (called by worker.apps)."""
    _local_runners[mode] = runner


def _local_runner(mode: str) -> LocalRunner:
    try:
        return _local_runners[mode]
    except KeyError:
        raise NoLocalRunner(
            f"ECGSITE_TASK_RUNNER is {mode!r}, but no runner is registered for it: the 'worker' app "
            "registers one when Django starts, so it must be in INSTALLED_APPS."
        ) from None


def _send(name: str, args: list[Any], *, task_id: str | None = None, countdown: float = 0.0) -> None:
    mode = settings.ECGSITE_TASK_RUNNER
    if mode == "celery":
        celery_app.send_task(name, args=args, task_id=task_id, countdown=countdown or None)
    else:
        _local_runner(mode).submit(name, args, task_id=task_id, countdown=countdown)


def enqueue_classify(*, job_id: int, task_id: str) -> None:
    """Queue one job under its task id (the claim compares it, so a redelivery can resume)."""
    _send(TASK_CLASSIFY, [job_id], task_id=task_id)


def enqueue_webhook(*, delivery_id: int, countdown: float = 0.0) -> None:
    """Queue one webhook attempt, `countdown` seconds from now.

    The delivery row's `next_attempt_at` is the record; this only saves the sweep
    (the worker.sweep_webhooks task) the wait. Waits longer than ECGSITE_WEBHOOK_MAX_COUNTDOWN_S
    are left to the sweep instead of a broker countdown, which must stay well below the broker's
    visibility timeout.
    """
    if countdown > settings.ECGSITE_WEBHOOK_MAX_COUNTDOWN_S:
        return
    _send(TASK_DELIVER_WEBHOOK, [delivery_id], countdown=countdown)


def classification_unavailable() -> str:
    """The model that stops new jobs from being classified now, or "" when they can be.

    Known only where the worker lives in this process (the embedded default): its model failed
    the self-test. Celery workers whose model cannot run exit instead of taking jobs.
    """
    mode = settings.ECGSITE_TASK_RUNNER
    if mode == "celery":
        return ""
    return _local_runner(mode).model_unavailable()
