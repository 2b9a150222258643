"""`GET /metrics`: Prometheus text, for `Authorization: Bearer $ECGSITE_METRICS_TOKEN` only.

Every figure is read at scrape time from what all processes share (the database and the
broker), so any web process answers for the whole site and nothing is lost when a worker
restarts (no per-process counters to merge):

- ecgsite_queue_depth{queue}: messages waiting in the broker's list for the queue (each
  message takes up to ECGSITE_CLASSIFY_BATCH_SIZE jobs); with the in-process queue, the jobs
  waiting in the database;
- ecgsite_jobs_total{status}: jobs now in each status (a gauge: queued and running go down as
  jobs finish; succeeded and failed only grow, until a user deletes a batch);
- ecgsite_job_seconds: upload to result of succeeded jobs (histogram);
- ecgsite_inference_seconds: the model's time per image (histogram);
- ecgsite_workers{queue,state}: worker processes heard from lately, by queue and state.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from classifier import selectors
from classifier.models import Job, WorkerProcess

JOB_SECONDS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
INFERENCE_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# kombu's Redis transport keeps a queue's messages of priority n in a list named
# "<queue>\x06\x16<n>" beside the plain one; ours are sent without priority, but count them all.
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def broker_queue_lengths() -> dict[str, int]:
    """Messages waiting per queue (classify, maintenance) in the broker, or in the database's
    queued jobs for the in-process queue (which has no broker to ask)."""
    queues = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.MAINTENANCE_QUEUE)
    if not settings.REDIS_URL:
        return {settings.CELERY_TASK_DEFAULT_QUEUE: Job.objects.filter(status=Job.Status.QUEUED).count()}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        lengths = {}
        for queue in queues:
            names = [queue] + [f"{queue}\x06\x16{step}" for step in KOMBU_PRIORITY_STEPS if step]
            lengths[queue] = sum(client.llen(name) for name in names)
        return lengths
    finally:
        client.close()


def _histogram(name: str, documentation: str, histogram: selectors.Histogram) -> HistogramMetricFamily:
    buckets = [
        (repr(bound), count) for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True)
    ]
    buckets.append(("+Inf", histogram.count))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)


class SiteCollector(Collector):
    """Reads the figures of the module docstring at each scrape."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "ecgsite_queue_depth", "Messages waiting in the broker, per queue.", labels=["queue"]
        )
        for queue, length in broker_queue_lengths().items():
            depth.add_metric([queue], length)
        yield depth

        jobs = GaugeMetricFamily("ecgsite_jobs_total", "Jobs now in each status.", labels=["status"])
        for status, count in selectors.job_counts_by_status().items():
            jobs.add_metric([status], count)
        yield jobs

        yield _histogram(
            "ecgsite_job_seconds",
            "Seconds from upload to result of succeeded jobs.",
            selectors.job_seconds_histogram(JOB_SECONDS_BUCKETS),
        )
        yield _histogram(
            "ecgsite_inference_seconds",
            "The model's seconds per image.",
            selectors.inference_seconds_histogram(INFERENCE_SECONDS_BUCKETS),
        )

        workers = GaugeMetricFamily(
            "ecgsite_workers",
            "Worker processes heard from lately, by queue and state.",
            labels=["queue", "state"],
        )
        counts: dict[tuple[str, str], int] = {}
        for worker in selectors.workers_live():
            for queue in filter(None, worker.queues.split(",")):
                counts[(queue, worker.state)] = counts.get((queue, worker.state), 0) + 1
        for queue in (settings.CELERY_TASK_DEFAULT_QUEUE, settings.MAINTENANCE_QUEUE):
            for state in WorkerProcess.State.values:
                counts.setdefault((queue, state), 0)
        for (queue, state), count in sorted(counts.items()):
            workers.add_metric([queue, state], count)
        yield workers


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector())
    return generate_latest(registry)


def metrics(request: HttpRequest) -> HttpResponse:
    """401 without a bearer token, 403 with a wrong one (or when no token is configured)."""
    expected = settings.ECGSITE_METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        response = JsonResponse({"error": "the metrics need 'Authorization: Bearer <token>'"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not expected:
        return JsonResponse({"error": "the metrics are off: ECGSITE_METRICS_TOKEN is not set"}, status=403)
    if not hmac.compare_digest(offered.strip().encode(), expected.encode()):
        return JsonResponse({"error": "that token does not open the metrics"}, status=403)
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
