"""API tokens and webhook secrets: every write and the one lookup by key.

A token's key is `ecg_` plus 40 random URL-safe characters. Only sha256(key) is stored, so a
leaked database does not leak usable keys; the key itself is returned once, at creation.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiToken, User, WebhookSecret
from accounts.verification import verified_email_exists

KEY_PREFIX = "ecg_"
# How often last_used is written: not on every request, so reads stay reads.
LAST_USED_RESOLUTION_S = 60


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_create(*, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the key, which is never shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], prefix=key[: len(KEY_PREFIX) + 6], key_hash=hash_key(key)
    )
    return token, key


def api_token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of the user's active tokens; False if there is no such active token."""
    return bool(
        ApiToken.objects.filter(user=user, pk=token_id, revoked__isnull=True).update(revoked=timezone.now())
    )


def api_tokens_revoke_all(*, user: User) -> list[int]:
    """Revoke every active token of the user (their password changed); the ids revoked."""
    active = ApiToken.objects.filter(user=user, revoked__isnull=True)
    revoked = list(active.values_list("pk", flat=True))
    active.filter(pk__in=revoked).update(revoked=timezone.now())
    return revoked


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key, of an active user with a confirmed address, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked__isnull=True, user__is_active=True)
        .filter(verified_email_exists("user_id"))
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used is None or (now - token.last_used).total_seconds() > LAST_USED_RESOLUTION_S:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
    return token


def api_tokens_for_user(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def _new_webhook_secret() -> str:
    # The Standard Webhooks format: "whsec_" + base64 of the raw key bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def webhook_secret_for_user(*, user: User) -> str:
    """The user's webhook signing secret, made the first time it is asked for."""
    with transaction.atomic():
        row, _ = WebhookSecret.objects.get_or_create(user=user, defaults={"secret": _new_webhook_secret()})
    return row.secret


def webhook_secret_rotate(*, user: User) -> str:
    """Replace the user's webhook secret; calls signed from now on use the new one."""
    secret = _new_webhook_secret()
    WebhookSecret.objects.update_or_create(user=user, defaults={"secret": secret})
    return secret
