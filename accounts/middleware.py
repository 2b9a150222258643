"""Pages answer only users who have confirmed their email address (accounts.verification)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account.decorators import verified_email_required
from django.http import HttpRequest, HttpResponse

from accounts.verification import email_verified

# Where an unconfirmed account may still go: the account pages (to confirm the address or sign
# out), the admin (its own permissions decide) and static files. The API answers for itself
# (classifier.api.permissions.HasVerifiedEmail, accounts.tokens.api_token_authenticate).
OPEN_PREFIXES = ("/accounts/", "/admin/", "/static/", "/api/")
GUARDED_UNDER_OPEN = ("/accounts/tokens/",)


class VerifiedEmailRequiredMiddleware:
    """A signed-in user with no confirmed address gets allauth's "verify your email" page, and
    the confirmation email again, instead of any page that uploads or shows results."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., HttpResponse], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        path = request.path_info
        if path.startswith(OPEN_PREFIXES) and not path.startswith(GUARDED_UNDER_OPEN):
            return None
        if not request.user.is_authenticated or email_verified(request.user):
            return None
        return verified_email_required(view_func)(request, *args, **kwargs)
