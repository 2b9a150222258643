"""Every write to batches, jobs and predictions. Each function is one transaction that checks
the state it expects, so a repeated or late call changes nothing it should not."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from classifier.images import CleanImage, InvalidUpload, clean_image
from classifier.models import CLASS_KEYS, Batch, Job, ModelVersion, Prediction

logger = logging.getLogger(__name__)


class UploadRejected(ValueError):
    """A batch we refuse as a whole, with one human message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def batch_create(
    *,
    owner: User,
    files: Sequence[UploadedFile],
    name: str = "",
    callback_url: str = "",
    idempotency_key: str | None = None,
) -> Batch:
    """Create one Batch with one queued Job per image, and enqueue the jobs after commit.

    `callback_url` (checked by the caller) receives the completed batch; `idempotency_key` is
    unique per owner, so a second batch with the same key raises IntegrityError and stores nothing.

    1. Check the count, then decode and re-encode every file; any bad file rejects the batch,
       before anything is written.
    2. In one transaction, write the batch, the jobs and their re-encoded images.
    3. On commit, hand each job to the queue. If the transaction fails, remove stored files.
    """
    if not files:
        raise UploadRejected(["Choose at least one JPEG or PNG image."])
    limit = settings.ECGSITE_MAX_FILES_PER_BATCH
    if len(files) > limit:
        raise UploadRejected([f"{len(files)} files were sent; a batch holds at most {limit}."])

    cleaned: list[CleanImage] = []
    errors: list[str] = []
    for upload in files:
        try:
            cleaned.append(clean_image(upload, name=upload.name or "", size=upload.size))
        except InvalidUpload as exc:
            errors.append(str(exc))
    if errors:
        raise UploadRejected(errors)

    batch_name = name.strip()[:200] or f"Batch of {timezone.now():%Y-%m-%d %H:%M} UTC"
    stored: list[Job] = []
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                owner=owner, name=batch_name, callback_url=callback_url, idempotency_key=idempotency_key
            )
            for image in cleaned:
                job = Job(
                    batch=batch,
                    original_name=image.original_name,
                    sha256=image.sha256,
                    width=image.width,
                    height=image.height,
                    task_id=uuid.uuid4().hex,
                )
                job.image.save(f"upload{image.extension}", ContentFile(image.content), save=False)
                stored.append(job)
                job.save()
            transaction.on_commit(lambda: _enqueue_all(stored))
    except Exception:
        for job in stored:
            job.image.delete(save=False)
        raise
    return batch


def batch_create_once(
    *,
    owner: User,
    files: Sequence[UploadedFile],
    idempotency_key: str,
    name: str = "",
    callback_url: str = "",
) -> tuple[Batch, bool]:
    """The owner's batch for this idempotency key, created from `files` only the first time.

    Returns (batch, created). A concurrent request with the same key loses the unique
    constraint's race and gets the winner's batch; its own files are removed again.
    """
    existing = Batch.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    try:
        batch = batch_create(
            owner=owner, files=files, name=name, callback_url=callback_url, idempotency_key=idempotency_key
        )
    except IntegrityError:
        return Batch.objects.get(owner=owner, idempotency_key=idempotency_key), False
    return batch, True


class BatchBusy(ValueError):
    """The batch still has queued or running jobs."""


