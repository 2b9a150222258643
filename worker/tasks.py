"""Celery tasks: thin. Each takes an id and calls the core's services, which hold the rules.

Registered under the names in classifier.dispatch, which is how the core sends them (by name,
never importing this module); the embedded and inline runners run them through the same names.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from billiard import process as billiard_process
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from celery.worker import state as worker_state
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from classifier import dispatch, services, webhooks
from classifier.ecg_signal import PageReading, measurements_check, page_reading, signal_check
from classifier.models import Job, ModelVersion
from ecgsite import log_context
from ml import leads
from ml.inference import Classifier, ModelLoadError, PageInputs
from ml.preprocess import InvalidImageError
from worker import heartbeat
from worker.runtime import get_classifier, model_identity, prove_default_model, set_concurrency

logger = logging.getLogger(__name__)
# A worker whose model cannot run exits with this (sysexits' EX_SOFTWARE) instead of taking jobs;
# a prefork child tells its parent with this signal (Celery leaves SIGUSR2 alone unless remote
# debugging is asked for with CELERY_RDBSIG).
EX_MODEL_UNAVAILABLE = 70
MODEL_UNAVAILABLE_SIGNAL = signal.SIGUSR2
INTERNAL_ERROR = "An internal error stopped the classification. It has been logged."


@shared_task(
    bind=True,
    name=dispatch.TASK_CLASSIFY,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=settings.CLASSIFY_SOFT_TIME_LIMIT,
    time_limit=int(settings.CLASSIFY_SOFT_TIME_LIMIT * 1.2),
)
def classify(self, job_id: int) -> None:
    """Classify this delivery's job and queued jobs beside it, up to ECGSITE_CLASSIFY_BATCH_SIZE
    for the same model (``services.jobs_claim_batch``: a message goes out per batch of jobs), in
    forward passes of a few pages; record each prediction at most once per job and model.

    The model is the job's requested model version (an admin re-run), else the default. Each
    page is decoded once, at the size the model and the digitiser read (``read_page``), on a
    reader thread that reads and measures the next pages while the forward pass runs. A page
    that cannot be read fails its own job only.
    """
    jobs = services.jobs_claim_batch(
        job_id=job_id, task_id=self.request.id, limit=settings.ECGSITE_CLASSIFY_BATCH_SIZE
    )
    if not jobs or jobs[0].pk != job_id:
        logger.info("job %s: not claimable (done, or owned by another delivery)", job_id)
        services.job_report(job_id=job_id)
        if not jobs:
            return
    elif len(jobs) == 1:
        jobs += _company(jobs[0], self.request.id)
    # The claims leased the jobs; this process's heartbeat renews the leases while they run.
    held = [claimed.pk for claimed in jobs]
    with heartbeat.holding(self.request.id, held), log_context.for_jobs(held):
        _run_claimed(jobs, self.request.id)


def _run_claimed(jobs: list[Job], task_id: str) -> None:
    """Classify the claimed jobs on their model; whatever stops that fails the jobs still held."""
    job = jobs[0]
    services.jobs_report(job_ids=[claimed.pk for claimed in jobs])
    _pause_for_fault_tests(job)
    try:
        # A re-run names its model version; every other job runs on the configured default.
        classifier = get_classifier(job.requested_model.name if job.requested_model_id else None)
        # Before predicting: a model file unlike its registration fails the jobs (ValueError).
        model_version = services.model_version_register(identity=model_identity(classifier))
        _classify_jobs(jobs, classifier, model_version)
    except SoftTimeLimitExceeded:
        _fail_unfinished(jobs, task_id, "Classification took too long and was stopped.")
    except (OperationalError, InterfaceError):
        raise  # the database blinked: Celery retries the task, which resumes the jobs it claimed
    except ModelLoadError:
        # Only a re-run's model can get here: a worker proves its default one before any job.
        logger.exception("job %s: its model could not run on this worker", job.pk)
        _fail_unfinished(
            jobs,
            task_id,
            "The model version chosen for this job could not run on the worker. It has been logged.",
        )
    except Exception:
        # Our fault, not the images': log it for us, and tell the users plainly.
        logger.exception("jobs %s: classification failed", [claimed.pk for claimed in jobs])
        _fail_unfinished(jobs, task_id, INTERNAL_ERROR)


def _company(job: Job, task_id: str) -> list[Job]:
    """For a job that found no queued company: a short wait, once, for some to arrive."""
    room = settings.ECGSITE_CLASSIFY_BATCH_SIZE - 1
    if room < 1 or settings.ECGSITE_CLASSIFY_BATCH_WAIT_MS <= 0:
        return []
    time.sleep(settings.ECGSITE_CLASSIFY_BATCH_WAIT_MS / 1000)
    return services.jobs_claim_more(job=job, task_id=task_id, limit=room)


# Pages per forward pass: the reader threads read and measure the next ones meanwhile.
FORWARD_CHUNK = 8
# Reading a page (decode, digitise, measure) costs more than its share of the forward pass, and
# decoding lets go of the GIL: two readers keep the forward pass fed (14.1 → 14.9 images/s in
# bench.throughput's run c on 2 cores).
PAGE_READERS = 2


def _classify_jobs(jobs: list[Job], classifier: Classifier, model_version: ModelVersion) -> None:
    """Read every job's page on reader threads, results in order, and classify them in chunks as
    they come: the next chunk's reading overlaps this chunk's forward pass."""
    reader = ThreadPoolExecutor(max_workers=PAGE_READERS, thread_name_prefix="page-reader")
    try:
        pending = [(job, reader.submit(_read_page, job, classifier)) for job in jobs]
        for start in range(0, len(pending), FORWARD_CHUNK):
            chunk = []
            for job, read in pending[start : start + FORWARD_CHUNK]:
                try:
                    chunk.append((job, *read.result()))
                except InvalidImageError as exc:
                    services.job_fail(job_id=job.pk, error=str(exc), task_id=job.task_id)
                    services.job_report(job_id=job.pk)
                except Exception:
                    # Our fault (its stored file unreadable, say), and this job's alone.
                    logger.exception("job %s: its page could not be read", job.pk)
                    services.job_fail(job_id=job.pk, error=INTERNAL_ERROR, task_id=job.task_id)
                    services.job_report(job_id=job.pk)
            results = classifier.classify([page for _, page, _ in chunk])
            explanations = _explanations(classifier, [page for _, page, _ in chunk], results)
            # Not named `signal`: that is the module this one uses to stop the worker.
            for (job, _, reading), result, explanation in zip(chunk, results, explanations, strict=True):
                services.prediction_record(
                    job=job,
                    model_version=model_version,
                    label=result.label,
                    probabilities=result.probabilities,
                    inference_ms=result.inference_ms,
                    signal=reading.signal if reading else None,
                    measurements=reading.measurements if reading else None,
                    explanation=explanation,
                )
            # Each chunk's results go out as they are stored, not when the whole batch is done.
            services.jobs_report(job_ids=[job.pk for job, _, _ in chunk])
    finally:
        # Out of time or failed: pages not read yet are not read at all.
        reader.shutdown(wait=False, cancel_futures=True)


def _explanations(classifier: Classifier, pages: list[PageInputs], results: list) -> list[dict | None]:
    """Which lead and seconds drove each label (``ml.explain``), or None for each: the labels
    stand on their own, so an explanation that fails is logged and left out, never the result."""
    if not settings.ECGSITE_EXPLANATIONS:
        return [None] * len(pages)
    try:
        return classifier.explain(pages, results)
    except Exception:
        logger.exception("the explanations of %d pages failed; their results are stored without", len(pages))
        return [None] * len(pages)


def _read_page(job: Job, classifier: Classifier) -> tuple[PageInputs, PageReading | None]:
    """The job's stored page, decoded once at the size the model and the digitiser read, and
    its leads and measurements (``_page_reading``): on a reader thread, beside the forward pass."""
    with job.image.open("rb") as image_file:
        image_bytes = image_file.read()
    # The upload stored the page straightened (classifier.images): no photo to look for here,
    # but the job says whether it was one, for the card's photo rule.
    page = classifier.read_page(
        image_bytes,
        min_trace_width=leads.MIN_TRACE_WIDTH,
        max_pixels=settings.ECGSITE_MAX_IMAGE_PIXELS,
        straighten=False,
        photographed=job.photographed,
    )
    return page, _page_reading(job.pk, page)


def _fail_unfinished(jobs: list[Job], task_id: str, error: str) -> None:
    """Fail the jobs this task still holds that no result or failure has finished yet, and say so."""
    failed = services.jobs_fail_unfinished(job_ids=[job.pk for job in jobs], error=error, task_id=task_id)
    services.jobs_report(job_ids=failed)


def _page_reading(job_id: int, page: PageInputs) -> PageReading | None:
    """The page's twelve leads in mV and their measurements, or None where the digitiser cannot
    read them.

    Computed once, on a reader thread (where the task's time limit is not raised: the task
    stops waiting for it instead), beside the model and from the page it read (the hybrid's own
    digitised traces when it has them), so that no web request digitises or measures a page. The
    classification stands on its own: a page the digitiser fails on is still classified and
    recorded, without a signal; measurements that fail their check are dropped, the leads kept.
    """
    try:
        reading = page_reading(page.image, page.inputs.get("signals"))
        signal_check(reading.signal)
    except Exception as error:
        # A page the model read but the digitiser cannot is expected now and then; anything
        # else is our bug, so its traceback goes to the log too.
        logger.warning(
            "job %s: the digitiser could not read the page, no signal stored: %s",
            job_id,
            error,
            exc_info=not isinstance(error, InvalidImageError),
        )
        return None
    try:
        measurements_check(reading.measurements)
    except ValueError:
        # Our bug (ml.measurements and PageMeasurements disagree): the leads are still good.
        logger.exception("job %s: the measurements are not of the stored shape, none stored", job_id)
        return reading._replace(measurements=None)
    return reading


def _pause_for_fault_tests(job: Job) -> None:
    """Tests only: sleep after a job's first claim, so a fault test can kill the worker mid-task."""
    pause_s = settings.ECGSITE_TEST_PAUSE_AFTER_CLAIM_S
    if pause_s > 0 and job.attempts == 1:
        logger.warning(
            "job %s: pausing %ss after its claim (ECGSITE_TEST_PAUSE_AFTER_CLAIM_S)", job.pk, pause_s
        )
        time.sleep(pause_s)


