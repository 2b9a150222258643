"""Plain-dict views of batches and jobs, shared by websocket events, pages and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from classifier.models import CLASS_KEYS, Batch, Job
from ml.decision import label_note


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def job_as_dict(job: Job) -> dict[str, Any]:
    """A job with its newest prediction (label and all four probabilities), JSON-ready.

    ``label_note`` says why the label is not the most probable class, when the model's
    decision rule (an MI threshold) made it so; otherwise it is empty.
    """
    predictions = list(job.predictions.all())
    prediction = predictions[0] if predictions else None
    probabilities = {key: prediction.probabilities[key] for key in CLASS_KEYS} if prediction else None
    return {
        "id": job.pk,
        "batch": job.batch_id,
        "status": job.status,
        "image_name": job.original_name,
        "image_url": reverse("classifier:job-image", args=[job.pk]),
        "sha256": job.sha256,
        "label": prediction.label if prediction else None,
        "label_note": (
            label_note(prediction.label, probabilities, prediction.model_version.card) if prediction else ""
        ),
        "probabilities": probabilities,
        "model_version": prediction.model_version.name if prediction else None,
        "inference_ms": prediction.inference_ms if prediction else None,
        "error": job.error,
        "attempts": job.attempts,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
    }


def batch_counts(jobs: list[Job]) -> dict[str, int]:
    counts = {status: 0 for status in Job.Status.values}
    for job in jobs:
        counts[job.status] += 1
    return counts


def batch_as_dict(batch: Batch, *, with_jobs: bool = True) -> dict[str, Any]:
    """A batch with its counts per status and, unless asked not to, its jobs."""
    jobs = list(batch.jobs.all())
    data: dict[str, Any] = {
        "id": batch.pk,
        "name": batch.name,
        "status": "completed" if batch.is_completed else "processing",
        "created": _iso(batch.created),
        "finished": _iso(batch.completed),
        "url": reverse("classifier:batch-detail", args=[batch.pk]),
        "counts": batch_counts(jobs),
        "total": len(jobs),
    }
    if with_jobs:
        data["jobs"] = [job_as_dict(job) for job in jobs]
    return data
