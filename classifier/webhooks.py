"""Telling an API client's server that its batch is done: signed POSTs, retried with backoff.

Every write to WebhookDelivery and WebhookAttempt lives here. The delivery row is the record:
its `next_attempt_at` says when it is due, so a lost queue message only delays it, and
`webhook_deliveries_due` finds it again (worker.tasks.sweep_webhooks, on a schedule).

Safety (see RELIABILITY-NOTES): only http/https; every address the host name resolves to must
be public unless ECGSITE_WEBHOOK_ALLOW_PRIVATE is set, and so must every IPv4 address an IPv6
one embeds (mapped, compatible, translated, NAT64, 6to4, Teredo); the connection goes to the
address that was checked, checked again on every attempt; redirects are not followed; only 2xx
counts. A URL that cannot be parsed fails its delivery at the first attempt.

Signatures, both over the exact body bytes:
- `X-ECG-Signature: sha256=<hex HMAC-SHA256(key=the secret string, msg=body)>`
- Standard Webhooks: `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256(key=base64-decoded secret after "whsec_",
  msg="{id}.{timestamp}.{body}")>`, so a receiver can refuse replays and old messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.tokens import webhook_secret_for_user
from classifier import dispatch
from classifier.models import Batch, WebhookAttempt, WebhookDelivery
from classifier.presenters import batch_output
from classifier.selectors import batch_get_for_user

logger = logging.getLogger(__name__)

USER_AGENT = "ecgsite-webhooks/1"


class UnsafeCallbackUrl(ValueError):
    """A callback URL we will not call, with a reason for the person who gave it."""


class MalformedCallbackUrl(UnsafeCallbackUrl):
    """A callback URL that cannot be parsed: it will never work, so it is not retried."""


# IPv6 forms that carry an IPv4 address in their last 32 bits and reach that IPv4 host.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated)
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
# RFC 8215: where the IPv4 address sits depends on the operator's prefix length, and the
# range is never globally reachable, so it is refused as a whole.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _addresses_reached(ip: IPAddress) -> list[IPAddress]:
    """`ip` and every IPv4 address it embeds: a transition form reaches that IPv4 host too."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]  # on a dual-stack socket this is the IPv4 address itself
    reached: list[IPAddress] = [ip]
    if ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        reached.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        reached.append(ip.sixtofour)
    if ip.teredo is not None:
        reached.extend(ip.teredo)  # (server, client); the client is already un-XORed
    return reached


def _is_public(ip: IPAddress) -> bool:
    # is_global excludes private, loopback, link-local (169.254.0.0/16: cloud metadata),
    # shared (100.64/10), reserved and documentation ranges, but not site-local fec0::/10.
    if isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip in _NAT64_LOCAL_USE):
        return False
    return ip.is_global and not ip.is_multicast


def _address_is_allowed(address: str) -> bool:
    reached = _addresses_reached(ipaddress.ip_address(address.split("%", 1)[0]))
    if settings.ECGSITE_WEBHOOK_ALLOW_PRIVATE:
        return not any(ip.is_multicast or ip.is_unspecified for ip in reached)
    return all(_is_public(ip) for ip in reached)


def _callback_url_parts(url: str) -> tuple[SplitResult, int]:
    """The parsed URL and its port (the scheme's default if none); MalformedCallbackUrl if neither."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise MalformedCallbackUrl(f"The callback URL cannot be parsed: {exc}.") from None
    return parts, port or (443 if parts.scheme == "https" else 80)


def callback_url_check(url: str) -> list[str]:
    """The addresses `url` may be called at; raise UnsafeCallbackUrl if it must not be called."""
    parts, port = _callback_url_parts(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeCallbackUrl("The callback URL must start with http:// or https://.")
    if not parts.hostname:
        raise UnsafeCallbackUrl("The callback URL has no host name.")
    if parts.username or parts.password:
        raise UnsafeCallbackUrl("The callback URL must not carry a user name or password.")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        raise UnsafeCallbackUrl(f"The callback host {parts.hostname!r} could not be resolved.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses or not all(_address_is_allowed(address) for address in addresses):
        raise UnsafeCallbackUrl(
            "The callback URL points at a private, loopback or link-local address, which is not allowed."
        )
    return addresses


def sign(*, secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signature headers for one attempt (see the module docstring)."""
    ecg = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    raw_key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{event_id}.{timestamp}.".encode() + body
    standard = base64.b64encode(hmac.new(raw_key, signed, hashlib.sha256).digest()).decode("ascii")
    return {
        "X-ECG-Signature": f"sha256={ecg}",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{standard}",
    }


