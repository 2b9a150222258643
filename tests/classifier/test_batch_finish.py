"""services.batch_finish_if_done: the batch-completion rule, once, in its order."""

from __future__ import annotations

import pytest

from classifier import services
from classifier.models import Job
from tests.classifier.factories import BatchFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def steps(monkeypatch) -> list[str]:
    """What finishing a batch did, in order."""
    done: list[str] = []
    monkeypatch.setattr("classifier.events.batch_completed", lambda batch: done.append("event"))
    monkeypatch.setattr("classifier.notifications.batch_completed_email", lambda batch: done.append("email"))
    monkeypatch.setattr(
        "classifier.webhooks.webhook_delivery_create_for_batch",
        lambda *, batch_id: done.append("webhook"),
    )
    return done


def test_the_last_finished_job_completes_the_batch_then_tells_its_owner(owner, steps):
    batch = BatchFactory(owner=owner)
    JobFactory(batch=batch, status=Job.Status.SUCCEEDED)

    assert services.batch_finish_if_done(batch_id=batch.pk) is True

    batch.refresh_from_db()
    assert batch.completed is not None
    assert steps == ["event", "email", "webhook"]


def test_a_batch_is_finished_once(owner, steps):
    batch = BatchFactory(owner=owner)
    JobFactory(batch=batch, status=Job.Status.FAILED)
    services.batch_finish_if_done(batch_id=batch.pk)

    assert services.batch_finish_if_done(batch_id=batch.pk) is False
    assert steps == ["event", "email", "webhook"]


def test_a_batch_with_a_job_still_queued_is_not_finished(owner, steps):
    batch = BatchFactory(owner=owner)
    JobFactory(batch=batch, status=Job.Status.SUCCEEDED)
    JobFactory(batch=batch)

    assert services.batch_finish_if_done(batch_id=batch.pk) is False
    assert steps == []
    batch.refresh_from_db()
    assert batch.completed is None
