"""An in-memory channel layer that a worker thread can safely send to.

Channels' InMemoryChannelLayer keeps asyncio queues that belong to the web server's event loop.
In the embedded default the worker is a thread with its own loop (via async_to_sync), and
touching those queues from it is not thread-safe. This layer hands every send from a foreign
loop over to the server's loop instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer whose sends from other threads run on the receiving loop."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home_loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, channel: str) -> dict:
        self._home_loop = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel: str, message: dict) -> None:
        await self._on_home_loop(super().send(channel, message))

    async def group_send(self, group: str, message: dict) -> None:
        await self._on_home_loop(super().group_send(group, message))

    async def _on_home_loop(self, operation: Any) -> None:
        home = self._home_loop
        if home is None or home is asyncio.get_running_loop() or home.is_closed():
            await operation
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(operation, home))
