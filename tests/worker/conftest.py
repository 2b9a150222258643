"""Fixtures shared by the worker's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[int, str]]:
    """(job id, task id) of every job handed to the queue, which runs nothing."""
    calls: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "classifier.dispatch.enqueue_classify", lambda *, job_id, task_id: calls.append((job_id, task_id))
    )
    return calls
