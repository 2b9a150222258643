"""The audit log: who uploaded, viewed, re-ran or deleted what, from where, when, and the outcome.

Views, API views, the websocket consumer and the admin call `audit_record` at the point where
they answer, so reads of results and images are recorded as well as writes; services record
their own writes. Each door describes who acted and from where as an `AuditContext` (the web
doors build it from the request in classifier.web_context, which also records sign-ins and
token changes from their signals); nothing here sees a request. Entries hold ids and names,
never image data, and cannot be changed once written (classifier.models.AuditEvent).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.http import Http404

from classifier.models import AuditEvent

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
SYSTEM = "system"
ANONYMOUS = "anonymous"
Found = TypeVar("Found")


@dataclass(frozen=True)
class AuditContext:
    """Who acted (None: nobody signed in) and from where: the client's address, the request
    id, and the API token it authenticated with, if any."""

    actor: Any = None
    ip: str | None = None
    request_id: str = ""
    api_token_id: int | None = None


def new_request_id() -> str:
    return uuid.uuid4().hex


def audit_record(
    *,
    action: str,
    context: AuditContext | None = None,
    actor: Any = None,
    target_type: str = "",
    target_id: int | None = None,
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry. `actor`, when given, is who acted instead of the context's actor (a
    service acting for the batch's owner). With an actor from neither, the entry names an
    anonymous client when there is a context, else the system."""
    if actor is None and context is not None:
        actor = context.actor
    label = actor.get_username() if actor is not None else (ANONYMOUS if context is not None else SYSTEM)
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=label,
        api_token_id=context.api_token_id if context else None,
        ip=context.ip if context else None,
        request_id=context.request_id if context else "",
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
        detail=detail or {},
    )


def audited_lookup(
    lookup: Callable[[], Found],
    *,
    action: str,
    context: AuditContext | None,
    target_type: str,
    target_id: int,
    detail: dict[str, Any] | None = None,
    outcome_of: Callable[[Found], str] | None = None,
) -> Found:
    """Run an ownership-checked read and record it; a miss is recorded as not found, then re-raised.

    ``outcome_of`` says how a read that found something went (default: a success)."""
    record = {"action": action, "context": context, "target_type": target_type, "target_id": target_id}
    try:
        found = lookup()
    except Http404:
        audit_record(**record, outcome=Outcome.NOT_FOUND, detail=detail)
        raise
    outcome = outcome_of(found) if outcome_of else Outcome.SUCCESS
    audit_record(**record, outcome=outcome, detail=detail)
    return found
