"""Batches of uploaded ECG images, one classification job per image, and their predictions.

The database is the record: a Job's status only moves forward (queued → running → succeeded |
failed), and only through classifier.services, which check the state they expect.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

CLASS_KEYS = ("normal", "mi", "history_mi", "abnormal")


class Label(models.TextChoices):
    NORMAL = "normal", "Normal"
    MI = "mi", "Acute myocardial infarction"
    HISTORY_MI = "history_mi", "History of MI"
    ABNORMAL = "abnormal", "Abnormal heartbeat"


class ModelVersion(models.Model):
    """A trained model the workers can run, identified by name and file hash."""

    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=50)
    file_sha256 = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Batch(models.Model):
    """Images one user uploaded together."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    completed = models.DateTimeField(null=True, blank=True)
    # Where the API client wants the completed batch POSTed (empty: nowhere).
    callback_url = models.URLField(max_length=2000, blank=True)
    # The API client's Idempotency-Key: a retried request finds this batch instead of making one.
    # NULL, not "", when absent: the unique constraint must let every unkeyed batch through.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # sha256 of the keyed request's payload (services.idempotency_fingerprint): the key replays
    # only the same request. Blank for batches stored before it was recorded: those replay as before.
    idempotency_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The upload's files refused at the door, each {"name", "reason"}: listed to the owner, and
    # nothing else of them kept (the good files went ahead without them).
    rejected = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(
                fields=("owner", "idempotency_key"), name="one_batch_per_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"

    @property
    def is_completed(self) -> bool:
        return self.completed is not None


def job_image_path(job: Job, filename: str) -> str:
    # Random, not user-chosen, names: an upload's own name never reaches the file system.
    # `filename` is the re-encoded file's name, whose suffix the service chose.
    suffix = ".png" if filename.lower().endswith(".png") else ".jpg"
    return f"jobs/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{suffix}"


class Job(models.Model):
    """The classification of one image."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="jobs")
    image = models.ImageField(upload_to=job_image_path)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    # The upload was a photo of a printout, stored straightened (ml.rectify): the model labels
    # it by its card's photo rule (ml.decision), as the photo's probabilities sit elsewhere.
    photographed = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The broker delivery that owns the job while it runs; a redelivery of it may resume.
    task_id = models.CharField(max_length=64, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    # The model version the next run must use (an admin re-run); empty: the default model.
    requested_model = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="requested_jobs"
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the job was last handed to the broker: the reaper's clock for jobs stuck in queued.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    # Until when the running job is its worker's: set by the claim, renewed by the worker's
    # heartbeat (worker.heartbeat); once it has passed, the reaper hands the job back.
    lease_expires = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def result(self) -> Prediction | None:
        """The prediction a succeeded job shows (its newest: predictions are read newest first),
        or None for a job that has not succeeded."""
        if self.status != self.Status.SUCCEEDED:
            return None
        return next(iter(self.predictions.all()), None)


class Prediction(models.Model):
    """What one model version said about one job's image."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    label = models.CharField(max_length=20, choices=Label.choices, db_index=True)
    probabilities = models.JSONField()
    inference_ms = models.FloatField()
    # The page's twelve leads in mV as digitised by the worker (ml.traces), in the shape of
    # ``python -m ml.digitise``: {"fs", "leads", "start_s", "rhythm"}. Null for predictions
    # stored before it was recorded, and where the digitiser failed on the page.
    signal = models.JSONField(null=True, blank=True)
    # What ml.measurements read from those leads (heart rate, intervals, ST and Q waves per lead:
    # classifier.ecg_signal.PageMeasurements). Apart from the signal, and small, because the pages
    # and events show it without reading the signal. Null where there is no signal.
    measurements = models.JSONField(null=True, blank=True)
    # Which lead and seconds drove the label (classifier.explanations.ExplanationRecord: the
    # sentence and a small weight map, under 2 kB). Null for models that are not explained, and
    # for predictions stored before explanations were.
    explanation = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(fields=("job", "model_version"), name="one_prediction_per_job_and_model"),
        ]

    def __str__(self) -> str:
        return f"{self.label} for job {self.job_id} by {self.model_version}"


