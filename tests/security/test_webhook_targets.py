"""Where a webhook may go: IPv6 transition forms are resolved to the IPv4 host they reach, and a
callback URL that cannot be called fails its delivery once, on the record, instead of raising.

No network: name resolution and connections are replaced by fakes.
"""

from __future__ import annotations

import io
import socket

import pytest

from classifier import webhooks
from classifier.models import WebhookAttempt, WebhookDelivery
from tests.classifier.factories import BatchFactory


def _resolve_literally(host, port, *args, **kwargs):
    """getaddrinfo for an address literal: the address itself, as the resolver would answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = (host, port, 0, 0) if family == socket.AF_INET6 else (host, port)
    return [(family, socket.SOCK_STREAM, 6, "", address)]


@pytest.fixture
def literal_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolve_literally)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible (deprecated) loopback
        "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix: 169.254.169.254, cloud metadata
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::ffff:0:7f00:1",  # SIIT IPv4-translated 127.0.0.1
        "fec0::1",  # site-local (deprecated, private)
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001:0:a00:1::",  # Teredo, server 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix: never globally reachable
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
    ],
)
def test_an_ipv6_form_of_a_private_address_is_refused(address, literal_resolver):
    with pytest.raises(webhooks.UnsafeCallbackUrl):
        webhooks.callback_url_check(f"http://[{address}]/hook")


@pytest.mark.parametrize(
    "address",
    [
        "2606:4700:4700::1111",  # a public IPv6 address
        "2002:808:808::",  # 6to4 of 8.8.8.8
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "::ffff:8.8.8.8",  # IPv4-mapped public address
    ],
)
def test_an_ipv6_form_of_a_public_address_is_allowed(address, literal_resolver):
    assert webhooks.callback_url_check(f"http://[{address}]/hook") == [address]


class _FakeSocket:
    """Records what is sent and answers one HTTP response."""

    def __init__(self, answer: bytes) -> None:
        self.sent = b""
        self._answer = answer

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._answer)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2606:4700:4700::ab"])
def test_an_ipv6_literal_callback_without_a_port_is_sent_to_the_scheme_default_port(
    owner, address, literal_resolver, monkeypatch
):
    connected: list[tuple[str, int]] = []
    fake = _FakeSocket(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    def create_connection(target, *args, **kwargs):
        connected.append(target[:2])
        return fake

    monkeypatch.setattr(socket, "create_connection", create_connection)
    batch = BatchFactory(owner=owner, callback_url=f"http://[{address}]/hook")
    delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload="{}")

    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)

    assert connected == [(address, 80)]
    assert f"Host: [{address}]\r\n".encode() in fake.sent
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert (attempt.status_code, attempt.error) == (204, "")
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDelivery.Status.DELIVERED


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/hook",  # unbalanced bracket: urlsplit raises ValueError
        "http://example.com:99999/",  # port out of range
        "http://example.com:port/",  # port not a number
        "http://93.184.216.34/a\x01b",  # a control character http.client refuses in the path
    ],
)
def test_a_malformed_callback_url_fails_its_delivery_once_on_the_record(owner, url, literal_resolver):
    batch = BatchFactory(owner=owner, callback_url=url)
    delivery = WebhookDelivery.objects.create(batch=batch, url=url, payload="{}")

    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)

    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error
    # Permanent: retrying a URL that cannot be parsed would fail the same way forever.
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDelivery.Status.FAILED
    assert webhooks.webhook_deliveries_due() == []
