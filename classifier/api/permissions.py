"""Who may use the API beyond being signed in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:  # DRF loads this class while rest_framework.views is still importing
    from rest_framework.request import Request

from accounts.verification import email_verified


class HasVerifiedEmail(BasePermission):
    """A browser session of an account whose address nobody confirmed reads nothing (tokens of
    such accounts never authenticate: accounts.tokens.api_token_authenticate)."""

    message = "Confirm your email address first: follow the link we sent you, then try again."

    def has_permission(self, request: Request, view: Any) -> bool:
        return not request.user.is_authenticated or email_verified(request.user)
