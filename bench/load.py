"""Load test: many API clients submitting and polling at once, against the real stack.

Usage::

    python -m bench.load [--clients 50] [--duration 60] [--workers 2] [--poll-interval 1]
                         [--out var/load/load.json]

Needs MariaDB and Redis answering on 127.0.0.1 (``bash .ci/run --services-only`` starts them;
``make load`` does both). Starts daphne and ``--workers`` separate Celery worker processes (solo
pool each) on their own database ``ecgsite_load`` (dropped and created again) and Redis db 8
(its rate-limit cache on db 9; both flushed), then:

1. renders a handful of synthetic pages once (``ml.synthetic``) and reuses their bytes;
2. creates one account and API token per client (the API's rates are per token);
3. warms up: one job per worker, so every worker has loaded the model before the clock starts;
4. runs ``--clients`` clients for ``--duration`` seconds. Each loops: ``POST /api/v1/batches/``
   with one image, then ``GET /api/v1/jobs/{id}/`` every ``--poll-interval`` seconds until the
   job has finished. A client that has submitted when the time is up still waits for its result;
5. drains: waits until the database holds no queued or running job, then checks that every job
   succeeded with exactly one prediction. Any other job, or one a client saw accepted and the
   database lacks, is a lost job.

Prints a summary and writes the figures as JSON to ``--out``: requests, submissions, completions,
throughput (jobs/s, requests/s), latency p50/p95/max of submit, poll and submit→result, the 5xx
count, the count of other errors (other statuses, transport errors, results never seen), and the
lost jobs. Exits 1 unless the stack held: no 5xx and no lost job.

``LOAD_DATABASE_URL`` and ``LOAD_REDIS_URL`` choose other services (tests/realstack/test_load.py
does). The client loop (``run_clients``) and the figures (``summarize``) need no stack: the fast
tests drive them through an ``httpx.MockTransport``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ecgsite.env import redis_url_db, redis_url_with_db

REPO_ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get("LOAD_DATABASE_URL", "mysql://root@127.0.0.1:3306/ecgsite_load")
REDIS_URL = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/8")
DEFAULT_OUT = REPO_ROOT / "var" / "load" / "load.json"
SUBMIT_PATH = "/api/v1/batches/"
FINISHED = ("succeeded", "failed")
# The worker's first job imports TensorFlow and loads the model on CPU.
WARM_UP_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class LoadConfig:
    """What one run does; the defaults are the issue's: 50 clients, 60 s, two workers."""

    clients: int = 50
    duration_s: float = 60.0
    workers: int = 2
    # How often a client asks for its job; submit→result is late by up to this much.
    poll_interval_s: float = 1.0
    # A client gives up on a job's result after this long (an error); the database check stays.
    result_timeout_s: float = 300.0
    # Longest wait, after the clients stop, for the database to hold no unfinished job.
    drain_s: float = 180.0
    # One HTTP request's limit (connect, read and write each).
    request_timeout_s: float = 60.0
    # A client whose submit failed waits this long before it submits again.
    retry_pause_s: float = 1.0
    images: int = 8

    def __post_init__(self) -> None:
        for name in ("clients", "workers", "images"):
            if getattr(self, name) < 1:
                raise ValueError(f"'{name}' must be at least 1. Received: {getattr(self, name)}")
        for name in ("duration_s", "poll_interval_s", "result_timeout_s", "request_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"'{name}' must be positive. Received: {getattr(self, name)}")


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request a client made: seconds from the run's start, latency, and the answer."""

    kind: str  # "submit" or "poll"
    at_s: float
    latency_s: float
    status: int | None  # None: no answer (connection error, timeout)
    error: str = ""  # empty when the answer was the expected one (201 for submit, 200 for poll)


@dataclass
class SubmittedJob:
    """A job a client saw accepted, and what became of it as the client saw it."""

    job_id: int
    client: int
    submitted_at_s: float
    result_at_s: float | None = None
    status: str = "queued"
    error: str = ""  # "result never seen" when the client gave up

    @property
    def seconds_to_result(self) -> float | None:
        return None if self.result_at_s is None else self.result_at_s - self.submitted_at_s


@dataclass
class LoadRun:
    """Everything the clients observed in one run."""

    config: LoadConfig
    window_s: float = 0.0
    requests: list[RequestRecord] = field(default_factory=list)
    jobs: list[SubmittedJob] = field(default_factory=list)


# --- The clients --------------------------------------------------------------------------------


class _Client:
    """One API client: its own token and connection, submitting and polling in turn."""

    def __init__(
        self,
        number: int,
        http: httpx.AsyncClient,
        images: Sequence[tuple[str, bytes]],
        run: LoadRun,
        start: float,
    ) -> None:
        self.number = number
        self.http = http
        self.images = images
        self.run = run
        self.start = start
        self.config = run.config

    def _now(self) -> float:
        return time.monotonic() - self.start

    async def _call(self, kind: str, method: str, url: str, expected: int, **kwargs: Any) -> Any | None:
        """Make one request and record it; the JSON body when the answer is `expected`, else None."""
        began = self._now()
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.run.requests.append(
                RequestRecord(kind, began, self._now() - began, None, type(error).__name__)
            )
            return None
        latency = self._now() - began
        body: Any = None
        error = "" if response.status_code == expected else f"HTTP {response.status_code}"
        if not error:
            try:
                body = response.json()
            except ValueError:
                error = "not JSON"
        self.run.requests.append(RequestRecord(kind, began, latency, response.status_code, error))
        return body if not error else None

    async def loop(self, deadline_s: float) -> None:
        """Submit one image and wait for its result, again and again until `deadline_s` has passed."""
        cycle = 0
        while self._now() < deadline_s:
            if not await self.submit_and_wait(cycle):
                await asyncio.sleep(self.config.retry_pause_s)
            cycle += 1

    async def submit_and_wait(self, cycle: int) -> bool:
        """One cycle: submit an image, then poll its job until it finished; False if not accepted."""
        name, content = self.images[(self.number + cycle) % len(self.images)]
        submitted_at = self._now()
        body = await self._call(
            "submit",
            "POST",
            SUBMIT_PATH,
            201,
            files=[("images", (name, content, "image/png"))],
            data={"name": f"load client {self.number}"},
        )
        if body is None:
            return False
        job = SubmittedJob(job_id=int(body["jobs"][0]["id"]), client=self.number, submitted_at_s=submitted_at)
        self.run.jobs.append(job)
        await self._wait_for_result(job)
        return True

    async def _wait_for_result(self, job: SubmittedJob) -> None:
        give_up_at = job.submitted_at_s + self.config.result_timeout_s
        while self._now() < give_up_at:
            await asyncio.sleep(self.config.poll_interval_s)
            body = await self._call("poll", "GET", f"/api/v1/jobs/{job.job_id}/", 200)
            if body is not None and body.get("status") in FINISHED:
                job.status, job.result_at_s = body["status"], self._now()
                return
        job.error = "result never seen"


def _sessions(
    base_url: str, tokens: Sequence[str], config: LoadConfig, transport: httpx.AsyncBaseTransport | None
) -> list[httpx.AsyncClient]:
    """One HTTP client per token: its own connection, as separate programs would have."""
    return [
        httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Token {token}"},
            timeout=httpx.Timeout(config.request_timeout_s),
            transport=transport,
            trust_env=False,  # loopback: never through a configured proxy
        )
        for token in tokens
    ]


