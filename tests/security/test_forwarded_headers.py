"""Forwarded headers (issue 19, item 8): the client address in the audit log, the API's failure
counters and the websocket's scope is the peer's own, unless that peer is a proxy named in
ECGSITE_TRUSTED_PROXIES; only then are X-Forwarded-For and X-Forwarded-Proto believed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from classifier.models import AuditEvent
from ecgsite.asgi import application
from tests.classifier.factories import BatchFactory

REPO = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"
CLIENT = "203.0.113.9"
SPOOFED = "192.0.2.66"
STRANGER = "198.51.100.7"


@pytest.fixture
def trusted_proxy(settings):
    settings.ECGSITE_TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::1"]


def _audited_ip(client: Client, **headers: str) -> str | None:
    response = client.get("/batches/", headers=headers)
    assert response.status_code == 200
    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.BATCH_LIST)
    return event.ip


def test_the_entrypoint_does_not_let_daphne_believe_forwarded_headers():
    script = (REPO / "docker" / "entrypoint.sh").read_text()
    (web,) = [line for line in script.splitlines() if re.match(r"\s*web\)", line)]

    assert "ecgsite.serve" in web  # daphne with the request-size ceiling (test_request_size_server.py)
    assert "--proxy-headers" not in web


def test_compose_names_the_trusted_proxies_setting():
    assert "ECGSITE_TRUSTED_PROXIES" in (REPO / "docker" / "compose.yml").read_text()


def test_the_setting_defaults_to_no_trusted_proxy():
    assert django_settings.ECGSITE_TRUSTED_PROXIES == []


@pytest.mark.django_db
def test_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_audit_ip(owner, trusted_proxy):
    client = Client(REMOTE_ADDR=STRANGER)
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for=SPOOFED) == STRANGER


@pytest.mark.django_db
def test_nothing_is_believed_when_no_proxy_is_configured(owner):
    client = Client(REMOTE_ADDR=PROXY)
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for=SPOOFED) == PROXY


@pytest.mark.django_db
def test_a_trusted_proxy_gives_the_client_address(owner, trusted_proxy):
    client = Client(REMOTE_ADDR=PROXY)
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for=CLIENT) == CLIENT


@pytest.mark.django_db
def test_the_rightmost_untrusted_address_is_the_client_not_what_it_claims(owner, trusted_proxy):
    # The client wrote "SPOOFED" itself; the proxy appended the address it saw, then a second
    # trusted proxy (10.0.0.3) appended the first proxy's.
    client = Client(REMOTE_ADDR=PROXY)
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for=f"{SPOOFED}, {CLIENT}, 10.0.0.3") == CLIENT


@pytest.mark.django_db
def test_an_ipv6_trusted_proxy(owner, trusted_proxy):
    client = Client(REMOTE_ADDR="2001:db8::1")
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for="2001:db8::99") == "2001:db8::99"


@pytest.mark.django_db
def test_garbage_in_x_forwarded_for_leaves_the_proxys_address(owner, trusted_proxy):
    client = Client(REMOTE_ADDR=PROXY)
    client.force_login(owner)

    assert _audited_ip(client, x_forwarded_for="not-an-address") == PROXY


@pytest.mark.django_db
def test_x_forwarded_proto_from_an_untrusted_peer_does_not_make_the_request_secure(settings, trusted_proxy):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    response = Client(REMOTE_ADDR=STRANGER).get("/accounts/login/", headers={"x-forwarded-proto": "https"})

    # Plain http from an untrusted peer: sent to https, whatever the header claims.
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.mark.django_db
def test_x_forwarded_proto_from_a_trusted_proxy_is_believed(settings, trusted_proxy):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    response = Client(REMOTE_ADDR=PROXY).get("/accounts/login/", headers={"x-forwarded-proto": "https"})

    assert response.status_code == 200


# --- The websocket: the consumer audits scope["client"] ------------------------------------------


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


async def _websocket_audit_ip(user, peer: str, forwarded_for: str) -> str | None:
    batch = await database_sync_to_async(BatchFactory)(owner=user)
    cookie = await database_sync_to_async(_session_cookie)(user)
    communicator = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"x-forwarded-for", forwarded_for.encode()),
            cookie,
        ],
    )
    communicator.scope["client"] = [peer, 40000]
    connected, _ = await communicator.connect(timeout=3)
    assert connected
    await communicator.receive_json_from(timeout=3)  # the connect snapshot
    await communicator.send_json_to({"type": "batch.subscribe", "batch": batch.pk})
    await communicator.receive_json_from(timeout=3)
    await communicator.disconnect()
    events = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action=AuditEvent.Action.BATCH_VIEW, target_id=batch.pk)
    )
    (event,) = events
    return event.ip


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_ignores_x_forwarded_for_from_an_untrusted_peer(owner, trusted_proxy):
    assert await _websocket_audit_ip(owner, STRANGER, SPOOFED) == STRANGER


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_takes_the_client_from_a_trusted_proxy(owner, trusted_proxy):
    assert await _websocket_audit_ip(owner, PROXY, f"{SPOOFED}, {CLIENT}") == CLIENT
