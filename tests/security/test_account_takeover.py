"""Account pre-hijacking and what a password change closes (issue 19, findings High and Low-Medium).

The probe: sign up with someone else's address (never verified), make an API token, wait; the
owner resets the password by the emailed link and uploads; the token still read the owner's
batches. Now an unconfirmed account cannot sign in, upload, see results or use a token, and a
password reset, change or administrator's reset revokes every token and ends the other
sessions, websockets included. Signup and password reset answer the same whether or not the
address is known; the address's owner is told by email instead.
"""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from accounts.models import ApiToken, User
from accounts.tokens import api_token_create
from classifier import events
from classifier.consumers import UNAUTHENTICATED
from ecgsite.asgi import application
from tests.classifier.factories import BatchFactory
from tests.conftest import PASSWORD

BATCHES = "/api/v1/batches/"
NEW_PASSWORD = "another-long-passphrase-77"
VICTIM = "victim@example.com"


def _link(message_body: str, pattern: str) -> str:
    found = re.search(pattern, message_body)
    assert found, f"no link matching {pattern} in:\n{message_body}"
    return found.group(0)


def _signed_in_user_id(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def _token_reads_batches(key: str) -> int:
    return Client(headers={"authorization": f"Token {key}"}).get(BATCHES).status_code


def _reset_password_by_email(client: Client, email: str, mailoutbox: list) -> None:
    """The owner's side of the probe: 'forgot password', the emailed link, a new password."""
    mailoutbox.clear()
    client.post("/accounts/password/reset/", {"email": email})
    [message] = mailoutbox
    link = _link(message.body, r"/accounts/password/reset/key/\S+/")
    form_page = client.get(link, follow=True)
    form_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    done = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302, done.content.decode()[:2000]


# --- The pre-hijack itself -------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_up_with_someone_elses_address_neither_signs_in_nor_gets_a_token(client, mailoutbox):
    response = client.post(
        "/accounts/signup/", {"email": VICTIM, "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response["Location"] == "/accounts/confirm-email/"
    assert _signed_in_user_id(client) is None
    attempt = client.post("/accounts/tokens/", {"name": "waiting"})
    assert attempt.status_code == 302 and attempt["Location"].startswith("/accounts/login/")
    assert not ApiToken.objects.exists()
    # Only the address's owner can confirm it: the link went to them.
    [message] = mailoutbox
    assert message.to == [VICTIM]


@pytest.mark.django_db
def test_an_unconfirmed_account_holding_a_token_reads_nothing(owner):
    squatter = User.objects.create_user(email=VICTIM, password=PASSWORD)
    EmailAddress.objects.create(user=squatter, email=VICTIM, verified=False, primary=True)
    BatchFactory(owner=squatter, name="theirs")
    _, key = api_token_create(user=squatter, name="made before verification was required")

    assert _token_reads_batches(key) == 401


@pytest.mark.django_db
def test_an_unconfirmed_session_sees_no_results_and_uploads_nothing(mailoutbox):
    squatter = User.objects.create_user(email=VICTIM, password=PASSWORD)
    EmailAddress.objects.create(user=squatter, email=VICTIM, verified=False, primary=True)
    batch = BatchFactory(owner=squatter)
    client = Client()
    client.force_login(squatter)  # e.g. through a door that does not ask for a confirmed address

    for page in ("/upload/", "/batches/", f"/batches/{batch.pk}/", "/accounts/tokens/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert "verify" in response.content.decode().lower(), page
        assert batch.name not in response.content.decode()
    assert client.get(BATCHES).status_code == 403
    assert client.post("/accounts/tokens/", {"name": "x"}).status_code == 200
    assert not ApiToken.objects.exists()
    # Each refusal mails the confirmation link again, to the address, not to the squatter.
    assert mailoutbox and {address for message in mailoutbox for address in message.to} == {VICTIM}


@pytest.mark.django_db
def test_a_password_reset_by_the_emailed_link_revokes_every_token(client, owner, mailoutbox):
    BatchFactory(owner=owner, name="Ward 3")
    _, key = api_token_create(user=owner, name="held by whoever had the account")
    assert _token_reads_batches(key) == 200

    _reset_password_by_email(client, owner.email, mailoutbox)

    assert _token_reads_batches(key) == 401
    assert not ApiToken.objects.filter(user=owner, revoked__isnull=True).exists()


@pytest.mark.django_db
def test_a_password_change_revokes_tokens_and_ends_the_other_sessions(owner):
    _, key = api_token_create(user=owner)
    elsewhere = Client()
    elsewhere.force_login(owner)
    here = Client()
    here.force_login(owner)

    changed = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert changed.status_code == 302
    assert _token_reads_batches(key) == 401
    assert elsewhere.get("/batches/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_password_an_administrator_sets_revokes_the_users_tokens(staff, owner):
    _, key = api_token_create(user=owner)
    admin = Client()
    admin.force_login(staff)

    response = admin.post(
        f"/admin/accounts/user/{owner.pk}/password/", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302
    assert _token_reads_batches(key) == 401


# --- Websockets: a socket lives no longer than its session ---------------------------------

WS_PATH = "/ws/notifications/"
WS_TIMEOUT = 3


def _websocket(client: Client) -> WebsocketCommunicator:
    cookie = (
        f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    )
    return WebsocketCommunicator(
        application,
        WS_PATH,
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie.encode())],
    )


@pytest.fixture
def empty_channel_layer():
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield
    async_to_sync(layer.flush)()


async def _open(client: Client) -> WebsocketCommunicator:
    socket = _websocket(client)
    connected, _ = await socket.connect(timeout=WS_TIMEOUT)
    assert connected
    assert (await socket.receive_json_from(timeout=WS_TIMEOUT))["type"] == "state"
    return socket


async def _closed_without_the_event(socket: WebsocketCommunicator) -> None:
    output = await socket.receive_output(timeout=WS_TIMEOUT)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED}, output


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_opened_before_logout_gets_no_event_after_it(owner, empty_channel_layer):
    client = await database_sync_to_async(Client)()
    await database_sync_to_async(client.force_login)(owner)
    socket = await _open(client)
    batch = await database_sync_to_async(BatchFactory)(owner=owner, name="after logout")

    await database_sync_to_async(client.post)("/accounts/logout/")
    await database_sync_to_async(events.batch_completed)(batch)

    await _closed_without_the_event(socket)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_socket_of_another_session_closes_when_the_password_changes(owner, empty_channel_layer):
    elsewhere = await database_sync_to_async(Client)()
    await database_sync_to_async(elsewhere.force_login)(owner)
    socket = await _open(elsewhere)

    def change_password() -> None:
        owner.set_password(NEW_PASSWORD)
        owner.save()

    await database_sync_to_async(change_password)()
    batch = await database_sync_to_async(BatchFactory)(owner=owner)
    await database_sync_to_async(events.batch_completed)(batch)

    await _closed_without_the_event(socket)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_unconfirmed_account_cannot_open_a_socket(empty_channel_layer):
    def squatter_client() -> Client:
        squatter = User.objects.create_user(email=VICTIM, password=PASSWORD)
        client = Client()
        client.force_login(squatter)
        return client

    socket = _websocket(await database_sync_to_async(squatter_client)())

    connected, code = await socket.connect(timeout=WS_TIMEOUT)

    assert (connected, code) == (False, UNAUTHENTICATED)


# --- Enumeration: the same answer whether or not the address has an account ----------------


@pytest.mark.django_db
def test_signup_with_a_taken_address_answers_as_for_a_new_one_and_mails_the_owner(owner, mailoutbox):
    fresh = Client().post(
        "/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    taken = Client().post(
        "/accounts/signup/", {"email": owner.email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert "already" not in taken.content.decode().lower()
    assert User.objects.filter(email=owner.email).count() == 1
    to_owner = [message for message in mailoutbox if message.to == [owner.email]]
    assert len(to_owner) == 1 and "already" in to_owner[0].body.lower()


@pytest.mark.django_db
def test_password_reset_answers_the_same_for_a_known_and_an_unknown_address(owner, mailoutbox):
    known = Client().post("/accounts/password/reset/", {"email": owner.email})
    unknown = Client().post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [message.to for message in mailoutbox] == [[owner.email], ["nobody@example.com"]]