async def run_clients(
    base_url: str,
    tokens: Sequence[str],
    images: Sequence[tuple[str, bytes]],
    config: LoadConfig,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    once: bool = False,
) -> LoadRun:
    """Run one client per token for `config.duration_s`, then until each has its last result
    (with `once`, each client makes exactly one cycle). `transport` replaces the network in tests.
    """
    if len(tokens) != config.clients:
        raise ValueError(f"one token per client: {config.clients} clients, {len(tokens)} tokens")
    run = LoadRun(config=config)
    sessions = _sessions(base_url, tokens, config, transport)
    start = time.monotonic()  # once the clients exist: making 50 of them takes a while
    try:
        clients = [_Client(number, http, images, run, start) for number, http in enumerate(sessions)]
        await asyncio.gather(
            *(client.submit_and_wait(0) if once else client.loop(config.duration_s) for client in clients)
        )
    finally:
        await asyncio.gather(*(http.aclose() for http in sessions))
    run.window_s = time.monotonic() - start
    return run


# --- The figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of `values` (which must not be empty)."""
    ordered = sorted(values)
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def latency_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95 and max in milliseconds (None for an empty list), rounded to 0.1 ms."""
    if not seconds:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {
        "count": len(seconds),
        "p50": round(percentile(seconds, 50) * 1000, 1),
        "p95": round(percentile(seconds, 95) * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
    }


def summarize(run: LoadRun, *, lost: Sequence[dict[str, Any]], jobs_in_database: int) -> dict[str, Any]:
    """The report's figures from what the clients saw and what the database holds."""
    config = run.config
    window = run.window_s or 1e-9
    finished = [job for job in run.jobs if job.result_at_s is not None]
    answered = [r for r in run.requests if r.status is not None]  # latency of every answer, errors too
    server_errors = [r for r in run.requests if r.status is not None and r.status >= 500]
    other = Counter(r.error for r in run.requests if r.error and not (r.status or 0) >= 500)
    other.update(job.error for job in run.jobs if job.error)
    return {
        "config": asdict(config),
        "window_s": round(run.window_s, 2),
        "requests": {
            "total": len(run.requests),
            "submit": sum(r.kind == "submit" for r in run.requests),
            "poll": sum(r.kind == "poll" for r in run.requests),
        },
        "submissions": len(run.jobs),
        "completions": len(finished),
        "succeeded": sum(job.status == "succeeded" for job in finished),
        "failed": sum(job.status == "failed" for job in finished),
        "throughput": {
            "jobs_per_s": round(len(finished) / window, 2),
            "requests_per_s": round(len(run.requests) / window, 2),
        },
        "latency_ms": {
            "submit": latency_ms([r.latency_s for r in answered if r.kind == "submit"]),
            "poll": latency_ms([r.latency_s for r in answered if r.kind == "poll"]),
            "submit_to_result": latency_ms([job.seconds_to_result for job in finished]),  # type: ignore[misc]
        },
        "errors": {
            "5xx": len(server_errors),
            "5xx_by_request": dict(sorted(Counter(f"{r.kind} {r.status}" for r in server_errors).items())),
            "other": sum(other.values()),
            "other_by_kind": dict(sorted(other.items())),
        },
        "jobs_in_database": jobs_in_database,
        "lost_jobs": len(lost),
        "lost": list(lost[:20]),
        "held": not server_errors and not lost,
    }


