"""Small cross-cutting request middleware."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from ecgsite import log_context
from ecgsite.proxies import client_address, is_trusted_proxy

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Give every request a fresh id (request.request_id), answered as `X-Request-ID`.

    The audit log stores it, so a user's report ("request abc… failed") finds its entries.
    Always generated here, never taken from the client: a chosen id could point at others' entries.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = uuid.uuid4().hex  # type: ignore[attr-defined]
        with log_context.for_request(request.request_id):  # type: ignore[attr-defined]
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        return response


class OperationsEndpointsMiddleware:
    """Answers /health/, /health/live/ and /metrics before the host check and the https
    redirect: probes and scrapers reach a pod by its address, over plain HTTP inside the
    cluster. They read no session and no user; /metrics checks its own bearer token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    PATHS = frozenset({"/health/", "/health/live/", "/metrics"})

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Every request passes here: the rest of the site only pays for a set lookup.
        if request.path_info not in self.PATHS:
            return self.get_response(request)
        from ecgsite import health, metrics  # they import models: not at app-loading time

        endpoint = {"/health/": health.health, "/health/live/": health.live, "/metrics": metrics.metrics}[
            request.path_info
        ]
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        response = endpoint(request)
        response["Cache-Control"] = "no-store"
        return response


class TrustedProxyMiddleware:
    """REMOTE_ADDR is the client's address, X-Forwarded-* believed only from a trusted proxy.

    Behind a proxy named in ECGSITE_TRUSTED_PROXIES, the client is the rightmost X-Forwarded-For
    address that is not itself a trusted proxy. From any other peer both X-Forwarded-For and
    X-Forwarded-Proto are dropped, so neither the audit log's address, the failure counters,
    nor SECURE_PROXY_SSL_HEADER's is_secure() can be chosen by the client. Runs before
    SecurityMiddleware, which reads is_secure() for its https redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        peer = meta.get("REMOTE_ADDR", "")
        if is_trusted_proxy(peer):
            forwarded = meta.get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                meta["REMOTE_ADDR"] = client_address(peer, [forwarded])
        else:
            meta.pop("HTTP_X_FORWARDED_FOR", None)
            meta.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)


# Pages may load scripts, styles, images and sockets from this site only: an injected inline
# script or a foreign script tag does not run, no other site may frame a page, and forms post here.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """`Cache-Control: no-store` and the Content-Security-Policy on every response that does not
    set its own.

    Pages, API JSON and images carry patient data: no browser or shared cache may keep them.
    Static files never get here (WhiteNoise answers them first, with their own long caching); a
    view that sets Cache-Control or a policy itself (the images' sandbox) keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        if not response.has_header("Content-Security-Policy"):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
