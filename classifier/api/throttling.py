"""Request rates per API token (or per signed-in user), from ECGSITE_API_THROTTLE_RATES."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.models import ApiToken


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
