"""A worker process's heartbeat: one daemon thread that, every ECGSITE_HEARTBEAT_S,

1. renews the leases of the jobs this process's tasks hold (``holding``), so the reaper never
   takes a slow job from a living worker, and takes a dead or frozen one's back within the
   lease (classifier.reaper);
2. records the process as alive, with its queues, model and state (``services.worker_seen``),
   for the health endpoint and the metrics;
3. writes the same to ECGSITE_WORKER_HEARTBEAT_FILE, which ``python -m worker.alive`` (the
   container's probe) reads without starting Django.

The thread beats while the process lives: a SIGKILLed or SIGSTOPped process stops beating with
it, which is the point. A beat that fails (the database away) is logged and tried again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from classifier import services
from classifier.models import WorkerProcess
from worker.runtime import model_path, model_status

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# task id -> the job ids that delivery holds (a prefork child runs one task at a time; the
# embedded runner's thread too, but nothing here assumes it).
_held: dict[str, frozenset[int]] = {}
_thread: threading.Thread | None = None
_thread_pid = 0
_queues: tuple[str, ...] = ()
_started = timezone.now()


@contextlib.contextmanager
def holding(task_id: str, job_ids: Sequence[int]) -> Iterator[None]:
    """While the block runs, the heartbeat renews these jobs' leases (the claim set the first)."""
    with _lock:
        _held[task_id] = frozenset(job_ids)
    try:
        yield
    finally:
        with _lock:
            _held.pop(task_id, None)


def held() -> dict[str, frozenset[int]]:
    with _lock:
        return dict(_held)


def start(queues: Sequence[str]) -> None:
    """Start this process's heartbeat thread (once per process: a forked child starts its own)."""
    global _thread, _thread_pid, _queues, _started
    with _lock:
        if _thread is not None and _thread_pid == os.getpid() and _thread.is_alive():
            return
        _queues = tuple(queues)
        _started = timezone.now()
        _thread_pid = os.getpid()
        _thread = threading.Thread(target=_beat_forever, name="heartbeat", daemon=True)
        _thread.start()


def classifies(queues: Sequence[str]) -> bool:
    """Whether a worker consuming ``queues`` runs classifications (and so needs a model)."""
    return settings.CELERY_TASK_DEFAULT_QUEUE in queues


def _state() -> tuple[str, str]:
    """(model name, state) of this process: a worker that classifies nothing needs no model."""
    if not classifies(_queues):
        return "", WorkerProcess.State.READY
    status = model_status()
    return (status.model or model_path().stem), status.state


def beat_once() -> None:
    """One heartbeat: write the probe's file, renew the held leases, record this process.

    The file comes first and needs no database: a database outage must not make the container's
    probe restart a living worker (its leases lapse meanwhile, and the reaper sorts that out)."""
    model, state = _state()
    beat = services.WorkerBeat(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=_queues,
        model=model,
        state=state,
        started=_started,
    )
    write_probe_file(beat)
    for task_id, job_ids in held().items():
        services.jobs_lease_renew(task_id=task_id, job_ids=sorted(job_ids))
    services.worker_seen(beat=beat)


def write_probe_file(beat: services.WorkerBeat, path: str | None = None) -> None:
    """The beat as JSON, replaced whole (a probe never reads half a file)."""
    target = Path(path or settings.ECGSITE_WORKER_HEARTBEAT_FILE)
    record = {
        "hostname": beat.hostname,
        "pid": beat.pid,
        "queues": list(beat.queues),
        "model": beat.model,
        "state": beat.state,
        "at": time.time(),
    }
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(json.dumps(record))
    os.replace(partial, target)


def _beat_forever() -> None:
    interval = settings.ECGSITE_HEARTBEAT_S
    while True:
        started = time.monotonic()
        close_old_connections()
        try:
            beat_once()
        except Exception:
            logger.exception("heartbeat failed; the next in %ss", interval)
            connection.close()  # a broken connection is not reused
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
