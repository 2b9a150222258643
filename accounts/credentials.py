"""What a password change means beyond the password: every other door the old one opened closes.

Django already ends the user's other sessions (a session carries a hash of the password, and
both the pages and the websocket check it: accounts.verification.session_signs_in). API tokens
are not tied to the password, so they are revoked here: whoever held the account before its
owner reset the password must not keep reading it through a token made earlier.
"""

from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from django.dispatch import receiver

from accounts.models import ApiToken, User
from accounts.signals import api_token_revoked
from accounts.tokens import api_tokens_revoke_all


def credentials_changed(*, user: User, request: Any = None, how: str) -> list[int]:
    """Revoke the user's API tokens, each announced (accounts.signals: the audit log records
    it, with the user as the actor); the ids revoked."""
    revoked = api_tokens_revoke_all(user=user)
    for token_id in revoked:
        api_token_revoked.send(
            sender=ApiToken, token_id=token_id, request=request, actor=user, reason=f"password {how}"
        )
    return revoked


@receiver(password_changed, dispatch_uid="revoke-tokens-on-password-change")
def _password_changed(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    credentials_changed(user=user, request=request, how="changed")


@receiver(password_reset, dispatch_uid="revoke-tokens-on-password-reset")
def _password_reset(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    credentials_changed(user=user, request=request, how="reset")


@receiver(password_set, dispatch_uid="revoke-tokens-on-password-set")
def _password_set(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    credentials_changed(user=user, request=request, how="set")
