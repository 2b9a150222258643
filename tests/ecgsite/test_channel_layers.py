"""ecgsite.channel_layers: the embedded worker thread can reach browsers served by the main loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from ecgsite.channel_layers import ThreadSafeInMemoryChannelLayer

TIMEOUT = 3
# A send from a foreign thread that is not handed to the receiver's loop may sit unnoticed
# until that loop wakes for another reason (here: the wait's own timeout); prompt means now.
PROMPT = 1.0


async def _received_promptly(receiving: asyncio.Task) -> dict:
    loop = asyncio.get_running_loop()
    started = loop.time()
    message = await asyncio.wait_for(receiving, timeout=TIMEOUT)
    assert loop.time() - started < PROMPT
    return message


async def _waiting_receiver(layer: ThreadSafeInMemoryChannelLayer, group: str) -> tuple[str, asyncio.Task]:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.01)  # let the receiver start waiting on this loop
    return channel, receiving


def _in_plain_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run():
        try:
            target()
        except BaseException as error:  # reported to the test, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.asyncio
async def test_a_group_send_from_another_thread_reaches_a_receiver_on_the_main_loop():
    layer = ThreadSafeInMemoryChannelLayer()
    _, receiving = await _waiting_receiver(layer, "user-1")

    thread, errors = _in_plain_thread(
        lambda: async_to_sync(layer.group_send)("user-1", {"type": "job.updated", "payload": {"id": 7}})
    )
    message = await _received_promptly(receiving)
    await asyncio.to_thread(thread.join, TIMEOUT)

    assert errors == []
    assert message == {"type": "job.updated", "payload": {"id": 7}}


@pytest.mark.asyncio
async def test_a_send_from_another_thread_reaches_a_receiver_on_the_main_loop():
    layer = ThreadSafeInMemoryChannelLayer()
    channel, receiving = await _waiting_receiver(layer, "unused")

    thread, errors = _in_plain_thread(lambda: async_to_sync(layer.send)(channel, {"type": "ping"}))
    message = await _received_promptly(receiving)
    await asyncio.to_thread(thread.join, TIMEOUT)

    assert errors == []
    assert message == {"type": "ping"}


@pytest.mark.asyncio
async def test_a_group_send_from_another_thread_does_not_reach_other_groups():
    layer = ThreadSafeInMemoryChannelLayer()
    _, own = await _waiting_receiver(layer, "user-1")
    _, other = await _waiting_receiver(layer, "user-2")

    thread, _ = _in_plain_thread(lambda: async_to_sync(layer.group_send)("user-1", {"type": "job.updated"}))
    await _received_promptly(own)
    await asyncio.to_thread(thread.join, TIMEOUT)
    await asyncio.sleep(0.05)

    assert not other.done()
    other.cancel()


def test_sends_before_any_receiver_are_kept_for_it():
    layer = ThreadSafeInMemoryChannelLayer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("user-1", channel)

    async_to_sync(layer.group_send)("user-1", {"type": "batch.completed"})

    assert async_to_sync(layer.receive)(channel) == {"type": "batch.completed"}
