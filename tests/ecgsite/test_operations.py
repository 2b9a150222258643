"""GET /health/, /health/live/ and /metrics: what they say, when they say down, who may read them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from classifier.models import Job, ModelVersion, Prediction, WorkerProcess
from ecgsite import health
from tests.classifier.factories import BatchFactory, JobFactory

pytestmark = pytest.mark.django_db
TOKEN = "s3cret-metrics-token"


def _worker(
    name: str, *, queues: str = "classify", state: str = "ready", seen_ago_s: float = 1.0
) -> WorkerProcess:
    seen = timezone.now() - timedelta(seconds=seen_ago_s)
    return WorkerProcess.objects.create(
        name=name,
        hostname=name.split("/")[0],
        pid=int(name.split("/")[1]),
        queues=queues,
        model="hybrid-v5" if "classify" in queues else "",
        state=state,
        started=seen,
        seen=seen,
    )


@pytest.fixture
def metrics_token(settings) -> str:
    settings.ECGSITE_METRICS_TOKEN = TOKEN
    return TOKEN


def test_health_is_ok_with_a_ready_worker_and_lists_it():
    _worker("gpu-node-1/41")
    response = Client().get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    for part in ("database", "broker", "cache"):
        assert body[part]["status"] == "ok"
    assert body["workers"]["live"] == [
        {
            "hostname": "gpu-node-1",
            "pid": 41,
            "queues": ["classify"],
            "model": "hybrid-v5",
            "ready": True,
            "state": "ready",
            "seen": body["workers"]["live"][0]["seen"],
        }
    ]


@pytest.mark.parametrize(
    "workers",
    [
        [],  # none at all
        [("a/1", "classify", "loading", 1.0)],  # still loading its model
        [("a/1", "classify", "ready", 600.0)],  # gone: not heard from for 10 minutes
        [("a/1", "maintenance", "ready", 1.0)],  # only a maintenance worker
    ],
)
def test_health_is_503_naming_workers_when_no_classify_worker_is_ready(workers):
    for name, queues, state, ago in workers:
        _worker(name, queues=queues, state=state, seen_ago_s=ago)
    response = Client().get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["workers"]
    assert "classify" in body["workers"]["error"]


def test_a_check_limited_to_the_infrastructure_ignores_workers():
    response = Client().get("/health/?check=database,broker,cache")
    assert response.status_code == 200
    assert set(response.json()) == {"status", "down", "database", "broker", "cache"}


def test_an_unknown_check_is_a_400_listing_the_checks():
    response = Client().get("/health/?check=database,disk")
    assert response.status_code == 400
    assert "disk" in response.json()["error"]
    assert "workers" in response.json()["error"]


def test_health_is_503_naming_the_broker_when_redis_is_unreachable(settings):
    _worker("a/1")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    response = Client().get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert "Redis" in body["broker"]["error"]


def test_health_is_503_naming_the_database_when_it_fails(monkeypatch):
    from django.db import OperationalError
    from health_check.exceptions import ServiceUnavailable

    def no_database(self):  # what the library's check raises on a database error
        raise ServiceUnavailable("Can't connect to MySQL server")

    monkeypatch.setattr(health.Database, "run", no_database)
    monkeypatch.setattr(
        "classifier.selectors.workers_live", lambda: (_ for _ in ()).throw(OperationalError("gone"))
    )
    response = Client().get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["database", "workers"]
    assert "MySQL" in body["database"]["error"]


def test_the_endpoints_answer_any_host_over_plain_http(settings, metrics_token):
    """Kubernetes probes and Prometheus reach a pod by its address, without TLS."""
    settings.ALLOWED_HOSTS = ["ecg.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    _worker("a/1")
    client = Client(HTTP_HOST="10.1.2.3:8000")
    assert client.get("/health/live/").status_code == 200
    assert client.get("/health/").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}").status_code == 200
    assert client.get("/").status_code == 400  # the rest of the site still checks the host


def test_liveness_touches_no_dependency(monkeypatch):
    monkeypatch.setattr(health, "health_report", lambda *a: pytest.fail("liveness ran the checks"))
    response = Client().get("/health/live/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_endpoints_take_only_get():
    assert Client().post("/health/").status_code == 405


def test_metrics_without_a_token_are_401_with_a_challenge(metrics_token):
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_with_a_wrong_token_are_refused(metrics_token, header):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code in (401, 403)
    assert b"ecgsite_" not in response.content


def test_metrics_are_closed_to_everyone_when_no_token_is_configured(settings):
    settings.ECGSITE_METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403


def _metrics(token: str) -> dict[str, dict]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def test_metrics_count_the_jobs_times_and_workers(metrics_token, owner):
    batch = BatchFactory(owner=owner)
    now = timezone.now()
    queued = [JobFactory(batch=batch) for _ in range(2)]
    done = [JobFactory(batch=batch) for _ in range(3)]
    version = ModelVersion.objects.create(name="m", architecture="hybrid", file_sha256="0" * 64)
    for job, seconds, inference_ms in zip(done, (0.5, 8.0, 90.0), (4.0, 30.0, 700.0), strict=True):
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.SUCCEEDED, created=now - timedelta(seconds=seconds), finished=now
        )
        Prediction.objects.create(
            job=job,
            model_version=version,
            label="normal",
            probabilities={"normal": 0.7, "mi": 0.1, "history_mi": 0.1, "abnormal": 0.1},
            inference_ms=inference_ms,
        )
    Job.objects.filter(pk=queued[1].pk).update(status=Job.Status.FAILED)
    _worker("a/1")
    _worker("b/2", queues="maintenance")
    _worker("c/3", seen_ago_s=600)  # gone

    samples = _metrics(metrics_token)
    assert samples["ecgsite_jobs_total"] == {
        "status=queued": 1,
        "status=running": 0,
        "status=succeeded": 3,
        "status=failed": 1,
    }
    # The in-process queue (no broker): its depth is the queued jobs.
    assert samples["ecgsite_queue_depth"] == {"queue=classify": 1}
    job_seconds = samples["ecgsite_job_seconds_bucket"]
    assert job_seconds["le=1.0"] == 1
    assert job_seconds["le=10.0"] == 2
    assert job_seconds["le=60.0"] == 2
    assert job_seconds["le=120.0"] == 3
    assert job_seconds["le=+Inf"] == 3
    assert samples["ecgsite_job_seconds_count"][""] == 3
    assert samples["ecgsite_job_seconds_sum"][""] == pytest.approx(98.5, abs=0.5)
    inference = samples["ecgsite_inference_seconds_bucket"]
    assert inference["le=0.005"] == 1
    assert inference["le=0.05"] == 2
    assert inference["le=1.0"] == 3
    assert samples["ecgsite_inference_seconds_sum"][""] == pytest.approx(0.734)
    workers = samples["ecgsite_workers"]
    assert workers["queue=classify,state=ready"] == 1
    assert workers["queue=maintenance,state=ready"] == 1
    assert workers["queue=classify,state=loading"] == 0


def test_the_queue_depth_counts_the_brokers_lists(metrics_token, settings):
    import redis

    settings.REDIS_URL = "redis://127.0.0.1:6379/13"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("these tests need the Redis server at 127.0.0.1:6379 (.ci/run starts it)")
    client.delete("classify", "classify\x06\x163", "maintenance")
    try:
        client.rpush("classify", "m1", "m2")
        client.rpush("classify\x06\x163", "m3")
        client.rpush("maintenance", "w1")
        samples = _metrics(metrics_token)
        assert samples["ecgsite_queue_depth"] == {"queue=classify": 3, "queue=maintenance": 1}
    finally:
        client.delete("classify", "classify\x06\x163", "maintenance")
        client.close()