@worker_process_init.connect
def load_model_after_fork(**_kwargs: object) -> None:
    """In each worker process as it starts: begin the heartbeat (worker.heartbeat), then, on a
    worker of the classify queue, load and prove the model, so no task waits for it, and stop
    the whole worker, exit code non-zero, when the model cannot run here."""
    heartbeat.start(_consumed_queues)
    if not heartbeat.classifies(_consumed_queues):
        return
    status = prove_default_model()
    if status.unavailable:
        stop_worker_process()


def stop_worker_process() -> None:
    """End this Celery worker before it takes a job, with a non-zero exit code.

    A prefork child signals its parent (``MODEL_UNAVAILABLE_SIGNAL``), which then shuts down
    with ``EX_MODEL_UNAVAILABLE`` (Celery's cold shutdown would exit 0, and billiard alone would
    only start another child), and exits; with the solo or threads pool this is the worker.
    """
    logging.shutdown()  # flush the reason to the log before leaving without clean-up
    if billiard_process.current_process().name != "MainProcess":
        os.kill(os.getppid(), MODEL_UNAVAILABLE_SIGNAL)
    os._exit(EX_MODEL_UNAVAILABLE)


# The queues this worker consumes (its -Q), known in the main process before the pool forks.
_consumed_queues: tuple[str, ...] = (settings.CELERY_TASK_DEFAULT_QUEUE,)