def webhook_delivery_create_for_batch(*, batch_id: int) -> WebhookDelivery | None:
    """Record the batch.completed delivery of a batch with a callback URL; enqueue it on commit.

    Called once per batch, by the caller that completed it. None when there is nowhere to send.
    """
    batch = Batch.objects.select_related("owner").get(pk=batch_id)
    if not batch.callback_url:
        return None
    full = batch_get_for_user(user=batch.owner, batch_id=batch.pk)
    payload = json.dumps(batch_output(full), separators=(",", ":"), sort_keys=True)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(batch=batch, url=batch.callback_url, payload=payload)
        transaction.on_commit(lambda: _enqueue(delivery.pk, 0.0))
    return delivery


def _enqueue(delivery_id: int, countdown: float) -> None:
    dispatch.enqueue_webhook(delivery_id=delivery_id, countdown=countdown)


def backoff_seconds(attempts_made: int) -> float:
    """Wait before the next attempt: base * 2^(attempts-1), capped, with ±20 % jitter."""
    base = settings.ECGSITE_WEBHOOK_BACKOFF_S
    delay = min(base * 2 ** max(attempts_made - 1, 0), settings.ECGSITE_WEBHOOK_BACKOFF_MAX_S)
    return delay * random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str
    permanent: bool = False  # retrying cannot help (a malformed URL): fail the delivery now


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a due delivery; None if it is not due (or another worker holds it).

    1. Claim: a conditional UPDATE moves `next_attempt_at` past the send timeout and counts
       the attempt, so two dispatches of the same delivery never send at once.
    2. Check the URL again, sign the stored body, POST it without following redirects.
    3. Record the attempt; 2xx delivers, anything else schedules the next attempt with
       backoff, or fails the delivery after ECGSITE_WEBHOOK_MAX_ATTEMPTS.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.ECGSITE_WEBHOOK_TIMEOUT_S * 3)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=lease)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("batch__owner").get(pk=delivery_id)
    started = time.monotonic()
    result = _send(delivery)
    duration_ms = (time.monotonic() - started) * 1000
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started=now,
        duration_ms=duration_ms,
        status_code=result.status_code,
        error=result.error,
    )
    finished = timezone.now()
    if result.status_code is not None and 200 <= result.status_code < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered = finished
    elif result.permanent:
        delivery.status = WebhookDelivery.Status.FAILED
        logger.warning("webhook %s: giving up, the URL cannot be called: %s", delivery.pk, result.error)
    elif delivery.attempts >= settings.ECGSITE_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
        logger.warning("webhook %s: giving up after %s attempts", delivery.pk, delivery.attempts)
    else:
        delivery.next_attempt_at = finished + timedelta(seconds=backoff_seconds(delivery.attempts))
    delivery.save(update_fields=["status", "delivered", "next_attempt_at"])
    return delivery


def _send(delivery: WebhookDelivery) -> SendResult:
    try:
        addresses = callback_url_check(delivery.url)
        parts, port = _callback_url_parts(delivery.url)
    except MalformedCallbackUrl as exc:
        return SendResult(None, str(exc), permanent=True)
    except UnsafeCallbackUrl as exc:
        return SendResult(None, str(exc))
    body = delivery.payload.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-ECG-Event": delivery.event,
        **sign(
            secret=webhook_secret_for_user(user=delivery.batch.owner),
            event_id=str(delivery.event_id),
            timestamp=int(time.time()),
            body=body,
        ),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = settings.ECGSITE_WEBHOOK_TIMEOUT_S
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = None
    try:
        # An explicit port: given none, http.client reads the last group of an IPv6 literal as one.
        connection = connection_class(parts.hostname, port, timeout=timeout, address=addresses[0])
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # bounded: the body is not used
        return SendResult(response.status, "" if response.status < 300 else f"HTTP {response.status}")
    except (http.client.InvalidURL, UnicodeError) as exc:  # e.g. control characters in the path
        return SendResult(None, f"{type(exc).__name__}: {exc}"[:500], permanent=True)
    except (OSError, http.client.HTTPException) as exc:
        return SendResult(None, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        if connection is not None:
            connection.close()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name resolves to now."""

    def __init__(self, host: str, port: int, *, timeout: float, address: str) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, timeout: float, address: str) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def webhook_deliveries_due(*, limit: int = 100) -> list[int]:
    """Ids of pending deliveries whose next attempt is due, oldest first, at most `limit`."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
