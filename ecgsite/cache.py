"""A Redis cache that keeps answering, from process memory, while Redis is unreachable.

The cache holds the login and API rate-limit counters. In Redis they hold across all web
processes; if Redis stops answering, failing every request with a 500 would turn a cache
outage into a site outage, and ignoring the counters would lift the limits. So each call
that cannot reach Redis is answered by a per-process memory cache instead: limits keep
holding per process until Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
WARNING_INTERVAL_S = 60.0


class FallbackRedisCache(RedisCache):
    """Django's ``RedisCache``, with a per-process memory cache while Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._fallback = LocMemCache(f"redis-fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._last_warning = 0.0

    def _either(self, method: str, *args: Any, **kwargs: Any) -> Any:
        primary: Callable[..., Any] = getattr(super(), method)
        try:
            return primary(*args, **kwargs)
        except UNREACHABLE as error:
            now = time.monotonic()
            if now - self._last_warning > WARNING_INTERVAL_S:
                self._last_warning = now
                logger.warning("Redis cache unreachable (%s); using this process's memory meanwhile", error)
            return getattr(self._fallback, method)(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("add", *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("touch", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get_many", *args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("has_key", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("incr", *args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set_many", *args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete_many", *args, **kwargs)

    def clear(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("clear", *args, **kwargs)
