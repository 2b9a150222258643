"""The embedded default's worker: one background thread inside the web process.

It runs the same Celery tasks as a real worker, by name from Celery's registry (Task.apply), so
the embedded default and the real stack share every line of the task code; only the transport
differs. worker.apps registers it with classifier.dispatch for ECGSITE_TASK_RUNNER=embedded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

import worker.tasks  # noqa: F401  (registers the tasks this runner looks up by name)
from classifier import dispatch, services, webhooks
from ecgsite.celery import app as celery_app
from worker.runtime import model_status, prove_default_model

logger = logging.getLogger(__name__)
# Webhooks wait on other people's servers: their own thread, so classification never does.
_WEBHOOK_TASKS = frozenset({dispatch.TASK_DELIVER_WEBHOOK})


class EmbeddedRunner:
    """Runs tasks on daemon threads, one at a time each, in submission order: classification on
    one thread, webhook deliveries on another.

    With `reap_interval_s` > 0, `recover_unfinished` also starts a timer thread that runs the
    reaper (classifier.reaper) every so often, as beat does on the real stack: it must not wait
    behind the jobs, or it could never notice one that hangs.
    """

    def __init__(self, *, reap_interval_s: float = 0.0) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-worker")
        self._webhook_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-webhooks")
        self._reap_interval_s = reap_interval_s
        self._reaper_thread: threading.Thread | None = None
        self._stop_reaping = threading.Event()

    def submit(
        self, name: str, args: Sequence[Any], *, task_id: str | None = None, countdown: float = 0.0
    ) -> Future[None] | None:
        """Run task `name` on its thread, now (returns its Future) or after `countdown` seconds."""
        executor = self._webhook_executor if name in _WEBHOOK_TASKS else self._executor
        if countdown <= 0:
            return executor.submit(self._run, name, list(args), task_id)
        timer = threading.Timer(countdown, executor.submit, args=(self._run, name, list(args), task_id))
        timer.daemon = True
        timer.start()
        return None

    def model_unavailable(self) -> str:
        """The model that failed this process's self-test, or "" (see worker.runtime)."""
        status = model_status()
        return status.model if status.unavailable else ""

    def _submit_classify(self, *, job_id: int, task_id: str) -> None:
        self.submit(dispatch.TASK_CLASSIFY, [job_id], task_id=task_id)

    def recover_unfinished(self) -> Future[None]:
        """Prove the model, then re-queue jobs a previous run of this process left queued or
        running; start reaping. Jobs submitted meanwhile wait behind the proof."""
        self._executor.submit(prove_default_model)
        if self._reap_interval_s > 0:
            self.start_reaping()
        return self._executor.submit(self._recover)

    def start_reaping(self) -> None:
        """Run the reaper every `reap_interval_s` seconds on a daemon thread (once per runner)."""
        if self._reaper_thread is not None:
            return
        self._reaper_thread = threading.Thread(
            target=self._reap_periodically, name="embedded-reaper", daemon=True
        )
        self._reaper_thread.start()

    def stop_reaping(self) -> None:
        self._stop_reaping.set()
        if self._reaper_thread is not None:
            self._reaper_thread.join(timeout=30)

    def _reap_periodically(self) -> None:
        while not self._stop_reaping.wait(self._reap_interval_s):
            self.reap_once()

    def reap_once(self) -> None:
        """One reaper run; its re-queued jobs go to this runner's worker thread."""
        close_old_connections()
        try:
            services.jobs_reap_and_enqueue(enqueue=self._submit_classify)
        except Exception:
            logger.exception(
                "embedded worker: the reaper failed; it runs again in %ss", self._reap_interval_s
            )
        finally:
            connection.close()

    def _run(self, name: str, args: list[Any], task_id: str | None) -> None:
        if name == dispatch.TASK_CLASSIFY:
            status = model_status()
            if status.unavailable:
                # Left queued, not failed: a restart with a model that runs will take it.
                logger.warning("embedded worker: job %s stays queued: %s", args[0], status.reason)
                return
        close_old_connections()
        try:
            celery_app.tasks[name].apply(args=args, task_id=task_id)
        except Exception:
            logger.exception("embedded worker: task %s %s raised", name, args)
        finally:
            connection.close()

    def _recover(self) -> None:
        try:
            for job_id, task_id in services.jobs_requeue_orphaned():
                self._submit_classify(job_id=job_id, task_id=task_id)
            for delivery_id in webhooks.webhook_deliveries_due(limit=1000):
                self.submit(dispatch.TASK_DELIVER_WEBHOOK, [delivery_id])
        except Exception:
            logger.exception("embedded worker: could not re-queue unfinished jobs")
        finally:
            connection.close()


runner = EmbeddedRunner(reap_interval_s=settings.ECGSITE_REAPER_INTERVAL_S)
