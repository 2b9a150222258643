"""`GET /health/`: can this site take and finish work now? For probes and operators.

Four parts, each {"status": "ok"|"down", ...}:
- database, broker and cache: django-health-check's own checks (SELECT 1; a Redis PING of the
  queue's and of the cache's server; with no Redis, the in-process queue and the local cache);
- workers: each worker process whose heartbeat (worker.heartbeat) was heard within
  ECGSITE_WORKER_GONE_S, with its hostname, queues, model and whether it is ready; down when
  no live worker of the classify queue is ready.

200 when every part asked for is ok, else 503 with `down` naming the parts. `?check=a,b` asks
for some parts only: a web pod's readiness asks for database, broker and cache, so that
workers scaled to zero do not take the site out of service. `GET /health/live/` touches no
dependency: the process answers, nothing more (liveness).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.contrib.redis import Redis
from redis.asyncio import Redis as AsyncRedis

from classifier import selectors
from ecgsite.cache import FallbackRedisCache

PARTS = ("database", "broker", "cache", "workers")
# Each check gives up after this long and counts as down (a probe must answer in seconds).
CHECK_TIMEOUT_S = 3


@dataclasses.dataclass
class InProcessQueue(HealthCheck):
    """The embedded default's queue lives in this process: it is up while the process answers."""

    async def run(self) -> None:
        return None


def _redis(url: str) -> Redis:
    def client() -> AsyncRedis:
        return AsyncRedis.from_url(
            url, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S
        )

    return Redis(client_factory=client)


def infrastructure_checks() -> dict[str, Callable[[], HealthCheck]]:
    """The library's check for each infrastructure part, as this process is configured."""
    cache = settings.CACHES["default"]
    uses_redis_cache = cache["BACKEND"] == f"{FallbackRedisCache.__module__}.{FallbackRedisCache.__name__}"
    return {
        "database": Database,
        "broker": (lambda: _redis(settings.CELERY_BROKER_URL)) if settings.REDIS_URL else InProcessQueue,
        # The cache falls back to process memory when its Redis is away (ecgsite.cache): a
        # set-and-get would pass, so its server is pinged instead.
        "cache": (lambda: _redis(cache["LOCATION"])) if uses_redis_cache else Cache,
    }


def _run(checks: dict[str, HealthCheck]) -> dict[str, dict]:
    async def gather() -> list:
        return await asyncio.gather(*(check.get_result() for check in checks.values()))

    parts = {}
    for name, result in zip(checks, asyncio.run(gather()), strict=True):
        parts[name] = {"status": "down" if result.error else "ok", "seconds": round(result.time_taken, 4)}
        if result.error:
            parts[name]["error"] = str(result.error)
    return parts


def _workers() -> dict:
    try:
        live = selectors.workers_live()
    except Exception as error:  # the database is down too: that part says so
        return {
            "status": "down",
            "error": f"cannot read the workers' heartbeats: {type(error).__name__}",
            "live": [],
        }
    rows = [
        {
            "hostname": worker.hostname,
            "pid": worker.pid,
            "queues": worker.queues.split(",") if worker.queues else [],
            "model": worker.model,
            "ready": worker.state == worker.State.READY,
            "state": worker.state,
            "seen": worker.seen.isoformat(),
        }
        for worker in live
    ]
    classify = settings.CELERY_TASK_DEFAULT_QUEUE
    ready = any(row["ready"] and classify in row["queues"] for row in rows)
    part = {"status": "ok" if ready else "down", "live": rows}
    if not ready:
        part["error"] = f"no live worker of the {classify!r} queue is ready"
    return part


def health_report(parts: tuple[str, ...] = PARTS) -> tuple[int, dict]:
    """(HTTP status, body) of the health of `parts`."""
    factories = infrastructure_checks()
    checks = {name: factories[name]() for name in parts if name in factories}
    for check in checks.values():
        check.timeout = datetime.timedelta(seconds=CHECK_TIMEOUT_S)
    body: dict = _run(checks) if checks else {}
    if "workers" in parts:
        body["workers"] = _workers()
    down = [name for name in parts if body[name]["status"] != "ok"]
    return (503 if down else 200), {"status": "down" if down else "ok", "down": down, **body}


def health(request: HttpRequest) -> JsonResponse:
    asked = request.GET.get("check")
    parts = tuple(part.strip() for part in asked.split(",") if part.strip()) if asked else PARTS
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        named = ", ".join(unknown) or "(none)"
        error = f"unknown health check {named}; the checks are {', '.join(PARTS)}"
        return JsonResponse({"error": error}, status=400)
    status, body = health_report(parts)
    return JsonResponse(body, status=status)


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
