"""The embedded default's worker: one background thread inside the web process.

It runs the same Celery task as a real worker (through Task.apply), so the embedded default and
the real stack share every line of the classification path; only the transport differs.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection

from worker.runtime import model_status, prove_default_model

logger = logging.getLogger(__name__)


class EmbeddedRunner:
    """Runs classify tasks one at a time on a daemon thread, in submission order.

    With `reap_interval_s` > 0, `recover_unfinished` also starts a timer thread that runs the
    reaper (classifier.reaper) every so often, as beat does on the real stack: it must not wait
    behind the jobs, or it could never notice one that hangs.
    """

    def __init__(self, *, reap_interval_s: float = 0.0) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-worker")
        # Webhooks wait on other people's servers: their own thread, so classification never does.
        self._webhook_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-webhooks")
        self._reap_interval_s = reap_interval_s
        self._reaper_thread: threading.Thread | None = None
        self._stop_reaping = threading.Event()

    def submit(self, *, job_id: int, task_id: str) -> Future[None]:
        return self._executor.submit(self._run, job_id, task_id)

    def submit_webhook(self, *, delivery_id: int, countdown: float = 0.0) -> None:
        """Attempt a webhook delivery on the webhook thread, after `countdown` seconds."""
        if countdown <= 0:
            self._webhook_executor.submit(self._run_webhook, delivery_id)
            return
        submit = self._webhook_executor.submit
        timer = threading.Timer(countdown, submit, args=(self._run_webhook, delivery_id))
        timer.daemon = True
        timer.start()

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
        from worker.tasks import reap_stale_jobs_now

        close_old_connections()
        try:
            reap_stale_jobs_now(enqueue=self.submit)
        except Exception:
            logger.exception(
                "embedded worker: the reaper failed; it runs again in %ss", self._reap_interval_s
            )
        finally:
            connection.close()

    def _run(self, job_id: int, task_id: str) -> None:
        from worker.tasks import classify

        status = model_status()
        if status.unavailable:
            # Left queued, not failed: a restart with a model that runs will take it.
            logger.warning("embedded worker: job %s stays queued: %s", job_id, status.reason)
            return
        close_old_connections()
        try:
            classify.apply(args=[job_id], task_id=task_id)
        except Exception:
            logger.exception("embedded worker: job %s raised", job_id)
        finally:
            connection.close()

    def _run_webhook(self, delivery_id: int) -> None:
        from worker.tasks import deliver_webhook

        close_old_connections()
        try:
            deliver_webhook.apply(args=[delivery_id])
        except Exception:
            logger.exception("embedded worker: webhook delivery %s raised", delivery_id)
        finally:
            connection.close()

    def _recover(self) -> None:
        from classifier.services import jobs_requeue_orphaned

        try:
            for job_id, task_id in jobs_requeue_orphaned():
                self.submit(job_id=job_id, task_id=task_id)
            from classifier.webhooks import webhook_deliveries_due

            for delivery_id in webhook_deliveries_due(limit=1000):
                self.submit_webhook(delivery_id=delivery_id)
        except Exception:
            logger.exception("embedded worker: could not re-queue unfinished jobs")
        finally:
            connection.close()


runner = EmbeddedRunner(reap_interval_s=settings.ECGSITE_REAPER_INTERVAL_S)
