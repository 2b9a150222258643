"""The websocket's same-origin check.

Channels' AllowedHostsOriginValidator compares only the Origin's host with ALLOWED_HOSTS, so a
page served from another port or scheme of the same host (another app on the machine, a plain
http page of an https site) could open a signed-in user's socket with their cookie. Here the
Origin's scheme, host and port must equal the socket's own (ws -> http, wss -> https, with the
Host header), or the origin must be listed in CSRF_TRUSTED_ORIGINS, as Django's CSRF check
accepts it for forms.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in, or None if it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _trusted_origins() -> set[tuple[str, str, int]]:
    found = set()
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            continue  # wildcard subdomains are for forms; a socket needs an exact origin
        parts = urlsplit(entry)
        origin = _origin(parts.scheme, parts.netloc)
        if origin:
            found.add(origin)
    return found


def same_origin(scope: dict[str, Any]) -> bool:
    raw_origin = _header(scope, b"origin")
    if raw_origin is None:
        return False
    parts = urlsplit(raw_origin)
    origin = _origin(parts.scheme.lower(), parts.netloc)
    if origin is None:
        return False
    if origin in _trusted_origins():
        return True
    host = _header(scope, b"host")
    if host is None:
        # RFC 6455 requires Host, and every browser sends it; a client without one is no browser
        # page riding a user's cookie, the only thing this check is for. Hosts were checked
        # by AllowedHostsOriginValidator.
        return True
    page_scheme = "https" if scope.get("scheme") in {"wss", "https"} else "http"
    return origin == _origin(page_scheme, host)


class SameOriginValidator:
    """ASGI middleware for websockets: refuses the handshake unless `same_origin`."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
