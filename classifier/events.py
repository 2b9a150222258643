"""Telling a user's open browsers what changed. Best effort: the database stays the truth, and a
client that reconnects gets the current state, so a lost event delays nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from classifier.models import Batch, Job
from classifier.presenters import batch_as_dict, job_as_dict
from classifier.selectors import user_group_name

logger = logging.getLogger(__name__)


def _send(user_id: int, event_type: str, payload: dict[str, Any]) -> None:
    _send_all([(user_id, event_type, payload)])


def _send_all(events: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Send each (user id, type, payload) in order, on one event loop: each async_to_sync call
    starts a loop and a Redis connection of its own, which cost more than the sends."""
    layer = get_channel_layer()
    if layer is None or not events:
        return

    async def send_each() -> None:
        for user_id, event_type, payload in events:
            try:
                # Handlers are named after the type with dots as underscores (job.updated → job_updated).
                await layer.group_send(user_group_name(user_id), {"type": event_type, "payload": payload})
            except Exception:  # a notification failure must never fail the job itself
                logger.exception("could not send %s to user %s", event_type, user_id)

    try:
        async_to_sync(send_each)()
    except Exception:
        logger.exception("could not send %s event(s)", len(events))


def job_updated(job: Job) -> None:
    _send(job.batch.owner_id, "job.updated", job_as_dict(job))


def jobs_updated(jobs: Iterable[Job]) -> None:
    """``job_updated`` for several jobs, in their order, in one go."""
    _send_all([(job.batch.owner_id, "job.updated", job_as_dict(job)) for job in jobs])


def batch_completed(batch: Batch) -> None:
    _send(batch.owner_id, "batch.completed", batch_as_dict(batch, with_jobs=False))
