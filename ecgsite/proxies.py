"""Which peer is a trusted reverse proxy, and the client address behind it.

X-Forwarded-For and X-Forwarded-Proto are just headers: anyone can send them. They are believed
only from a peer listed in settings.ECGSITE_TRUSTED_PROXIES (addresses or CIDR networks), for
pages and API (ecgsite.middleware.TrustedProxyMiddleware) and websockets (TrustedProxyAsgiMiddleware).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_networks() -> tuple[Network, ...]:
    # Read on every call, so tests (and a settings override) take effect at once; parsed once.
    return _networks(tuple(getattr(settings, "ECGSITE_TRUSTED_PROXIES", ())))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]" or "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # "::ffff:10.0.0.2" is the IPv4 peer 10.0.0.2 on a dual-stack socket.
    return getattr(address, "ipv4_mapped", None) or address


def is_trusted_proxy(peer: str | None) -> bool:
    networks = trusted_networks()
    if not peer or not networks:
        return False
    address = _address(peer)
    return address is not None and any(address in network for network in networks)


def client_address(peer: str, forwarded_for: Iterable[str]) -> str:
    """The client's address: `peer` itself unless it is a trusted proxy; then the rightmost
    X-Forwarded-For entry that is not a trusted proxy. Entries left of it were written by the
    client and prove nothing. An entry that is no address stops the walk at the last good hop."""
    if not is_trusted_proxy(peer):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not is_trusted_proxy(client):
            break
    return client


def forwarded_https(values: Iterable[str]) -> bool:
    """Whether the nearest proxy's X-Forwarded-Proto says https (the rightmost value)."""
    protos = [proto.strip().lower() for value in values for proto in value.split(",") if proto.strip()]
    return bool(protos) and protos[-1] == "https"


class TrustedProxyAsgiMiddleware:
    """For websockets: scope["client"] and scope["scheme"] from a trusted proxy's X-Forwarded-*
    headers (daphne runs without --proxy-headers, so it never believes them itself)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        client = scope.get("client")
        if client and is_trusted_proxy(client[0]):
            headers = scope.get("headers", [])
            forwarded = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
            protos = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-proto"]
            scope = dict(scope, client=[client_address(client[0], forwarded), 0])
            if protos:
                secure = forwarded_https(protos)
                if scope.get("type") == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = "https" if secure else "http"
        return await self.app(scope, receive, send)
