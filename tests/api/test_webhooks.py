"""batch.completed webhooks: signed, retried with backoff, every attempt recorded, SSRF-safe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.tokens import webhook_secret_for_user
from classifier import webhooks
from classifier.models import WebhookAttempt, WebhookDelivery
from tests.classifier.factories import BatchFactory, JobFactory
from tests.conftest import assert_problem

BATCHES = "/api/v1/batches/"


def _submit(api, ecg_png, callback_url, capture, **extra):
    upload = SimpleUploadedFile("ecg.png", ecg_png, content_type="image/png")
    with capture(execute=True):
        response = api.post(BATCHES, {"images": [upload], "callback_url": callback_url, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_a_completed_batch_is_posted_once_to_its_callback_with_a_valid_signature(
    api, owner, ecg_png, media_root, fake_classifier, receiver, django_capture_on_commit_callbacks
):
    batch = _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/hook?source=ecg"
    assert receiver.verified(webhook_secret_for_user(user=owner), request)
    body = json.loads(request["body"])
    assert body["id"] == batch["id"]
    assert body["status"] == "completed"
    assert body["jobs"][0]["label"] == "mi"
    assert request["headers"]["X-ECG-Event"] == "batch.completed"
    assert WebhookDelivery.objects.get().status == "delivered"


def test_the_standard_webhooks_signature_covers_id_timestamp_and_body(
    api, owner, ecg_png, media_root, fake_classifier, receiver, django_capture_on_commit_callbacks
):
    _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    headers = receiver.requests[0]["headers"]
    key = base64.b64decode(webhook_secret_for_user(user=owner).removeprefix("whsec_"))
    signed = (
        f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + receiver.requests[0]["body"]
    )
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    assert headers["webhook-id"] == str(WebhookDelivery.objects.get().event_id)
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60


def test_a_signature_under_another_secret_does_not_verify(
    api, ecg_png, media_root, fake_classifier, receiver, other_user, django_capture_on_commit_callbacks
):
    _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    assert not receiver.verified(webhook_secret_for_user(user=other_user), receiver.requests[0])


def test_server_errors_are_retried_until_a_2xx_and_every_attempt_is_recorded(
    api, ecg_png, media_root, fake_classifier, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 503]
    _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    assert delivery.attempts == 3
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert attempts[0].error == "HTTP 500"
    # Every attempt carries the same event id, so the receiver can drop duplicates.
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_the_delivery_gives_up_after_the_attempt_limit(
    api, ecg_png, media_root, fake_classifier, receiver, settings, django_capture_on_commit_callbacks
):
    settings.ECGSITE_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 10
    _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.attempts == 3
    assert len(receiver.requests) == 3


def test_redirects_are_not_followed(
    api, ecg_png, media_root, fake_classifier, receiver, settings, django_capture_on_commit_callbacks
):
    settings.ECGSITE_WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [302]
    receiver.redirect_to = receiver.url.replace("/hook", "/elsewhere")
    _submit(api, ecg_png, receiver.url, django_capture_on_commit_callbacks)
    assert [r["path"] for r in receiver.requests] == ["/hook?source=ecg"]
    assert WebhookDelivery.objects.get().status == "failed"


def test_an_unreachable_receiver_is_recorded_as_an_error(owner, settings, unused_port):
    settings.ECGSITE_WEBHOOK_ALLOW_PRIVATE = True
    batch = BatchFactory(
        owner=owner, completed=timezone.now(), callback_url=f"http://127.0.0.1:{unused_port}/"
    )
    delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "Connection" in attempt.error or "refused" in attempt.error.lower()


def test_a_failed_attempt_schedules_the_next_with_exponential_backoff(owner, settings, unused_port):
    settings.ECGSITE_WEBHOOK_ALLOW_PRIVATE = True
    settings.ECGSITE_WEBHOOK_BACKOFF_S = 30
    batch = BatchFactory(owner=owner, callback_url=f"http://127.0.0.1:{unused_port}/")
    delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}")
    waits = []
    for _ in range(3):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        before = timezone.now()
        attempted = webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
        waits.append((attempted.next_attempt_at - before).total_seconds())
    assert 24 <= waits[0] <= 37
    assert 48 <= waits[1] <= 73
    assert 96 <= waits[2] <= 145


def test_a_delivery_that_is_not_due_is_not_attempted(owner):
    batch = BatchFactory(owner=owner, callback_url="http://example.com/")
    delivery = WebhookDelivery.objects.create(
        batch=batch,
        url=batch.callback_url,
        payload="{}",
        next_attempt_at=timezone.now() + timezone.timedelta(hours=1),
    )
    assert webhooks.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert WebhookAttempt.objects.count() == 0


def test_the_sweep_finds_due_deliveries_only(owner):
    batch = BatchFactory(owner=owner, callback_url="http://example.com/")
    due = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}")
    WebhookDelivery.objects.create(
        batch=batch,
        url=batch.callback_url,
        payload="{}",
        next_attempt_at=timezone.now() + timezone.timedelta(hours=1),
    )
    WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}", status="delivered")
    assert webhooks.webhook_deliveries_due() == [due.pk]


def test_a_batch_without_a_callback_sends_nothing(
    api, ecg_png, media_root, fake_classifier, django_capture_on_commit_callbacks
):
    _submit(api, ecg_png, "", django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_a_callback_to_a_private_loopback_or_link_local_address_is_refused(api, ecg_png, media_root, url):
    upload = SimpleUploadedFile("ecg.png", ecg_png, content_type="image/png")
    response = api.post(BATCHES, {"images": [upload], "callback_url": url})
    body = assert_problem(response, 400, field="callback_url")
    assert body["type"] == "urn:ecgsite:problem:unsafe-callback-url"


def test_a_callback_that_is_not_http_is_refused(api, ecg_png, media_root):
    upload = SimpleUploadedFile("ecg.png", ecg_png, content_type="image/png")
    assert_problem(api.post(BATCHES, {"images": [upload], "callback_url": "ftp://example.com/x"}), 400)


def test_a_name_that_later_resolves_to_a_private_address_is_refused_at_send_time(owner, monkeypatch):
    batch = BatchFactory(owner=owner, callback_url="http://hooks.example.com/")
    delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}")

    def resolves_to_loopback(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolves_to_loopback)
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "private" in attempt.error


def test_public_addresses_are_allowed():
    assert webhooks._address_is_allowed("93.184.216.34")
    assert not webhooks._address_is_allowed("100.64.0.1")


def test_webhook_attempts_are_visible_in_admin(staff, owner):
    batch = BatchFactory(owner=owner, callback_url="http://example.com/")
    JobFactory(batch=batch)
    delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}", attempts=1)
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=1,
        started=timezone.now(),
        duration_ms=3.0,
        status_code=502,
        error="HTTP 502",
    )
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/classifier/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "HTTP 502" in page
    assert str(delivery.event_id) in client.get("/admin/classifier/webhookdelivery/").content.decode()
    assert "example.com" in client.get(f"/admin/classifier/batch/{batch.pk}/change/").content.decode()
