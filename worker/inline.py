"""The tests' runner (ECGSITE_TASK_RUNNER=inline): each task runs at once, in the calling thread.

Tasks are looked up by name in Celery's registry, as the embedded runner does, so a test walks the
same task code as a real worker. worker.apps registers it with classifier.dispatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import worker.tasks  # noqa: F401  (registers the tasks this runner looks up by name)
from ecgsite.celery import app as celery_app


class InlineRunner:
    def submit(
        self, name: str, args: Sequence[Any], *, task_id: str | None = None, countdown: float = 0.0
    ) -> object:
        """Run task `name` now and return Celery's EagerResult; a delayed one is not run.

        Nothing waits in a test: a later webhook attempt, say, is left to the sweep, which a
        test runs when it wants it.
        """
        if countdown > 0:
            return None
        return celery_app.tasks[name].apply(args=list(args), task_id=task_id)

    def model_unavailable(self) -> str:
        """Never: as with Celery, the web process does not know the worker's model here."""
        return ""
