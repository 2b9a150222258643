"""`python -m worker.alive`: the probe of a worker container (Docker HEALTHCHECK, Kubernetes).

Exit 0 when a process of this worker wrote its heartbeat file (worker.heartbeat) within
MAX_AGE_S and says it is ready; 1, with the reason on stderr, otherwise. It imports no Django and
touches neither database nor broker, so a probe costs milliseconds and a busy database cannot
make a living worker look dead. ECGSITE_WORKER_HEARTBEAT_FILE names the file, as in settings.
"""

from __future__ import annotations

import json
import os
import sys
import time

DEFAULT_HEARTBEAT_FILE = "/tmp/ecgsite-worker-heartbeat.json"
# Several heartbeats (ECGSITE_HEARTBEAT_S, 5 s by default) may be missed before a worker is dead.
MAX_AGE_S = 30.0


def problem(path: str, *, now: float | None = None, max_age_s: float = MAX_AGE_S) -> str:
    """Why the worker is not alive and ready, or "" when it is."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        age = (now if now is not None else time.time()) - float(record["at"])
        state = record["state"]
    except FileNotFoundError:
        return f"no heartbeat yet at {path}"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable heartbeat at {path}: {error}"
    if age > max_age_s:
        return f"last heartbeat {age:.0f} s ago (more than {max_age_s:.0f} s)"
    if state != "ready":
        return f"the worker is {state}, not ready (model {record.get('model') or '-'})"
    return ""


def main() -> int:
    path = os.environ.get("ECGSITE_WORKER_HEARTBEAT_FILE") or DEFAULT_HEARTBEAT_FILE
    reason = problem(path)
    if reason:
        print(f"worker not alive: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
