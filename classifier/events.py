"""Telling a user's open browsers what changed. Best effort: the database stays the truth, and a
client that reconnects gets the current state, so a lost event delays nothing."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from classifier.models import Batch, Job
from classifier.presenters import batch_as_dict, job_as_dict
from classifier.selectors import user_group_name

logger = logging.getLogger(__name__)


def _send(user_id: int, event_type: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Handlers are named after the type with dots as underscores (job.updated → job_updated).
        async_to_sync(layer.group_send)(user_group_name(user_id), {"type": event_type, "payload": payload})
    except Exception:  # a notification failure must never fail the job itself
        logger.exception("could not send %s to user %s", event_type, user_id)


def job_updated(job: Job) -> None:
    _send(job.batch.owner_id, "job.updated", job_as_dict(job))


def batch_completed(batch: Batch) -> None:
    _send(batch.owner_id, "batch.completed", batch_as_dict(batch, with_jobs=False))