def _row(name: str, figures: dict[str, Any]) -> str:
    if not figures["count"]:
        return f"  {name:<15} (none)"
    values = " ".join(f"{figures[column]:>9.1f}" for column in ("p50", "p95", "max"))
    return f"  {name:<15} {values}   ({figures['count']})"


def format_summary(report: dict[str, Any]) -> str:
    """The report for people: a dozen aligned lines."""
    config, requests, latency = report["config"], report["requests"], report["latency_ms"]
    errors, throughput = report["errors"], report["throughput"]
    other_kinds = ", ".join(f"{kind} {count}" for kind, count in errors["other_by_kind"].items())
    verdict = "held: no 5xx, no lost job" if report["held"] else "NOT HELD"
    return "\n".join(
        [
            f"Load test: {config['clients']} clients for {config['duration_s']:g} s, "
            f"{config['workers']} Celery workers, poll every {config['poll_interval_s']:g} s",
            f"  requests        {requests['total']} (submit {requests['submit']}, poll {requests['poll']}), "
            f"{throughput['requests_per_s']:.2f} requests/s",
            f"  submissions     {report['submissions']} accepted",
            f"  completions     {report['completions']} (succeeded {report['succeeded']}, failed "
            f"{report['failed']}), {throughput['jobs_per_s']:.2f} jobs/s over {report['window_s']:.1f} s",
            f"  latency ms      {'p50':>9} {'p95':>9} {'max':>9}   (count)",
            _row("submit", latency["submit"]),
            _row("poll", latency["poll"]),
            _row("submit→result", latency["submit_to_result"]),
            f"  5xx             {errors['5xx']}",
            f"  other errors    {errors['other']}" + (f" ({other_kinds})" if other_kinds else ""),
            f"  lost jobs       {report['lost_jobs']} of {report['jobs_in_database']} jobs in the database",
            f"  verdict         {verdict}",
        ]
    )


# --- The real stack -----------------------------------------------------------------------------


def render_images(count: int) -> list[tuple[str, bytes]]:
    """`count` synthetic pages (PNG), rendered once and sent again and again."""
    from tests.e2e.client import synthetic_images

    return synthetic_images(count, first_seed=7000)


# Confirmed addresses, as after the emailed link: tokens of unconfirmed accounts are refused.
_TOKENS_SCRIPT = """
from allauth.account.models import EmailAddress
from accounts.models import User
from accounts.tokens import api_token_create
for number in range({count}):
    email = f"load-{{number}}@example.com"
    user = User.objects.create_user(email=email, password=None)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    print("token", api_token_create(user=user, name="load test")[1])
"""


def create_tokens(stack: Any, count: int) -> list[str]:
    """One new account and API token per client, in one `manage.py shell` run."""
    output = stack.manage("shell", "-c", _TOKENS_SCRIPT.format(count=count), timeout=300)
    tokens = [line.split()[1] for line in output.splitlines() if line.startswith("token ")]
    if len(tokens) != count:
        raise RuntimeError(f"expected {count} tokens, got {len(tokens)}:\n{output}")
    return tokens


async def warm_up(
    base_url: str, tokens: Sequence[str], images: Sequence[tuple[str, bytes]], workers: int
) -> None:
    """One job per worker at once (prefetch 1: each worker takes one), each awaited to success."""
    config = LoadConfig(clients=workers, workers=workers, result_timeout_s=WARM_UP_TIMEOUT_S)
    run = await run_clients(base_url, tokens[:workers], images, config, once=True)
    if len(run.jobs) != workers or any(job.status != "succeeded" for job in run.jobs):
        raise RuntimeError(f"warm-up failed: requests {run.requests}, jobs {run.jobs}")