class WebhookDelivery(models.Model):
    """One event to POST to a batch's callback URL, retried with backoff until it lands or gives up.

    The row is the record: `next_attempt_at` says when it is due, so a lost queue message only
    delays it (the sweep in classifier.webhooks finds due rows again).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    # The receiver's idempotency key (the `webhook-id` header): the same for every attempt.
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=50, default="batch.completed")
    url = models.URLField(max_length=2000)
    payload = models.TextField()  # the exact JSON body, the same on every attempt
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    delivered = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} of batch {self.batch_id} to {self.url}"


class WebhookAttempt(models.Model):
    """One try at sending a WebhookDelivery: when, what came back, or what went wrong."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started = models.DateTimeField()
    duration_ms = models.FloatField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("delivery", "number")

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    """Append-only: bulk updates and deletes through the ORM are refused."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("Audit events are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    """Who did what to which object, from where, when, and how it ended. Written once, never changed.

    Holds ids and names, never image data. `actor` is kept as a snapshot (`actor_label`) too,
    so an entry still says who it was after the account is gone.
    """

    class Action(models.TextChoices):
        BATCH_CREATE = "batch.create", "Batch uploaded"
        BATCH_LIST = "batch.list", "Batches listed"
        BATCH_VIEW = "batch.view", "Batch viewed"
        BATCH_DELETE = "batch.delete", "Batch deleted"
        JOB_VIEW = "job.view", "Job viewed"
        JOB_RERUN = "job.rerun", "Job re-run"
        IMAGE_VIEW = "image.view", "Image viewed"
        SIGNAL_VIEW = "signal.view", "Signal viewed"
        TOKEN_CREATE = "token.create", "API token created"
        TOKEN_REVOKE = "token.revoke", "API token revoked"
        LOGIN = "login", "Logged in"
        LOGIN_FAILED = "login.failed", "Login failed"
        LOGOUT = "logout", "Logged out"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        REFUSED = "refused", "Refused"  # bad input, or the object's state did not allow it
        NOT_FOUND = "not_found", "Not found"  # no such object among the actor's own
        FAILED = "failed", "Failed"  # wrong credentials

    created = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
        editable=False,
    )
    actor_label = models.CharField(max_length=254, editable=False)  # email, "system" or "anonymous"
    api_token_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    action = models.CharField(max_length=20, choices=Action.choices, db_index=True, editable=False)
    target_type = models.CharField(max_length=20, blank=True, editable=False)
    target_id = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS, db_index=True, editable=False
    )
    detail = models.JSONField(default=dict, blank=True, editable=False)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        indexes = [models.Index(fields=("target_type", "target_id"), name="audit_target")]

    def __str__(self) -> str:
        target = f" {self.target_type} {self.target_id}" if self.target_type else ""
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}{target}: {self.outcome}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be updated.")
        # An insert even when a pk is given: a new object must never overwrite an old entry.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class WorkerProcess(models.Model):
    """A worker process as its heartbeat (worker.heartbeat) last reported it: what the health
    endpoint and the metrics count as live workers. One row per process; gone ones are pruned."""

    class State(models.TextChoices):
        LOADING = "loading", "Loading its model"
        READY = "ready", "Ready"
        UNAVAILABLE = "unavailable", "Its model cannot run"

    name = models.CharField(max_length=255, unique=True)  # "<hostname>/<pid>"
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.CharField(max_length=255, blank=True)  # comma-separated
    model = models.CharField(max_length=255, blank=True)  # "" on a worker that classifies nothing
    state = models.CharField(max_length=12, choices=State.choices)
    started = models.DateTimeField()
    seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"Worker {self.name} ({self.state})"
