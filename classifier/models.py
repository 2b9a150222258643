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
    MI = "mi", "Myocardial infarction"
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
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The broker delivery that owns the job while it runs; a redelivery of it may resume.
    task_id = models.CharField(max_length=64, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class Prediction(models.Model):
    """What one model version said about one job's image."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    label = models.CharField(max_length=20, choices=Label.choices, db_index=True)
    probabilities = models.JSONField()
    inference_ms = models.FloatField()
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
