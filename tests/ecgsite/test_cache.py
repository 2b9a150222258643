"""The Redis cache answers from process memory while Redis is unreachable."""

from __future__ import annotations

import logging
import socket

import pytest

from ecgsite.cache import FallbackRedisCache


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_cache() -> FallbackRedisCache:
    return FallbackRedisCache(
        f"redis://127.0.0.1:{closed_port()}/1",
        {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}, "KEY_PREFIX": "t"},
    )


def test_counters_keep_working_in_memory_while_redis_is_down(
    unreachable_cache: FallbackRedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ecgsite.cache"):
        assert unreachable_cache.get("attempts", 0) == 0
        assert unreachable_cache.add("attempts", 1) is True
        assert unreachable_cache.incr("attempts") == 2
        unreachable_cache.set("history", [1.0, 2.0], 30)
        assert unreachable_cache.get_many(["attempts", "history"]) == {"attempts": 2, "history": [1.0, 2.0]}
        unreachable_cache.delete("attempts")
        assert not unreachable_cache.has_key("attempts")
    # One warning, not one per call.
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "Redis cache unreachable" in caplog.records[0].message
