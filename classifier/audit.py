"""The audit log: who uploaded, viewed, re-ran or deleted what, from where, when, and the outcome.

Views, API views, the websocket consumer and the admin call `audit_record` at the point where
they answer, so reads of results and images are recorded as well as writes. Sign-ins are
recorded from Django's auth signals (allauth authenticates through them). Entries hold ids and
names, never image data, and cannot be changed once written (classifier.models.AuditEvent).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import Http404, HttpRequest

from classifier.models import AuditEvent

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
SYSTEM = "system"
ANONYMOUS = "anonymous"
Found = TypeVar("Found")


def new_request_id() -> str:
    return uuid.uuid4().hex


def audit_record(
    *,
    action: str,
    request: Any = None,
    actor: Any = None,
    api_token_id: int | None = None,
    ip: str | None = None,
    request_id: str = "",
    target_type: str = "",
    target_id: int | None = None,
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry. Who, from where and the request id come from `request` (a Django or DRF
    request) unless given; with neither a request nor an actor, the actor is the system."""
    if request is not None:
        origin = audit_origin(request)
        actor = actor if actor is not None else origin["actor"]
        api_token_id = api_token_id if api_token_id is not None else origin["api_token_id"]
        ip = ip or origin["ip"]
        request_id = request_id or origin["request_id"]
    label = actor.get_username() if actor is not None else (ANONYMOUS if request is not None else SYSTEM)
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=label,
        api_token_id=api_token_id,
        ip=ip,
        request_id=request_id,
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        detail=detail or {},
    )


def audit_origin(request: Any) -> dict[str, Any]:
    """Who sent `request` (a Django or DRF request) and from where, as `audit_record` takes them:
    for services, which record their own writes and are never handed a request."""
    user = getattr(request, "user", None)
    return {
        "actor": user if user is not None and user.is_authenticated else None,
        "api_token_id": _token_id(request),
        "ip": request.META.get("REMOTE_ADDR") or None,
        "request_id": getattr(request, "request_id", ""),
    }


def _token_id(request: Any) -> int | None:
    # A DRF request authenticated by ApiTokenAuthentication carries the ApiToken as .auth; a
    # plain Django request has no .auth at all.
    from rest_framework.request import Request

    from accounts.models import ApiToken

    token = request.auth if isinstance(request, Request) else None
    return token.pk if isinstance(token, ApiToken) else None


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(action=Action.LOGIN, request=request, actor=user, target_type="user", target_id=user.pk)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(action=Action.LOGOUT, request=request, actor=user, target_type="user", target_id=user.pk)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in `credentials`; keep only the name tried.
    tried = next(
        (str(credentials[key]) for key in ("email", "username", "login") if credentials.get(key)), ""
    )
    audit_record(
        action=Action.LOGIN_FAILED,
        request=request,
        outcome=Outcome.FAILED,
        detail={"login": tried[:254]},
    )


def audited_lookup(
    lookup: Callable[[], Found], *, action: str, request: Any, target_type: str, target_id: int
) -> Found:
    """Run an ownership-checked read and record it; a miss is recorded as not found, then re-raised."""
    try:
        found = lookup()
    except Http404:
        audit_record(
            action=action,
            request=request,
            target_type=target_type,
            target_id=target_id,
            outcome=Outcome.NOT_FOUND,
        )
        raise
    audit_record(action=action, request=request, target_type=target_type, target_id=target_id)
    return found
