"""Request rates per API token (or per signed-in user), from ECGSITE_API_THROTTLE_RATES; failed token
authentications per client address, from ECGSITE_API_TOKEN_FAILURE_RATE."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken

if TYPE_CHECKING:  # rest_framework.views imports the authentication classes, and they import this
    from rest_framework.views import APIView


class TokenRateThrottle(SimpleRateThrottle):
    """Counts requests per token; a session (browser, docs page) counts per user."""

    scope = "api"

    def get_rate(self) -> str | None:
        # Read at request time, so settings overrides (tests, operators) apply at once.
        return settings.ECGSITE_API_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class UploadRateThrottle(TokenRateThrottle):
    """A tighter rate for the requests that upload and classify images."""

    scope = "api-upload"

    def allow_request(self, request: Request, view: APIView) -> bool:
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


class TokenFailureLimit(SimpleRateThrottle):
    """Failed token authentications per client address, from ECGSITE_API_TOKEN_FAILURE_RATE.

    Not a DRF throttle class: ApiTokenAuthentication asks `retry_after` before it looks a key up
    and calls `failed` after a miss. The window opens at an address's first failure and is counted
    with the cache's add/incr (atomic in Redis), so parallel guesses cannot slip past the count.
    """

    scope = "token-failure"

    def __init__(self, request: Request) -> None:
        super().__init__()
        # REMOTE_ADDR as the proxy middleware leaves it; DRF's get_ident would trust any
        # X-Forwarded-For, and a guesser would send a fresh one each time.
        ident = request.META.get("REMOTE_ADDR") or "unknown"
        self.key = self.cache_format % {"scope": self.scope, "ident": ident}

    def get_rate(self) -> str | None:
        return settings.ECGSITE_API_TOKEN_FAILURE_RATE or None

    def retry_after(self) -> int | None:
        """Seconds until this address may try a key again; None while it is under the limit."""
        if self.rate is None or self.cache.get(self.key, 0) < self.num_requests:
            return None
        opened = self.cache.get(f"{self.key}:opened")
        left = self.duration if opened is None else opened + self.duration - self.timer()
        return max(1, math.ceil(left))

    def failed(self) -> None:
        if self.rate is None:
            return
        if self.cache.add(self.key, 1, self.duration):
            self.cache.set(f"{self.key}:opened", self.timer(), self.duration)
            return
        try:
            self.cache.incr(self.key)
        except ValueError:  # the window closed between add and incr: this failure opens the next
            self.cache.add(self.key, 1, self.duration)
            self.cache.set(f"{self.key}:opened", self.timer(), self.duration)
