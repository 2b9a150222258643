"""The websocket at /ws/notifications/: a logged-in user's own events, and nobody else's.

Connections go through ecgsite.asgi.application (origin check, session auth, routing), with the
session cookie of a real login; the database is transactional because the consumer reads it
from another thread.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from classifier import events
from classifier.consumers import UNAUTHENTICATED
from classifier.selectors import jobs_get_with_predictions
from ecgsite.asgi import application
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

PATH = "/ws/notifications/"
ORIGIN = (b"origin", b"http://localhost")
TIMEOUT = 3


@pytest.fixture(autouse=True)
def empty_channel_layer():
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield
    async_to_sync(layer.flush)()


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (
        b"cookie",
        f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode(),
    )


def _communicator(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, PATH, headers=[ORIGIN, *headers])


@pytest.fixture
def owner_cookie(owner):
    return _session_cookie(owner)


async def _connect(cookie) -> tuple[WebsocketCommunicator, dict]:
    communicator = _communicator(cookie)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    state = await communicator.receive_json_from(timeout=TIMEOUT)
    return communicator, state


@database_sync_to_async
def _make(factory, **fields):
    """A row from a factory, written from the test's event loop."""
    return factory(**fields)


@database_sync_to_async
def _announce(job_id: int) -> None:
    events.job_updated(jobs_get_with_predictions(job_ids=[job_id])[0])


async def test_an_anonymous_connection_is_refused():
    communicator = _communicator()

    connected, code = await communicator.connect(timeout=TIMEOUT)

    assert connected is False
    assert code == UNAUTHENTICATED


async def test_a_connection_from_a_foreign_origin_is_refused(owner_cookie):
    communicator = WebsocketCommunicator(
        application, PATH, headers=[(b"origin", b"https://evil.example"), owner_cookie]
    )

    connected, _ = await communicator.connect(timeout=TIMEOUT)

    assert connected is False


@pytest.fixture
def mixed_batches(owner, other_user):
    """The owner's batch in progress and completed batch, and another user's batch in progress."""
    running = BatchFactory(owner=owner, name="In progress")
    JobFactory(batch=running, status="running", original_name="a.png")
    JobFactory(batch=running, original_name="b.png")
    done = BatchFactory(owner=owner, name="Done")
    JobFactory(batch=done, status="failed")
    done.completed = done.created
    done.save()
    JobFactory(batch=BatchFactory(owner=other_user, name="Bob's"))


async def test_a_logged_in_user_gets_the_state_of_their_unfinished_batches_on_connect(
    mixed_batches, owner_cookie
):
    communicator, state = await _connect(owner_cookie)

    assert state["type"] == "state"
    assert [batch["name"] for batch in state["batches"]] == ["In progress"]
    (batch,) = state["batches"]
    assert batch["counts"] == {"queued": 1, "running": 1, "succeeded": 0, "failed": 0}
    assert sorted(job["image_name"] for job in batch["jobs"]) == ["a.png", "b.png"]
    await communicator.disconnect()


async def test_a_user_with_nothing_in_progress_gets_an_empty_state(owner_cookie):
    communicator, state = await _connect(owner_cookie)

    assert state == {"type": "state", "batches": []}
    await communicator.disconnect()


async def test_a_user_receives_job_updates_for_their_own_jobs(owner, owner_cookie):
    job = await _make(JobFactory, batch=await _make(BatchFactory, owner=owner), status="succeeded")
    version = await _make(ModelVersionFactory, name="hybrid-v1")
    await _make(PredictionFactory, job=job, model_version=version, label="history_mi")
    communicator, _ = await _connect(owner_cookie)

    await _announce(job.pk)

    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert message["type"] == "job.updated"
    assert (message["job"]["id"], message["job"]["status"], message["job"]["label"]) == (
        job.pk,
        "succeeded",
        "history_mi",
    )
    assert set(message["job"]["probabilities"]) == {"normal", "mi", "history_mi", "abnormal"}
    await communicator.disconnect()


async def test_a_user_receives_batch_completed_for_their_own_batch(owner, owner_cookie):
    batch = await _make(BatchFactory, owner=owner, name="Ward 3")
    communicator, _ = await _connect(owner_cookie)

    await database_sync_to_async(events.batch_completed)(batch)

    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (message["type"], message["batch"]["id"], message["batch"]["name"]) == (
        "batch.completed",
        batch.pk,
        "Ward 3",
    )
    await communicator.disconnect()


async def test_a_user_does_not_receive_another_users_events(owner, other_user, owner_cookie):
    own_job = await _make(JobFactory, batch=await _make(BatchFactory, owner=owner))
    foreign_job = await _make(JobFactory, batch=await _make(BatchFactory, owner=other_user))
    communicator, _ = await _connect(owner_cookie)

    await _announce(foreign_job.pk)
    await _announce(own_job.pk)

    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert message["job"]["id"] == own_job.pk  # the foreign event, sent first, never arrived
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_batch_subscribe_answers_the_current_state_of_an_own_batch(owner, owner_cookie):
    batch = await _make(BatchFactory, owner=owner)
    await _make(JobFactory, batch=batch, status="succeeded")
    communicator, _ = await _connect(owner_cookie)

    await communicator.send_json_to({"type": "batch.subscribe", "batch": batch.pk})

    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert message["type"] == "batch.state"
    assert (message["batch"]["id"], message["batch"]["counts"]["succeeded"]) == (batch.pk, 1)
    await communicator.disconnect()


async def test_batch_subscribe_for_another_users_batch_answers_an_error_and_no_data(other_user, owner_cookie):
    foreign = await _make(BatchFactory, owner=other_user, name="Bob's secret batch")
    await _make(JobFactory, batch=foreign, original_name="bob.png")
    communicator, _ = await _connect(owner_cookie)

    await communicator.send_json_to({"type": "batch.subscribe", "batch": foreign.pk})

    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert message == {"type": "error", "message": "No such batch."}
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        ({"type": "batch.subscribe", "batch": "seven"}, "batch must be an id."),
        ({"type": "batch.subscribe"}, "batch must be an id."),
        ({"type": "shutdown"}, "Unknown message type."),
        (["batch.subscribe", 1], "Unknown message type."),
    ],
    ids=["non-numeric id", "no id", "unknown type", "not an object"],
)
async def test_a_malformed_message_answers_an_error(owner_cookie, sent, error):
    communicator, _ = await _connect(owner_cookie)

    await communicator.send_json_to(sent)

    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "error", "message": error}
    await communicator.disconnect()


async def test_disconnect_leaves_the_users_group(owner, owner_cookie, monkeypatch):
    layer = get_channel_layer()
    memberships: list[tuple[str, str, str]] = []
    for action in ("group_add", "group_discard"):
        real = getattr(layer, action)

        async def spy(group, channel, _real=real, _action=action):
            memberships.append((_action, group, channel))
            await _real(group, channel)

        monkeypatch.setattr(layer, action, spy)
    communicator, _ = await _connect(owner_cookie)

    await communicator.disconnect()

    (added, discarded) = memberships
    assert added[:2] == ("group_add", f"user-{owner.pk}")
    assert discarded == ("group_discard", f"user-{owner.pk}", added[2])
