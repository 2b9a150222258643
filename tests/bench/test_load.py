"""bench.load without a stack: the client loop against a fake API (httpx.MockTransport), the
figures, and the lost-job check. The full-size run is tests/realstack/test_load.py."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from bench.load import (
    LoadConfig,
    LoadRun,
    RequestRecord,
    SubmittedJob,
    format_summary,
    latency_ms,
    lost_jobs,
    percentile,
    run_clients,
    summarize,
)

IMAGES = [("normal-1.png", b"\x89PNG\r\n\x1a\n-one"), ("mi-2.png", b"\x89PNG\r\n\x1a\n-two")]
JOB_PATH = re.compile(r"/api/v1/jobs/(\d+)/")


class FakeApi:
    """POST /api/v1/batches/ makes a job; GET /api/v1/jobs/{id}/ says running, then succeeded.

    `answer(kind, number)` may override the n-th submit or poll (from 1) with a response or an
    exception to raise; None keeps the normal answer.
    """

    def __init__(
        self,
        polls_until_done: int = 2,
        answer: Callable[[str, int], httpx.Response | Exception | None] = lambda kind, number: None,
    ) -> None:
        self.polls_until_done = polls_until_done
        self.answer = answer
        self.calls: Counter[str] = Counter()
        self.polls_of: Counter[int] = Counter()
        self.tokens: set[str] = set()
        self.uploads: list[bytes] = []
        self.next_job = 100

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind = "submit" if request.method == "POST" else "poll"
        self.calls[kind] += 1
        self.tokens.add(request.headers["authorization"])
        override = self.answer(kind, self.calls[kind])
        if isinstance(override, Exception):
            raise override
        if override is not None:
            return override
        if kind == "submit":
            assert request.url.path == "/api/v1/batches/"
            self.uploads.append(request.content)
            self.next_job += 1
            return httpx.Response(201, json={"id": self.next_job, "jobs": [{"id": self.next_job}]})
        job_id = int(JOB_PATH.fullmatch(request.url.path).group(1))  # type: ignore[union-attr]
        self.polls_of[job_id] += 1
        status = "succeeded" if self.polls_of[job_id] >= self.polls_until_done else "running"
        return httpx.Response(200, json={"id": job_id, "status": status})


def fast_config(**overrides: object) -> LoadConfig:
    settings = {
        "clients": 3,
        "duration_s": 0.15,
        "poll_interval_s": 0.01,
        "retry_pause_s": 0.01,
        "result_timeout_s": 5.0,
    }
    return LoadConfig(**{**settings, **overrides})  # type: ignore[arg-type]


def run(api: FakeApi, config: LoadConfig) -> LoadRun:
    tokens = [f"ecg_token{number}" for number in range(config.clients)]
    return asyncio.run(
        run_clients("http://load.test", tokens, IMAGES, config, transport=httpx.MockTransport(api))
    )


def test_each_client_submits_with_its_own_token_and_polls_until_its_job_finished():
    api = FakeApi(polls_until_done=2)

    result = run(api, fast_config())

    assert api.tokens == {f"Token ecg_token{n}" for n in range(3)}
    assert len(result.jobs) == api.calls["submit"] >= 3
    assert all(job.status == "succeeded" and job.result_at_s is not None for job in result.jobs)
    assert all(api.polls_of[job.job_id] == 2 for job in result.jobs)
    assert all(b'filename="' in upload and b"\x89PNG" in upload for upload in api.uploads)
    assert [record.error for record in result.requests] == [""] * len(result.requests)


def test_the_figures_count_requests_submissions_completions_and_throughput():
    result = run(FakeApi(polls_until_done=1), fast_config())

    report = summarize(result, lost=[], jobs_in_database=len(result.jobs))

    jobs = len(result.jobs)
    assert report["requests"] == {"total": 2 * jobs, "submit": jobs, "poll": jobs}
    assert report["submissions"] == report["completions"] == report["succeeded"] == jobs
    assert report["throughput"]["jobs_per_s"] == round(jobs / result.window_s, 2)
    assert report["latency_ms"]["submit_to_result"]["count"] == jobs
    assert report["errors"] == {"5xx": 0, "5xx_by_request": {}, "other": 0, "other_by_kind": {}}
    assert report["held"] is True


def test_a_5xx_is_counted_and_the_client_keeps_polling_until_the_result():
    def first_poll_fails(kind: str, number: int) -> httpx.Response | None:
        return httpx.Response(500, text="oops") if (kind, number) == ("poll", 1) else None

    result = run(FakeApi(polls_until_done=1, answer=first_poll_fails), fast_config(clients=1))
    report = summarize(result, lost=[], jobs_in_database=len(result.jobs))

    assert report["errors"]["5xx"] == 1
    assert report["errors"]["5xx_by_request"] == {"poll 500": 1}
    assert report["errors"]["other"] == 0
    assert report["completions"] == report["submissions"]
    assert report["held"] is False


def test_a_refused_submit_and_a_dropped_connection_are_other_errors_and_the_client_carries_on():
    def trouble(kind: str, number: int) -> httpx.Response | Exception | None:
        if (kind, number) == ("submit", 1):
            return httpx.Response(429, json={"title": "Too many requests"})
        if (kind, number) == ("poll", 1):
            return httpx.ConnectError("connection refused")
        return None

    result = run(FakeApi(polls_until_done=1, answer=trouble), fast_config(clients=1))
    report = summarize(result, lost=[], jobs_in_database=len(result.jobs))

    assert report["errors"]["other_by_kind"] == {"ConnectError": 1, "HTTP 429": 1}
    assert report["errors"]["5xx"] == 0
    assert report["submissions"] >= 1 and report["completions"] == report["submissions"]
    # A failed request has no latency to report when nothing answered it.
    assert report["latency_ms"]["poll"]["count"] == report["requests"]["poll"] - 1


def test_a_result_that_never_comes_is_an_error_and_the_client_moves_on():
    result = run(
        FakeApi(polls_until_done=10**9), fast_config(clients=1, duration_s=0.2, result_timeout_s=0.3)
    )
    report = summarize(result, lost=[], jobs_in_database=len(result.jobs))

    assert [job.error for job in result.jobs] == ["result never seen"]
    assert report["errors"]["other_by_kind"] == {"result never seen": 1}
    assert report["completions"] == 0


def test_the_nearest_rank_percentile():
    values = [float(n) for n in range(100, 0, -1)]

    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([0.25], 95) == 0.25


def test_latency_figures_are_milliseconds_and_empty_lists_have_none():
    assert latency_ms([0.1, 0.2, 0.3]) == {"count": 3, "p50": 200.0, "p95": 300.0, "max": 300.0}
    assert latency_ms([]) == {"count": 0, "p50": None, "p95": None, "max": None}


def test_a_lost_job_is_unfinished_failed_duplicated_or_missing():
    rows = [
        (1, "succeeded", 1, 1, ""),
        (2, "queued", 0, 0, ""),
        (3, "failed", 3, 0, "We could not classify this image after 3 attempts."),
        (4, "succeeded", 2, 2, ""),
    ]

    lost = lost_jobs(rows, accepted=[1, 2, 3, 4, 5])

    assert [(job["job"], job["status"]) for job in lost] == [
        (2, "queued"),
        (3, "failed"),
        (4, "succeeded"),
        (5, "missing from the database"),
    ]
    assert lost_jobs([(1, "succeeded", 1, 1, "")], accepted=[1]) == []


def test_the_summary_shows_every_figure_and_the_verdict():
    result = LoadRun(
        config=LoadConfig(clients=2, duration_s=60),
        window_s=10.0,
        requests=[
            RequestRecord("submit", 0.0, 0.5, 201),
            RequestRecord("poll", 1.5, 0.1, 200),
            RequestRecord("poll", 2.5, 0.2, 502, "HTTP 502"),
        ],
        jobs=[SubmittedJob(job_id=7, client=0, submitted_at_s=0.0, result_at_s=1.6, status="succeeded")],
    )

    text = format_summary(summarize(result, lost=[{"job": 8, "status": "queued"}], jobs_in_database=2))

    assert "Load test: 2 clients for 60 s, 2 Celery workers, poll every 1 s" in text
    assert "requests        3 (submit 1, poll 2), 0.30 requests/s" in text
    assert "completions     1 (succeeded 1, failed 0), 0.10 jobs/s over 10.0 s" in text
    assert "submit→result      1600.0    1600.0    1600.0   (1)" in text
    assert "5xx             1" in text
    assert "lost jobs       1 of 2 jobs in the database" in text
    assert text.endswith("verdict         NOT HELD")


def test_a_config_refuses_nonsense_naming_the_argument():
    with pytest.raises(ValueError, match=re.escape("'clients' must be at least 1. Received: 0")):
        LoadConfig(clients=0)
