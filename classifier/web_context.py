"""Where the web meets the audit log: the one place a request becomes an `AuditContext`.

Pages, API views and the admin call `audit_context(request)` and hand the context to
`audit_record` and the services. The receivers below record what other code announces with
a request attached: sign-ins (Django's auth signals, which allauth sends through) and API
token changes (accounts.signals; accounts knows nothing of the audit log).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import ApiToken
from accounts.signals import api_token_created, api_token_revoked
from classifier.audit import Action, AuditContext, Outcome, audit_record


def audit_context(request: HttpRequest) -> AuditContext:
    """Who sent `request` (a Django request, or DRF's wrapping one) and from where."""
    user = getattr(request, "user", None)
    # DRF puts the ApiToken that authenticated the request on .auth (of both requests); a
    # session-authenticated or plain Django request has no token there.
    token = getattr(request, "auth", None)
    return AuditContext(
        actor=user if user is not None and user.is_authenticated else None,
        ip=request.META.get("REMOTE_ADDR") or None,
        request_id=getattr(request, "request_id", ""),
        api_token_id=token.pk if isinstance(token, ApiToken) else None,
    )


def _context(request: HttpRequest | None) -> AuditContext | None:
    # Signals sent outside a request (a command, an administrator's form) carry none: the
    # entry then names the given actor, or the system.
    return audit_context(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(
        action=Action.LOGIN, context=_context(request), actor=user, target_type="user", target_id=user.pk
    )


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(
            action=Action.LOGOUT, context=_context(request), actor=user, target_type="user", target_id=user.pk
        )


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
        context=_context(request),
        outcome=Outcome.FAILED,
        detail={"login": tried[:254]},
    )


@receiver(api_token_created, dispatch_uid="audit-token-create")
def _token_created(
    sender: Any, token_id: int, request: HttpRequest | None, via: str = "", for_email: str = "", **kwargs: Any
) -> None:
    detail = {**({"via": via} if via else {}), **({"for": for_email} if for_email else {})}
    audit_record(
        action=Action.TOKEN_CREATE,
        context=_context(request),
        target_type="token",
        target_id=token_id,
        detail=detail,
    )


@receiver(api_token_revoked, dispatch_uid="audit-token-revoke")
def _token_revoked(
    sender: Any,
    token_id: int,
    request: HttpRequest | None,
    revoked: bool = True,
    actor: Any = None,
    via: str = "",
    reason: str = "",
    **kwargs: Any,
) -> None:
    detail = {**({"via": via} if via else {}), **({"reason": reason} if reason else {})}
    audit_record(
        action=Action.TOKEN_REVOKE,
        context=_context(request),
        actor=actor,
        target_type="token",
        target_id=token_id,
        outcome=Outcome.SUCCESS if revoked else Outcome.NOT_FOUND,
        detail=detail,
    )