@worker_init.connect
def note_the_queues(sender: object = None, **_kwargs: object) -> None:
    """In the worker's main process, before the pool forks: which queues it consumes, so that a
    maintenance worker loads no model and its heartbeat says what it serves."""
    global _consumed_queues
    app = getattr(sender, "app", None)
    if app is not None:
        _consumed_queues = tuple(sorted(app.amqp.queues.consume_from or ())) or _consumed_queues


@worker_init.connect
def share_the_cores(sender: object = None, **_kwargs: object) -> None:
    """In the worker's main process, before the pool forks: how many processes will run models,
    so each takes its share of the cores for TensorFlow (``worker.runtime.tensorflow_threads``)."""
    set_concurrency(int(getattr(sender, "concurrency", 1) or 1))


@worker_init.connect
def listen_for_unavailable_model(**_kwargs: object) -> None:
    """In the worker's main process: a child's ``MODEL_UNAVAILABLE_SIGNAL`` stops the worker
    (a warm shutdown: nothing runs, since no child could load the model) with that exit code."""

    def shut_down(_signum: int, _frame: object) -> None:
        worker_state.should_stop = EX_MODEL_UNAVAILABLE  # the worker's loop raises WorkerShutdown(70)

    signal.signal(MODEL_UNAVAILABLE_SIGNAL, shut_down)


# The maintenance tasks' time limits: what hangs is stopped, and the queue moves on.
MAINTENANCE_LIMITS = {
    "soft_time_limit": settings.MAINTENANCE_SOFT_TIME_LIMIT,
    "time_limit": int(settings.MAINTENANCE_SOFT_TIME_LIMIT * 1.5),
}


@shared_task(name=dispatch.TASK_DELIVER_WEBHOOK, acks_late=True, ignore_result=True, **MAINTENANCE_LIMITS)
def deliver_webhook(delivery_id: int) -> None:
    """Make one attempt at a webhook delivery; queue the next one if it is due soon."""
    delivery = webhooks.webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is not None and delivery.status == delivery.Status.PENDING:
        wait = max((delivery.next_attempt_at - timezone.now()).total_seconds(), 0.0)
        dispatch.enqueue_webhook(delivery_id=delivery_id, countdown=wait)


@shared_task(name=dispatch.TASK_SWEEP_WEBHOOKS, ignore_result=True, **MAINTENANCE_LIMITS)
def sweep_webhooks() -> int:
    """Queue every webhook delivery that is due (run by beat): lost messages only delay them."""
    due = webhooks.webhook_deliveries_due()
    for delivery_id in due:
        dispatch.enqueue_webhook(delivery_id=delivery_id)
    return len(due)


@shared_task(name=dispatch.TASK_REAP_STALE_JOBS, ignore_result=True, **MAINTENANCE_LIMITS)
def reap_stale_jobs() -> dict[str, int]:
    """Hand stale queued or running jobs back to the queue, fail those out of attempts (beat)."""
    result = services.jobs_reap_and_enqueue()
    return {"requeued": len(result.requeued), "failed": len(result.failed)}
