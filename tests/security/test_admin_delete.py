"""Deleting a batch in the admin goes through the same service as the API's delete: it is recorded
in the audit log (with via=admin), its stored images leave the disk, and a batch still being
classified is refused and kept. Jobs are never deleted on their own: they go with their batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib import messages
from django.contrib.admin import helpers
from django.urls import reverse

from classifier.models import AuditEvent, Batch, Job, WebhookDelivery
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory
from tests.conftest import stored_files

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:classifier_batch_changelist"


def _batch(owner, status: str = "succeeded") -> Batch:
    batch = BatchFactory(owner=owner)
    JobFactory(batch=batch, status=status)
    JobFactory(batch=batch, status=status)
    return batch


def _image_paths(batch: Batch, media_root: Path) -> list[Path]:
    paths = [media_root / name for name in batch.jobs.values_list("image", flat=True)]
    assert len(paths) == 2 and all(path.is_file() for path in paths)
    return paths


def _delete_events(batch: Batch) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="batch.delete", target_id=batch.pk))


def _messages(response) -> list[tuple[int, str]]:
    return [(message.level, str(message)) for message in response.context["messages"]]


def _bulk_delete(client, batches: list[Batch]):
    return client.post(
        reverse(CHANGELIST),
        {
            "action": "delete_selected",
            "post": "yes",
            helpers.ACTION_CHECKBOX_NAME: [batch.pk for batch in batches],
        },
        follow=True,
    )


def test_the_admin_delete_view_records_the_delete_and_removes_the_images(
    staff_client, staff, owner, media_root, django_capture_on_commit_callbacks
):
    batch = _batch(owner)
    images = _image_paths(batch, media_root)
    job_ids = sorted(batch.jobs.values_list("pk", flat=True))
    url = reverse("admin:classifier_batch_delete", args=[batch.pk])

    assert staff_client.get(url).status_code == 200  # the confirmation page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Batch.objects.filter(pk=batch.pk).exists()
    assert not Job.objects.filter(pk__in=job_ids).exists()
    assert not any(path.exists() for path in images)
    [event] = _delete_events(batch)
    assert (event.actor, event.outcome) == (staff, "success")
    assert event.detail == {"jobs": job_ids, "via": "admin"}
    assert event.ip == "127.0.0.1"


def test_the_bulk_delete_action_records_each_delete_and_removes_the_images(
    staff_client, staff, owner, other_user, media_root, django_capture_on_commit_callbacks
):
    batches = [_batch(owner), _batch(other_user)]
    images = [path for batch in batches for path in _image_paths(batch, media_root)]

    with django_capture_on_commit_callbacks(execute=True):
        response = _bulk_delete(staff_client, batches)

    assert response.status_code == 200
    assert not Batch.objects.filter(pk__in=[batch.pk for batch in batches]).exists()
    assert stored_files(media_root) == []
    assert not any(path.exists() for path in images)
    for batch in batches:
        [event] = _delete_events(batch)
        assert (event.actor, event.outcome, event.detail["via"]) == (staff, "success", "admin")
    assert (messages.SUCCESS, "Deleted 2 batches.") in _messages(response)


def test_the_admin_delete_view_refuses_a_batch_still_being_classified(
    staff_client, owner, media_root, django_capture_on_commit_callbacks
):
    busy = _batch(owner, status="running")
    images = _image_paths(busy, media_root)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:classifier_batch_delete", args=[busy.pk]), {"post": "yes"}, follow=True
        )

    assert Batch.objects.filter(pk=busy.pk).exists()
    assert busy.jobs.count() == 2
    assert all(path.is_file() for path in images)
    [event] = _delete_events(busy)
    assert (event.outcome, event.detail["via"]) == ("refused", "admin")
    assert [level for level, _text in _messages(response)] == [messages.ERROR]


def test_the_bulk_delete_action_skips_a_busy_batch_and_does_not_count_it(
    staff_client, owner, media_root, django_capture_on_commit_callbacks
):
    done, busy = _batch(owner), _batch(owner, status="queued")
    busy_images = _image_paths(busy, media_root)

    with django_capture_on_commit_callbacks(execute=True):
        response = _bulk_delete(staff_client, [done, busy])

    assert not Batch.objects.filter(pk=done.pk).exists()
    assert Batch.objects.filter(pk=busy.pk).exists()
    assert all(path.is_file() for path in busy_images)
    assert [event.outcome for event in _delete_events(busy)] == ["refused"]
    shown = _messages(response)
    assert (messages.SUCCESS, "Deleted 1 batch.") in shown
    assert not any("Successfully deleted 2" in text for _level, text in shown)
    assert any(level == messages.WARNING and busy.name in text for level, text in shown)


def test_jobs_cannot_be_deleted_on_their_own_in_the_admin(staff_client, owner, media_root):
    job = _batch(owner).jobs.first()

    response = staff_client.post(reverse("admin:classifier_job_delete", args=[job.pk]), {"post": "yes"})
    changelist = staff_client.get(reverse("admin:classifier_job_changelist"))

    assert response.status_code == 403
    assert Job.objects.filter(pk=job.pk).exists()
    assert 'value="delete_selected"' not in changelist.content.decode()


def test_predictions_and_webhook_deliveries_cannot_be_deleted_on_their_own(staff_client, owner):
    batch = _batch(owner)
    prediction = PredictionFactory(job=batch.jobs.first(), model_version=ModelVersionFactory())
    delivery = WebhookDelivery.objects.create(batch=batch, url="https://example.com/hook", payload="{}")

    for url_name, row in (("prediction", prediction), ("webhookdelivery", delivery)):
        response = staff_client.post(
            reverse(f"admin:classifier_{url_name}_delete", args=[row.pk]), {"post": "yes"}
        )
        assert response.status_code == 403, url_name
        assert type(row).objects.filter(pk=row.pk).exists()
