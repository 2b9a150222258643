"""Whether a user has confirmed their email address, and whether a session still signs them in.

Email verification is mandatory (settings.ACCOUNT_EMAIL_VERIFICATION): an account whose address
nobody has confirmed may be someone else's address, signed up to wait for its owner's uploads
(account pre-hijacking). Such an account may not upload, see results, hold a working API token
or listen on the websocket; every door asks `email_verified`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db.models import Exists, OuterRef
from django.utils.crypto import constant_time_compare

from accounts.models import User


def email_verified(user: Any) -> bool:
    """True when one of the user's addresses has been confirmed by a link or code sent to it."""
    return bool(user.pk) and EmailAddress.objects.filter(user_id=user.pk, verified=True).exists()


def verified_email_exists(user_field: str = "pk") -> Exists:
    """A query condition: the user at `user_field` of the filtered rows has a confirmed address."""
    return Exists(EmailAddress.objects.filter(user_id=OuterRef(user_field), verified=True))


def session_signs_in(*, session_key: str | None, user_id: int) -> bool:
    """Whether the stored session `session_key` still signs in this active, verified user.

    Read from the session store afresh, not from a copy loaded earlier: a long-lived connection
    (the websocket) must stop when its session ends by logout, expiry, or a password change
    elsewhere (Django ties a session to the password through the session auth hash).
    """
    if not session_key:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if str(session.get(SESSION_KEY, "")) != str(user_id):
        return False
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not email_verified(user):
        return False
    return constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())
