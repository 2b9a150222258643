"""The API's JSON for batches and jobs: the shared presenters' dicts, in the API's exact shape."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from classifier.models import Batch, Job
from classifier.presenters import batch_as_dict, job_as_dict

JOB_FIELDS = (
    "id",
    "batch",
    "status",
    "image_name",
    "sha256",
    "label",
    "probabilities",
    "model_version",
    "error",
    "created",
    "started",
    "finished",
)
BATCH_FIELDS = ("id", "name", "status", "created", "finished", "counts")


def api_job_as_dict(job: Job) -> dict[str, Any]:
    data = job_as_dict(job)
    return {
        **{key: data[key] for key in JOB_FIELDS},
        "label_note": data["label_note"],
        "image_url": reverse("api:job-image", args=[job.pk]),
    }


def api_batch_as_dict(batch: Batch) -> dict[str, Any]:
    data = batch_as_dict(batch, with_jobs=False)
    return {
        **{key: data[key] for key in BATCH_FIELDS},
        "callback_url": batch.callback_url or None,
        "jobs": [api_job_as_dict(job) for job in batch.jobs.all()],
    }
