"""Websocket origin (issue 19, low): a page on another port or scheme of an allowed host (another
site on the same machine) must not open a signed-in user's socket. The Origin's scheme, host and
port must be this request's own, or listed in CSRF_TRUSTED_ORIGINS.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from ecgsite.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

PATH = "/ws/notifications/"


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


async def _connects(user, origin: str, host: str = "127.0.0.1:8000", scheme: str | None = None) -> bool:
    cookie = await database_sync_to_async(_session_cookie)(user)
    communicator = WebsocketCommunicator(
        application, PATH, headers=[(b"origin", origin.encode()), (b"host", host.encode()), cookie]
    )
    if scheme:
        communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=3)
    await communicator.disconnect()
    return connected


async def test_the_same_origin_is_accepted(owner):
    assert await _connects(owner, "http://127.0.0.1:8000")


async def test_another_port_on_the_same_host_is_refused(owner):
    assert not await _connects(owner, "http://127.0.0.1:9999")


async def test_another_scheme_on_the_same_host_and_port_is_refused(owner):
    assert not await _connects(owner, "https://127.0.0.1:8000")


async def test_an_https_page_may_open_its_own_wss_socket(owner):
    assert await _connects(owner, "https://localhost", host="localhost", scheme="wss")


async def test_an_http_page_may_not_open_the_wss_socket(owner):
    assert not await _connects(owner, "http://localhost", host="localhost", scheme="wss")


async def test_a_default_port_written_out_is_the_same_origin(owner):
    assert await _connects(owner, "http://localhost", host="localhost:80")


async def test_an_origin_listed_in_csrf_trusted_origins_is_accepted(owner, settings):
    # As behind a TLS proxy that is not a trusted one: the socket itself arrives as plain ws.
    settings.CSRF_TRUSTED_ORIGINS = ["https://localhost"]

    assert await _connects(owner, "https://localhost", host="127.0.0.1:8000")


async def test_a_host_outside_allowed_hosts_is_still_refused(owner):
    assert not await _connects(owner, "http://evil.example:8000", host="evil.example:8000")