def job_rows(database: Any) -> list[tuple[int, str, int, int, str]]:
    """(id, status, attempts, predictions, error) of every job in the load's database."""
    return [
        (int(job_id), str(status), int(attempts), int(predictions), str(error))
        for job_id, status, attempts, predictions, error in database.query(
            "SELECT j.id, j.status, j.attempts, COUNT(p.id), j.error FROM classifier_job j "
            "LEFT JOIN classifier_prediction p ON p.job_id = j.id GROUP BY j.id ORDER BY j.id"
        )
    ]


def drain(database: Any, timeout_s: float) -> float:
    """Wait until no job is queued or running (at most `timeout_s`); seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        [(unfinished,)] = database.query(
            "SELECT COUNT(*) FROM classifier_job WHERE status IN ('queued', 'running')"
        )
        if unfinished == 0:
            break
        time.sleep(1.0)
    return time.monotonic() - start


def lost_jobs(
    rows: Sequence[tuple[int, str, int, int, str]], accepted: Sequence[int]
) -> list[dict[str, Any]]:
    """Jobs that did not end succeeded with exactly one prediction, and accepted jobs not stored."""
    lost = [
        {"job": job_id, "status": status, "attempts": attempts, "predictions": predictions, "error": error}
        for job_id, status, attempts, predictions, error in rows
        if (status, predictions) != ("succeeded", 1)
    ]
    stored = {row[0] for row in rows}
    lost += [
        {"job": job_id, "status": "missing from the database"} for job_id in sorted(set(accepted) - stored)
    ]
    return lost


def run_on_real_stack(
    config: LoadConfig, *, database_url: str = DATABASE_URL, redis_url: str = REDIS_URL
) -> dict[str, Any]:
    """Start the stack on emptied services, warm it up, load it, drain it, check it: the report."""
    import redis

    from bench.service import machine
    from tests.e2e.livestack import LiveStack
    from tests.realstack.mariadb import MariaDB

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per request
    cache_url = redis_url_with_db(redis_url, redis_url_db(redis_url) + 1)
    database = MariaDB.from_url(database_url)
    database.recreate()
    for url in (redis_url, cache_url):
        client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            client.flushdb()
        finally:
            client.close()
    print(f"rendering {config.images} synthetic pages…", flush=True)
    images = render_images(config.images)
    stack = LiveStack(
        label="ecgsite-load",
        extra_env={
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ECGSITE_CACHE_URL": cache_url,
            "SECRET_KEY": os.urandom(32).hex(),
        },
    )
    try:
        print(f"starting daphne and {config.workers} Celery workers…", flush=True)
        stack.start()
        for _ in range(config.workers):
            stack.start_worker()
        tokens = create_tokens(stack, config.clients)
        print("warming up: one job per worker…", flush=True)
        try:
            asyncio.run(warm_up(stack.base_url, tokens, images, config.workers))
        except RuntimeError as error:
            # The stack's var dir goes with it: say why the warm-up failed while it is here.
            raise RuntimeError(f"{error}\n--- stack logs ---\n{stack.logs(limit=20_000)}") from None
        print(f"{config.clients} clients for {config.duration_s:g} s…", flush=True)
        run = asyncio.run(run_clients(stack.base_url, tokens, images, config))
        print("draining…", flush=True)
        drained_s = drain(database, config.drain_s)
        stack.assert_running()
        logs = stack.logs(limit=20_000)
    finally:
        stack.stop()
    rows = job_rows(database)
    report = summarize(
        run, lost=lost_jobs(rows, [job.job_id for job in run.jobs]), jobs_in_database=len(rows)
    )
    report["drain_s"] = round(drained_s, 1)
    if not report["held"]:
        report["logs"] = logs  # the stack's var dir is gone: keep what says why
    report["stack"] = {
        "web": "daphne, one process",
        "workers": f"{config.workers} Celery worker processes (solo pool)",
        "database": "MariaDB",
        "broker": "Redis",
        "address": "127.0.0.1",
    }
    report["machine"] = machine()
    report["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent API clients")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds of submitting")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="Celery worker processes")
    parser.add_argument("--poll-interval", type=float, default=defaults.poll_interval_s, help="seconds")
    parser.add_argument("--drain", type=float, default=defaults.drain_s, help="most seconds to drain")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON report goes")
    args = parser.parse_args(argv)
    config = LoadConfig(
        clients=args.clients,
        duration_s=args.duration,
        workers=args.workers,
        poll_interval_s=args.poll_interval,
        drain_s=args.drain,
    )
    report = run_on_real_stack(config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print("\n" + format_summary(report))
    print(f"\nfigures written to {args.out}")
    return 0 if report["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
