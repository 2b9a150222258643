"""The websocket at /ws/notifications/: one user's own events, and nobody else's."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.verification import email_verified, session_signs_in
from classifier.audit import Action, AuditContext, Outcome, audit_record, new_request_id
from classifier.presenters import batch_as_dict
from classifier.selectors import batch_get_for_user, batches_in_progress_for_user, user_group_name

UNAUTHENTICATED = 4401


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Sends `state` on connect, then `job.updated` and `batch.completed` as they happen.

    A client may send {"type": "batch.subscribe", "batch": ID} to get that batch's current
    state (its own batches only), e.g. after a reconnect.

    Only a user with a confirmed address may connect, and before each message it sends the
    socket checks that its session still signs the user in: after a logout, a password change
    elsewhere or the session's expiry, the socket closes (4401) instead of sending.
    """

    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if (
            user is None
            or not user.is_authenticated
            or not await database_sync_to_async(email_verified)(user)
        ):
            await self.close(code=UNAUTHENTICATED)
            return
        self.group_name = user_group_name(user.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        batches = await database_sync_to_async(_in_progress)(user)
        await self.send_json({"type": "state", "batches": batches})

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def _still_signed_in(self) -> bool:
        session = self.scope.get("session")
        signed_in = await database_sync_to_async(session_signs_in)(
            session_key=getattr(session, "session_key", None), user_id=self.scope["user"].pk
        )
        if not signed_in:
            await self.close(code=UNAUTHENTICATED)
        return signed_in

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not await self._still_signed_in():
            return
        if not isinstance(content, dict) or content.get("type") != "batch.subscribe":
            await self.send_json({"type": "error", "message": "Unknown message type."})
            return
        try:
            batch_id = int(content.get("batch"))
        except (TypeError, ValueError):
            await self.send_json({"type": "error", "message": "batch must be an id."})
            return
        batch = await database_sync_to_async(_one_batch)(self.scope["user"], batch_id, _client_ip(self.scope))
        if batch is None:
            await self.send_json({"type": "error", "message": "No such batch."})
            return
        await self.send_json({"type": "batch.state", "batch": batch})

    async def job_updated(self, event: dict[str, Any]) -> None:
        if await self._still_signed_in():
            await self.send_json({"type": "job.updated", "job": event["payload"]})

    async def batch_completed(self, event: dict[str, Any]) -> None:
        if await self._still_signed_in():
            await self.send_json({"type": "batch.completed", "batch": event["payload"]})


def _in_progress(user: Any) -> list[dict[str, Any]]:
    return [batch_as_dict(batch) for batch in batches_in_progress_for_user(user=user)]


def _one_batch(user: Any, batch_id: int, ip: str | None) -> dict[str, Any] | None:
    from django.http import Http404

    # Each subscription is a read of its own, with its own request id.
    context = AuditContext(actor=user, ip=ip, request_id=new_request_id())
    seen = {"context": context, "target_type": "batch", "target_id": batch_id}
    try:
        batch = batch_get_for_user(user=user, batch_id=batch_id)
    except Http404:
        audit_record(action=Action.BATCH_VIEW, outcome=Outcome.NOT_FOUND, detail={"via": "websocket"}, **seen)
        return None
    audit_record(action=Action.BATCH_VIEW, detail={"via": "websocket"}, **seen)
    return batch_as_dict(batch)


def _client_ip(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return client[0] if client else None
