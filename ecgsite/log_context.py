"""What each log line says it belongs to: the request (its X-Request-ID) or the jobs a worker
task runs. Context variables, so threads and asyncio tasks each keep their own."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_ids: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar("job_ids", default=None)


@contextlib.contextmanager
def for_request(value: str) -> Iterator[None]:
    token = request_id.set(value)
    try:
        yield
    finally:
        request_id.reset(token)


@contextlib.contextmanager
def for_jobs(values: Sequence[int]) -> Iterator[None]:
    token = job_ids.set(tuple(values))
    try:
        yield
    finally:
        job_ids.reset(token)


class ContextFilter(logging.Filter):
    """Puts `request_id` and `job_ids` on every record (None outside a request or a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        jobs = job_ids.get()
        record.job_ids = list(jobs) if jobs is not None else None
        return True