def batch_delete(*, batch: Batch) -> None:
    """Delete a finished batch, its jobs, predictions and stored images.

    A batch still being classified is refused (BatchBusy): a worker may hold one of its jobs.
    The rows go in one transaction; the image files after it commits.
    """
    with transaction.atomic():
        locked = Batch.objects.select_for_update().filter(pk=batch.pk).first()
        if locked is None:
            return
        if Job.objects.filter(batch=locked).exclude(status__in=Job.FINISHED).exists():
            raise BatchBusy("The batch is still being classified; delete it once it has finished.")
        names = [name for name in Job.objects.filter(batch=locked).values_list("image", flat=True) if name]
        locked.delete()
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names: Sequence[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored image %s", name)


def _enqueue_all(jobs: Sequence[Job]) -> None:
    from worker.queue import enqueue_classify

    for job in jobs:
        enqueue_classify(job_id=job.pk, task_id=job.task_id)


def job_claim(*, job_id: int, task_id: str) -> Job | None:
    """Move a queued job to running for this delivery; None if another delivery owns it.

    A redelivery of the same task (its worker died mid-task) may resume its own running job.
    A job that has used up its attempts is failed instead of run again.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = Job.objects.filter(pk=job_id).filter(
            Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, task_id=task_id)
        )
        job = claimable.select_for_update().first()
        if job is None:
            return None
        if job.attempts >= settings.ECGSITE_MAX_ATTEMPTS:
            job.status = Job.Status.FAILED
            job.error = f"The image could not be classified after {job.attempts} attempts."
            job.finished = now
            job.save(update_fields=["status", "error", "finished"])
            logger.warning("job %s failed: attempts exhausted", job_id)
            return None
        job.status = Job.Status.RUNNING
        job.task_id = task_id
        job.attempts += 1
        job.started = now
        job.save(update_fields=["status", "task_id", "attempts", "started"])
    return job


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    architecture: str
    file_sha256: str
    card: dict


def model_version_register(*, identity: ModelIdentity) -> ModelVersion:
    """The ModelVersion row for a loaded model, created the first time it is seen."""
    version, created = ModelVersion.objects.get_or_create(
        name=identity.name,
        defaults={
            "architecture": identity.architecture,
            "file_sha256": identity.file_sha256,
            "card": identity.card,
            "metrics": identity.card.get("metrics", {}),
        },
    )
    if not created and version.file_sha256 != identity.file_sha256:
        raise ValueError(
            f"Model {identity.name!r} has file sha256 {identity.file_sha256}, but the registered "
            f"version has {version.file_sha256}: give a retrained model a new name."
        )
    return version


def prediction_record(
    *,
    job: Job,
    model_version: ModelVersion,
    label: str,
    probabilities: dict[str, float],
    inference_ms: float,
) -> Job:
    """Store the prediction and mark the running job succeeded, at most once per job and model.

    A job that is no longer running (another delivery finished it, or it failed meanwhile)
    keeps its state and gets no prediction.
    """
    _check_probabilities(label, probabilities)
    now = timezone.now()
    try:
        with transaction.atomic():
            finished = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.SUCCEEDED, model_version=model_version, finished=now, error=""
            )
            if finished:
                Prediction.objects.create(
                    job=job,
                    model_version=model_version,
                    label=label,
                    probabilities={key: float(probabilities[key]) for key in CLASS_KEYS},
                    inference_ms=inference_ms,
                )
            else:
                logger.info("job %s is no longer running; its prediction was not stored", job.pk)
    except IntegrityError:
        logger.info("job %s already has a prediction from %s; kept the first", job.pk, model_version)
    job.refresh_from_db()
    return job


def _check_probabilities(label: str, probabilities: dict[str, float]) -> None:
    if set(probabilities) != set(CLASS_KEYS):
        raise ValueError(
            f"probabilities must have exactly the keys {CLASS_KEYS}; got {sorted(probabilities)}"
        )
    if label not in CLASS_KEYS:
        raise ValueError(f"label must be one of {CLASS_KEYS}; got {label!r}")
    if not math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-3):
        raise ValueError(f"probabilities must sum to 1; got {sum(probabilities.values())}")


def job_fail(*, job_id: int, error: str) -> Job:
    """Mark an unfinished job failed with a message its owner will read."""
    Job.objects.filter(pk=job_id).exclude(status__in=Job.FINISHED).update(
        status=Job.Status.FAILED, error=error, finished=timezone.now()
    )
    return Job.objects.get(pk=job_id)


def batch_complete_if_done(*, batch_id: int) -> bool:
    """Stamp the batch completed when its last job finished; True only for the caller that did.

    Runs after the job's own transaction committed, so the last job to finish always sees
    every other job finished; the conditional update lets exactly one caller win.
    """
    if Job.objects.filter(batch_id=batch_id).exclude(status__in=Job.FINISHED).exists():
        return False
    changed = Batch.objects.filter(pk=batch_id, completed__isnull=True).update(completed=timezone.now())
    return changed == 1


def jobs_requeue_orphaned() -> list[tuple[int, str]]:
    """Put every unfinished job back in the queue state with a fresh delivery id.

    Only for the embedded default at start-up, where this process is the only worker, so any
    job left running belongs to a run that is gone. Returns (job id, task id) pairs to enqueue.
    """
    requeued: list[tuple[int, str]] = []
    unfinished = Job.objects.exclude(status__in=Job.FINISHED).values_list("pk", flat=True)
    for job_id in list(unfinished):
        task_id = uuid.uuid4().hex
        changed = (
            Job.objects.filter(pk=job_id)
            .exclude(status__in=Job.FINISHED)
            .update(status=Job.Status.QUEUED, task_id=task_id)
        )
        if changed:
            requeued.append((job_id, task_id))
    return requeued
