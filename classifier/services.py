"""Every write to batches, jobs and predictions. Each function is one transaction that checks
the state it expects, so a repeated or late call changes nothing it should not."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from classifier import dispatch, events, notifications, webhooks
from classifier.audit import Action, AuditContext, Outcome, audit_record
from classifier.ecg_signal import PageMeasurements, PageSignal, measurements_check, signal_check
from classifier.explanations import explanation_check
from classifier.images import CleanImage, InvalidUpload, clean_images
from classifier.models import CLASS_KEYS, Batch, Job, ModelVersion, Prediction, WorkerProcess
from classifier.reaper import ReapResult, attempts_exhausted_message, jobs_reap_stale
from classifier.selectors import jobs_get_with_predictions
from ml import models as shipped_models
from ml.cards import summary_from_card
from ml.models import ModelIdentity

logger = logging.getLogger(__name__)


class UploadRejected(ValueError):
    """A batch we refuse as a whole, with one human message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ClassificationUnavailable(RuntimeError):
    """No worker can classify now (its model failed the self-test): uploads are refused."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"Classification is unavailable on this server: the model {model!r} failed its start-up "
            "check. Uploads are refused until an administrator fixes it; the server's log says why."
        )
        self.model = model


class IdempotencyKeyReused(ValueError):
    """An Idempotency-Key sent again with a different payload: it names another request."""

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used for a different request; use a new key for a new batch."
        )


def classification_unavailable_check() -> None:
    """Raise ``ClassificationUnavailable`` when the worker cannot classify (see classifier.dispatch)."""
    model = dispatch.classification_unavailable()
    if model:
        raise ClassificationUnavailable(model)


def batch_create(
    *,
    owner: User,
    files: Sequence[UploadedFile],
    name: str = "",
    callback_url: str = "",
    idempotency_key: str | None = None,
    idempotency_fingerprint: str = "",
    all_or_nothing: bool = False,
    context: AuditContext | None = None,
) -> Batch:
    """Create one Batch with one queued Job per good image, and enqueue the jobs after commit.

    `callback_url` (checked by the caller) receives the completed batch; `idempotency_key` is
    unique per owner, so a second batch with the same key raises IntegrityError and stores nothing;
    `idempotency_fingerprint` is stored with it (see ``batch_create_once``).

    1. Check the count, then decode and re-encode every file. The good files go ahead and each
       refused one is listed in ``batch.rejected`` with its reason, nothing else of it kept;
       ``UploadRejected``, before anything is written, when no file is good or, with
       `all_or_nothing`, when any file is bad.
    2. In one transaction, write the batch, the jobs, their re-encoded images and the
       batch.create audit record (by the owner, from where `context` says): a batch never exists
       without its record, and the request writes nothing after the workers may start.
    3. On commit, hand each job to the queue. If the transaction fails, remove stored files.

    Raises ``ClassificationUnavailable`` first, storing nothing, when no worker can classify.
    """
    classification_unavailable_check()
    if not files:
        raise UploadRejected(["Choose at least one JPEG or PNG image."])
    limit = settings.ECGSITE_MAX_FILES_PER_BATCH
    if len(files) > limit:
        raise UploadRejected([f"{len(files)} files were sent; a batch holds at most {limit}."])

    outcomes = clean_images(files)
    cleaned = [outcome for outcome in outcomes if isinstance(outcome, CleanImage)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, InvalidUpload)]
    if refused and (all_or_nothing or not cleaned):
        raise UploadRejected([str(outcome) for outcome in refused])

    now = timezone.now()
    batch_name = name.strip()[:200] or f"Batch of {now:%Y-%m-%d %H:%M} UTC"
    stored: list[Job] = []
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                owner=owner,
                name=batch_name,
                callback_url=callback_url,
                idempotency_key=idempotency_key,
                idempotency_fingerprint=idempotency_fingerprint,
                rejected=[{"name": outcome.name, "reason": outcome.reason} for outcome in refused],
            )
            for image in cleaned:
                job = Job(
                    batch=batch,
                    original_name=image.original_name,
                    sha256=image.sha256,
                    width=image.width,
                    height=image.height,
                    photographed=image.photographed,
                    task_id=uuid.uuid4().hex,
                    enqueued_at=now,  # handed to the broker when this transaction commits
                )
                job.image.save(f"upload{image.extension}", ContentFile(image.content), save=False)
                stored.append(job)
            # One INSERT for the whole batch, not one per image.
            Job.objects.bulk_create(stored)
            if any(job.pk is None for job in stored):
                # MySQL, unlike MariaDB and SQLite, does not return the new ids: each job's
                # delivery id is unique, so it finds its row.
                ids = dict(Job.objects.filter(batch=batch).values_list("task_id", "pk"))
                for job in stored:
                    job.pk = ids[job.task_id]
            audit_record(
                action=Action.BATCH_CREATE,
                context=context,
                actor=owner,
                target_type="batch",
                target_id=batch.pk,
                detail={"jobs": [job.pk for job in stored], "rejected": [item.name for item in refused]},
            )
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
    all_or_nothing: bool = False,
    context: AuditContext | None = None,
) -> tuple[Batch, bool]:
    """The owner's batch for this idempotency key, created from `files` only the first time.

    Returns (batch, created). A concurrent request with the same key loses the unique
    constraint's race and gets the winner's batch; its own files are removed again.
    Raises ``IdempotencyKeyReused``, storing nothing, when the key's batch was made from a
    different payload (draft-ietf-httpapi-idempotency-key-header: a key names one request).
    """
    fingerprint = idempotency_fingerprint(
        files=files, name=name, callback_url=callback_url, all_or_nothing=all_or_nothing
    )
    existing = Batch.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
    if existing is not None:
        return _idempotent_replay(existing, fingerprint), False
    try:
        batch = batch_create(
            owner=owner,
            files=files,
            name=name,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            idempotency_fingerprint=fingerprint,
            all_or_nothing=all_or_nothing,
            context=context,
        )
    except IntegrityError:
        winner = Batch.objects.get(owner=owner, idempotency_key=idempotency_key)
        return _idempotent_replay(winner, fingerprint), False
    return batch, True


def idempotency_fingerprint(
    *, files: Sequence[UploadedFile], name: str, callback_url: str, all_or_nothing: bool = False
) -> str:
    """sha256 over what a batch request asks for: each file's bytes and name, the batch name, the
    callback URL and, when asked for, all-or-nothing. Files are sorted, so the same files sent in
    another order match; a request without all-or-nothing hashes as it did before it existed."""
    entries = sorted([_file_sha256(upload), upload.name or ""] for upload in files)
    request = {"files": entries, "name": name.strip(), "callback_url": callback_url}
    if all_or_nothing:
        request["all_or_nothing"] = True
    canonical = json.dumps(request, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _file_sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)  # batch_create reads it again
    return digest.hexdigest()


def _idempotent_replay(batch: Batch, fingerprint: str) -> Batch:
    # A batch stored before fingerprints were recorded has none: it replays as it always did.
    if batch.idempotency_fingerprint and batch.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return batch


class BatchBusy(ValueError):
    """The batch still has queued or running jobs."""


def batch_delete(*, batch: Batch) -> list[int] | None:
    """Delete a finished batch, its jobs, predictions and stored images; returns the deleted job
    ids, or None when the batch was already gone.

    A batch still being classified is refused (BatchBusy): a worker may hold one of its jobs.
    The rows go in one transaction; the image files after it commits.
    """
    with transaction.atomic():
        locked = Batch.objects.select_for_update().filter(pk=batch.pk).first()
        if locked is None:
            return None
        if Job.objects.filter(batch=locked).exclude(status__in=Job.FINISHED).exists():
            raise BatchBusy("The batch is still being classified; delete it once it has finished.")
        jobs = list(Job.objects.filter(batch=locked).order_by("pk").values_list("pk", "image"))
        names = [name for _pk, name in jobs if name]
        locked.delete()
        transaction.on_commit(lambda: _delete_files(names))
    return [pk for pk, _name in jobs]


def batch_delete_recorded(*, batch: Batch, context: AuditContext | None, via: str = "") -> None:
    """batch_delete, recorded in the audit log as done by the context's actor (with the API token,
    address and request id it came with); `via` names the door when it is not the API ("admin").

    The delete and its record commit together; a refusal (BatchBusy, re-raised) is recorded too.
    Every door that deletes batches comes through here, so none leaves files or records behind.
    """
    door = {"via": via} if via else {}
    target = {"action": Action.BATCH_DELETE, "target_type": "batch", "target_id": batch.pk}
    try:
        with transaction.atomic():
            jobs = batch_delete(batch=batch)
            if jobs is None:
                audit_record(**target, context=context, outcome=Outcome.NOT_FOUND, detail=door)
            else:
                audit_record(**target, context=context, detail={"jobs": jobs, **door})
    except BatchBusy as exc:
        audit_record(**target, context=context, outcome=Outcome.REFUSED, detail={"reason": str(exc), **door})
        raise


def _delete_files(names: Sequence[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete stored image %s", name)


def _enqueue_all(jobs: Sequence[Job]) -> None:
    """One message per ECGSITE_CLASSIFY_BATCH_SIZE jobs, under the first job's id and task id:
    the task it starts claims that job and the queued ones beside it (``jobs_claim_more``), so a
    message per job would mostly find its job taken. Every message takes up to that many queued
    jobs, whether or not its own is still queued, so no job waits without one; a lost message
    leaves its jobs to the reaper, as before."""
    size = max(1, settings.ECGSITE_CLASSIFY_BATCH_SIZE)
    for job in jobs[::size]:
        dispatch.enqueue_classify(job_id=job.pk, task_id=job.task_id)


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
            job.error = attempts_exhausted_message(job.attempts)
            job.finished = now
            job.save(update_fields=["status", "error", "finished"])
            logger.warning("job %s failed: attempts exhausted", job_id)
            return None
        job.status = Job.Status.RUNNING
        job.task_id = task_id
        job.attempts += 1
        job.started = now
        job.lease_expires = _lease_from(now)
        job.save(update_fields=["status", "task_id", "attempts", "started", "lease_expires"])
    return job


def _lease_from(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.ECGSITE_LEASE_S)


def jobs_lease_renew(*, task_id: str, job_ids: Sequence[int]) -> int:
    """Extend the leases of the jobs this delivery still runs (``worker.heartbeat``, every few
    seconds); the number renewed. A job the reaper took back meanwhile is not this delivery's
    any more, and stays with whoever has it."""
    if not job_ids:
        return 0
    return Job.objects.filter(pk__in=job_ids, status=Job.Status.RUNNING, task_id=task_id).update(
        lease_expires=_lease_from(timezone.now())
    )


def jobs_claim_batch(*, job_id: int, task_id: str, limit: int) -> list[Job]:
    """The jobs one classify task runs: its message's job (``job_claim``) first, and up to
    ``limit`` in all for the same model (``jobs_claim_more``).

    When its own job is taken already (finished, or claimed beside another job), the task still
    takes up to ``limit`` queued jobs: messages go out one per batch of jobs (``_enqueue_all``),
    so the jobs it was sent for may still be waiting.
    """
    job = job_claim(job_id=job_id, task_id=task_id)
    if job is not None:
        return [job, *jobs_claim_more(job=job, task_id=task_id, limit=limit - 1)]
    sent_for = Job.objects.filter(pk=job_id).first()
    return [] if sent_for is None else jobs_claim_more(job=sent_for, task_id=task_id, limit=limit)


def jobs_claim_more(*, job: Job, task_id: str, limit: int) -> list[Job]:
    """Claim up to ``limit`` more jobs to classify beside ``job`` (claimed by ``job_claim``) in one
    forward pass: queued jobs for the same model (the default, or the same re-run's version),
    oldest first, and those this task claimed before (its redelivery resumes them all).

    A conditional UPDATE takes them (still queued, or still this task's; attempts left), so each
    job goes to one delivery only; a message sent for one of them later finds it taken.
    """
    if limit <= 0:
        return []
    mine = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, task_id=task_id)
    candidates = (
        Job.objects.filter(mine, requested_model=job.requested_model_id)
        .filter(attempts__lt=settings.ECGSITE_MAX_ATTEMPTS)
        .exclude(pk=job.pk)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(candidates)
    if not ids:
        return []
    now = timezone.now()
    Job.objects.filter(mine, pk__in=ids).update(
        status=Job.Status.RUNNING,
        task_id=task_id,
        attempts=F("attempts") + 1,
        started=now,
        lease_expires=_lease_from(now),
    )
    return list(Job.objects.filter(pk__in=ids, status=Job.Status.RUNNING, task_id=task_id).order_by("pk"))


def _version_fields(identity: ModelIdentity) -> dict[str, object]:
    return {
        "architecture": identity.architecture,
        "file_sha256": identity.file_sha256,
        "card": identity.card,
        "metrics": summary_from_card(
            {**identity.card, "name": identity.name, "architecture": identity.architecture}
        ).compact(),
    }


def model_version_register(*, identity: ModelIdentity) -> ModelVersion:
    """The ModelVersion row for a loaded model, created the first time it is seen.

    A worker whose file differs from the registered one is refused (ValueError): its
    predictions would be filed under another model's name. `register_models` decides
    which file a name stands for.
    """
    version, created = ModelVersion.objects.get_or_create(
        name=identity.name, defaults=_version_fields(identity)
    )
    if not created and version.file_sha256 != identity.file_sha256:
        raise ValueError(
            f"Model {identity.name!r} has file sha256 {identity.file_sha256}, but the registered "
            f"version has {version.file_sha256}: give a retrained model a new name."
        )
    return version


@dataclass(frozen=True)
class ModelRegistration:
    version: ModelVersion
    outcome: str  # "created", "sha256 changed", "card updated" or "unchanged"
    previous_sha256: str = ""


def model_version_sync(*, identity: ModelIdentity) -> ModelRegistration:
    """Create or update the ModelVersion named like `identity` so it matches it exactly."""
    fields = _version_fields(identity)
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(name=identity.name).first()
        if version is None:
            return ModelRegistration(ModelVersion.objects.create(name=identity.name, **fields), "created")
        previous = version.file_sha256
        changed = [key for key, value in fields.items() if getattr(version, key) != value]
        if not changed:
            return ModelRegistration(version, "unchanged")
        for key in changed:
            setattr(version, key, fields[key])
        version.save(update_fields=changed)
    if previous != identity.file_sha256:
        logger.warning(
            "model %s: file sha256 changed from %s to %s", identity.name, previous, identity.file_sha256
        )
        return ModelRegistration(version, "sha256 changed", previous_sha256=previous)
    return ModelRegistration(version, "card updated")


def model_versions_register_shipped(*, cards: Sequence[dict] | None = None) -> list[ModelRegistration]:
    """Register every shipped model (`ml.models.list_model_cards()`, or `cards`) as a ModelVersion.

    Idempotent: a second run reports every model unchanged. A card without a name,
    architecture or file sha256 is a broken card: ValueError, nothing registered.
    """
    if cards is None:
        cards = shipped_models.list_model_cards()
    identities = [ModelIdentity.from_card(card) for card in cards]
    with transaction.atomic():
        return [model_version_sync(identity=identity) for identity in identities]


def default_model_name() -> str:
    """The model new jobs run on: ECGSITE_MODEL (a name, or a .keras path's stem), else the default."""
    choice = settings.ECGSITE_MODEL
    if not choice:
        return shipped_models.DEFAULT_MODEL_NAME
    return Path(choice).stem if choice.endswith(".keras") else choice


def prediction_record(
    *,
    job: Job,
    model_version: ModelVersion,
    label: str,
    probabilities: dict[str, float],
    inference_ms: float,
    signal: PageSignal | None = None,
    measurements: PageMeasurements | None = None,
    explanation: dict[str, Any] | None = None,
) -> Job:
    """Store the prediction and mark the running job succeeded, at most once per job and model.

    ``signal`` is the page's digitised leads and ``measurements`` what was measured on them
    (``classifier.ecg_signal.page_reading``), stored with the prediction; None where the
    digitiser could not read the page. Measurements come only with a signal. ``explanation``
    (``classifier.explanations.ExplanationRecord``) says which lead and seconds drove the label.

    A job that is no longer this delivery's (another delivery finished it or holds it now,
    after this one's worker froze past its lease; or it failed meanwhile) keeps its state and
    gets no prediction. A job this model already predicted (a re-run on
    the same model) succeeds and keeps the earlier prediction.
    """
    _check_probabilities(label, probabilities)
    if signal is not None:
        signal_check(signal)
    measurements_check(measurements)
    explanation_check(explanation)
    if measurements is not None and signal is None:
        # Served beside the leads they were read from: without those, nothing backs them.
        raise ValueError("measurements are stored only with the signal they were read from")
    now = timezone.now()
    with transaction.atomic():
        finished = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, task_id=job.task_id).update(
            status=Job.Status.SUCCEEDED, model_version=model_version, finished=now, error=""
        )
        if finished:
            try:
                # A savepoint: a job re-run on a model that already predicted it still succeeds.
                with transaction.atomic():
                    Prediction.objects.create(
                        job=job,
                        model_version=model_version,
                        label=label,
                        probabilities={key: float(probabilities[key]) for key in CLASS_KEYS},
                        inference_ms=inference_ms,
                        signal=signal,
                        measurements=measurements,
                        explanation=explanation,
                    )
            except IntegrityError:
                logger.info("job %s already has a prediction from %s; kept the first", job.pk, model_version)
        else:
            logger.info("job %s is no longer this delivery's; its prediction was not stored", job.pk)
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


def job_fail(*, job_id: int, error: str, task_id: str | None = None) -> Job:
    """Mark an unfinished job failed with a message its owner will read; with ``task_id``, only
    while that delivery still holds it (a worker fails only its own jobs)."""
    unfinished = Job.objects.filter(pk=job_id).exclude(status__in=Job.FINISHED)
    if task_id is not None:
        unfinished = unfinished.filter(task_id=task_id)
    unfinished.update(status=Job.Status.FAILED, error=error, finished=timezone.now())
    return Job.objects.get(pk=job_id)


def jobs_fail_unfinished(*, job_ids: Sequence[int], error: str, task_id: str | None = None) -> list[int]:
    """Fail those of the jobs that have not finished (``job_fail``, ``task_id`` as there); the
    ids of those it failed."""
    unfinished = Job.objects.filter(pk__in=job_ids).exclude(status__in=Job.FINISHED)
    if task_id is not None:
        unfinished = unfinished.filter(task_id=task_id)
    ids = list(unfinished.values_list("pk", flat=True))
    for job_id in ids:
        job_fail(job_id=job_id, error=error, task_id=task_id)
    return ids


def batch_complete_if_done(*, batch_id: int) -> bool:
    """Stamp the batch completed when its last job finished; True only for the caller that did.

    Runs after the job's own transaction committed, so the last job to finish always sees
    every other job finished; the conditional update lets exactly one caller win.
    """
    if Job.objects.filter(batch_id=batch_id).exclude(status__in=Job.FINISHED).exists():
        return False
    changed = Batch.objects.filter(pk=batch_id, completed__isnull=True).update(completed=timezone.now())
    return changed == 1


def batch_finish_if_done(*, batch_id: int) -> bool:
    """Complete the batch if its last job finished, then tell its owner; True only for the caller
    that completed it, so the owner hears once.

    In this order: the batch is stamped completed (``batch_complete_if_done``), the owner's open
    browsers get batch.completed, the owner gets the email, and a batch with a callback URL gets
    its webhook delivery (queued after that delivery commits).
    """
    if not batch_complete_if_done(batch_id=batch_id):
        return False
    batch = Batch.objects.select_related("owner").get(pk=batch_id)
    events.batch_completed(batch)
    notifications.batch_completed_email(batch)
    webhooks.webhook_delivery_create_for_batch(batch_id=batch_id)
    return True


def job_report(*, job_id: int) -> None:
    """Tell the job's owner where it stands; when it finished, finish its batch if it was the last.

    Called by the worker after each change it makes to a job, and by ``jobs_reap_and_enqueue``.
    """
    jobs_report(job_ids=[job_id])


def jobs_report(*, job_ids: Sequence[int]) -> None:
    """``job_report`` for several jobs, read at once (the worker reports a chunk of results).

    Each batch with a finished job among them is checked once for completion, after every job's
    event went out, so batch.completed follows the last job's.
    """
    jobs = jobs_get_with_predictions(job_ids=job_ids)
    events.jobs_updated(jobs)
    for batch_id in dict.fromkeys(job.batch_id for job in jobs if job.is_finished):
        batch_finish_if_done(batch_id=batch_id)


def jobs_reap_and_enqueue(
    *, limit: int | None = None, enqueue: Callable[..., None] | None = None
) -> ReapResult:
    """Run the reaper once (classifier.reaper): enqueue the jobs it re-queued, report those it changed.

    `enqueue` (job_id=, task_id=) defaults to ``dispatch.enqueue_classify``; the embedded runner
    passes its own, so the jobs go to its thread. The entry point of the beat task, the
    `reap_stale_jobs` command and the embedded runner's timer.
    """
    enqueue = enqueue or dispatch.enqueue_classify
    result = jobs_reap_stale(limit=limit)
    for job_id, task_id in result.requeued:
        enqueue(job_id=job_id, task_id=task_id)
    for job_id in result.changed:
        job_report(job_id=job_id)
    if result.requeued or result.failed:
        logger.info("reaper: re-queued %s job(s), failed %s", len(result.requeued), len(result.failed))
    workers_forget_gone()
    return result


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
            .update(status=Job.Status.QUEUED, task_id=task_id, enqueued_at=timezone.now())
        )
        if changed:
            requeued.append((job_id, task_id))
    return requeued


class JobNotFinished(ValueError):
    """The job is still queued or running: a worker may hold it, so it cannot be re-run yet."""


@dataclass(frozen=True)
class RerunResult:
    rerun: list[int]  # job ids queued again
    skipped: list[int]  # job ids still queued or running, left alone


def jobs_rerun(
    *,
    jobs: Iterable[Job],
    model_version: ModelVersion,
    actor: User | None,
    context: AuditContext | None = None,
) -> RerunResult:
    """Queue finished jobs again, to run on `model_version`; unfinished jobs are skipped.

    1. Lock the jobs; skip those not finished (a worker may hold them).
    2. Reset each to queued: requested model set, attempts 0, error cleared, a fresh task id.
       Earlier predictions stay (one per job and model version); the newest one is shown.
    3. Reopen their batches, so the last job to finish completes them again.
    4. Record one job.rerun audit event per job (refused for skipped ones); enqueue after commit.
    """
    job_ids = sorted({job.pk for job in jobs})
    now = timezone.now()
    queued: list[Job] = []
    skipped: list[int] = []
    with transaction.atomic():
        for job in Job.objects.select_for_update().filter(pk__in=job_ids).order_by("pk"):
            if not job.is_finished:
                skipped.append(job.pk)
                continue
            job.status = Job.Status.QUEUED
            job.requested_model = model_version
            job.attempts = 0
            job.error = ""
            job.task_id = uuid.uuid4().hex
            job.started = None
            job.finished = None
            job.enqueued_at = now  # handed to the broker when this transaction commits
            job.save(
                update_fields=[
                    "status",
                    "requested_model",
                    "attempts",
                    "error",
                    "task_id",
                    "started",
                    "finished",
                    "enqueued_at",
                ]
            )
            queued.append(job)
        Batch.objects.filter(pk__in={job.batch_id for job in queued}).update(completed=None)
        detail = {"model_version": model_version.name}
        refused = {"outcome": Outcome.REFUSED, "detail": {**detail, "reason": "not finished"}}
        events = [(job.pk, {"detail": detail}) for job in queued] + [(pk, refused) for pk in skipped]
        for job_id, event in events:
            audit_record(
                action=Action.JOB_RERUN,
                context=context,
                actor=actor,
                target_type="job",
                target_id=job_id,
                **event,
            )
        transaction.on_commit(lambda: _enqueue_all(queued))
    return RerunResult(rerun=[job.pk for job in queued], skipped=skipped)


def job_rerun(
    *, job: Job, model_version: ModelVersion, actor: User | None, context: AuditContext | None = None
) -> Job:
    """Queue one finished job again on `model_version`; JobNotFinished if it is queued or running."""
    result = jobs_rerun(jobs=[job], model_version=model_version, actor=actor, context=context)
    if result.skipped:
        raise JobNotFinished(f"Job {job.pk} is still queued or running; re-run it once it has finished.")
    job.refresh_from_db()
    return job


def batch_rerun(
    *, batch: Batch, model_version: ModelVersion, actor: User | None, context: AuditContext | None = None
) -> RerunResult:
    """Queue every finished job of the batch again on `model_version` (see jobs_rerun)."""
    return jobs_rerun(jobs=batch.jobs.all(), model_version=model_version, actor=actor, context=context)


@dataclass(frozen=True)
class WorkerBeat:
    """What one worker process says of itself in each heartbeat (``worker.heartbeat``)."""

    hostname: str
    pid: int
    queues: tuple[str, ...]
    model: str  # "" for a worker that classifies nothing
    state: str  # a WorkerProcess.State value
    started: datetime


def worker_seen(*, beat: WorkerBeat) -> None:
    """Record that this worker process is alive now, and in what state."""
    WorkerProcess.objects.update_or_create(
        name=f"{beat.hostname}/{beat.pid}",
        defaults={
            "hostname": beat.hostname,
            "pid": beat.pid,
            "queues": ",".join(beat.queues),
            "model": beat.model,
            "state": beat.state,
            "started": beat.started,
            "seen": timezone.now(),
        },
    )


# Rows of worker processes not heard from for this long are deleted by the reaper's runs.
WORKER_FORGOTTEN_AFTER = timedelta(hours=1)


def workers_forget_gone(*, now: datetime | None = None) -> int:
    """Delete the rows of worker processes long gone (restarts leave one each); how many."""
    cutoff = (now or timezone.now()) - WORKER_FORGOTTEN_AFTER
    deleted, _ = WorkerProcess.objects.filter(seen__lt=cutoff).delete()
    return deleted
