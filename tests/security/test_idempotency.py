"""An Idempotency-Key names one request (draft-ietf-httpapi-idempotency-key-header): reused with
the same payload it replays the first batch; reused with another payload it is a 422 problem and
nothing new is stored, rather than silently answering a batch the client did not send."""

from __future__ import annotations

import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from classifier.models import AuditEvent, Batch, Job
from tests.classifier.factories import BatchFactory
from tests.conftest import assert_problem, stored_files
from tests.security.conftest import API_UPLOAD

JOB_UPLOAD = "/api/v1/jobs/"
KEY = {"idempotency-key": "ward3-run1"}
REUSED = "urn:ecgsite:problem:idempotency-key-reused"


def _png(ecg_png: bytes, name: str = "ecg.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ecg_png, content_type="image/png")


def _jpeg(ecg_jpeg: bytes, name: str = "ecg.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ecg_jpeg, content_type="image/jpeg")


@pytest.fixture
def public_callback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """callback.example resolves to a public address, without the network."""

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def _first_request(ecg_png: bytes) -> dict:
    return {"images": [_png(ecg_png, "a.png")], "name": "ward 3"}


@pytest.mark.parametrize(
    "second_request",
    [
        pytest.param(lambda png, jpeg: {"images": [_jpeg(jpeg, "a.png")], "name": "ward 3"}, id="other-data"),
        pytest.param(lambda png, jpeg: {"images": [_png(png, "b.png")], "name": "ward 3"}, id="other-name"),
        pytest.param(
            lambda png, jpeg: {"images": [_png(png, "a.png"), _jpeg(jpeg)], "name": "ward 3"}, id="more-files"
        ),
        pytest.param(lambda png, jpeg: {"images": [_png(png, "a.png")], "name": "ward 4"}, id="batch-name"),
        pytest.param(
            lambda png, jpeg: {
                "images": [_png(png, "a.png")],
                "name": "ward 3",
                "callback_url": "https://callback.example/hook",
            },
            id="callback-url",
        ),
    ],
)
def test_a_key_reused_with_another_payload_is_a_422_and_stores_nothing(
    owner_api, ecg_png, ecg_jpeg, media_root, enqueue, public_callback_host, second_request
):
    first = owner_api.post(API_UPLOAD, _first_request(ecg_png), headers=KEY)
    assert first.status_code == 201, first.content
    stored = stored_files(media_root)

    response = owner_api.post(API_UPLOAD, second_request(ecg_png, ecg_jpeg), headers=KEY)

    body = assert_problem(response, 422, field="Idempotency-Key")
    assert body["type"] == REUSED
    assert "different request" in body["detail"]
    assert Batch.objects.count() == 1
    assert Job.objects.count() == 1
    assert stored_files(media_root) == stored
    assert AuditEvent.objects.filter(action="batch.create", outcome="refused").count() == 1


def test_a_key_reused_on_the_job_endpoint_with_another_image_is_a_422(
    owner_api, ecg_png, ecg_jpeg, media_root, enqueue
):
    first = owner_api.post(JOB_UPLOAD, {"image": _png(ecg_png)}, headers=KEY)
    assert first.status_code == 201, first.content

    response = owner_api.post(JOB_UPLOAD, {"image": _jpeg(ecg_jpeg, "ecg.png")}, headers=KEY)

    assert assert_problem(response, 422, field="Idempotency-Key")["type"] == REUSED
    assert Job.objects.count() == 1


def test_a_key_reused_with_the_same_payload_replays_the_first_batch(owner_api, ecg_png, media_root, enqueue):
    first = owner_api.post(API_UPLOAD, _first_request(ecg_png), headers=KEY)
    again = owner_api.post(API_UPLOAD, _first_request(ecg_png), headers=KEY)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(stored_files(media_root)) == 1


def test_the_same_files_in_another_order_replay_the_first_batch(
    owner_api, ecg_png, ecg_jpeg, media_root, enqueue
):
    first = owner_api.post(API_UPLOAD, {"images": [_png(ecg_png), _jpeg(ecg_jpeg)]}, headers=KEY)
    again = owner_api.post(API_UPLOAD, {"images": [_jpeg(ecg_jpeg), _png(ecg_png)]}, headers=KEY)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_a_batch_stored_before_fingerprints_replays_for_any_payload(owner, owner_api, ecg_png, media_root):
    earlier = BatchFactory(owner=owner, idempotency_key=KEY["idempotency-key"])

    response = owner_api.post(API_UPLOAD, _first_request(ecg_png), headers=KEY)

    assert response.status_code == 200, response.content
    assert response.json()["id"] == earlier.pk
