"""Every read of batches, jobs and images. Each takes the user: ownership is checked here only.
Model versions, which belong to no user, are read here too."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    BooleanField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import User
from classifier.ecg_signal import PageMeasurements, PageSignal
from classifier.models import Batch, Job, ModelVersion, Prediction, WorkerProcess


def user_group_name(user_id: int) -> str:
    """The channel-layer group carrying one user's events, and nobody else's."""
    return f"user-{user_id}"


def _jobs_with_predictions() -> QuerySet[Job]:
    # The signal (tens of kB per page) is read only where it is served (job_signal_for_user);
    # pages, events and the API need only to know whether there is one. The measurements read
    # from it (under a kB) are loaded: the pages and events show them.
    latest_first = (
        Prediction.objects.select_related("model_version")
        .defer("signal")
        .annotate(has_signal=ExpressionWrapper(Q(signal__isnull=False), output_field=BooleanField()))
        .order_by("-created")
    )
    return Job.objects.select_related("model_version").prefetch_related(
        Prefetch("predictions", queryset=latest_first)
    )


def batch_list_for_user(*, user: User) -> QuerySet[Batch]:
    """The user's batches, newest first, with job counts per status."""
    return (
        Batch.objects.filter(owner=user)
        .annotate(
            job_count=Count("jobs"),
            queued_count=Count("jobs", filter=Q(jobs__status=Job.Status.QUEUED)),
            running_count=Count("jobs", filter=Q(jobs__status=Job.Status.RUNNING)),
            succeeded_count=Count("jobs", filter=Q(jobs__status=Job.Status.SUCCEEDED)),
            failed_count=Count("jobs", filter=Q(jobs__status=Job.Status.FAILED)),
        )
        # Explicit: Django drops Meta.ordering from any query with GROUP BY.
        .order_by("-created", "-id")
    )


def batch_get_for_user(*, user: User, batch_id: int) -> Batch:
    """One of the user's batches with its jobs and predictions; 404 for anyone else's."""
    batch = (
        Batch.objects.filter(owner=user, pk=batch_id)
        .prefetch_related(Prefetch("jobs", queryset=_jobs_with_predictions()))
        .first()
    )
    if batch is None:
        raise Http404("No such batch.")
    return batch


def job_get_for_user(*, user: User, job_id: int) -> Job:
    """One of the user's jobs; 404 for anyone else's."""
    job = _jobs_with_predictions().select_related("batch").filter(batch__owner=user, pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    return job


@dataclass(frozen=True)
class JobSignal:
    """One of a user's jobs, its page's leads (None: the job has none, or none yet) and what was
    measured on them (None: not stored, or no signal)."""

    job: Job
    signal: PageSignal | None
    measurements: PageMeasurements | None = None


def job_signal_for_user(*, user: User, job_id: int) -> JobSignal:
    """One of the user's jobs with the signal, and its measurements, that its newest prediction
    with a signal carries; 404 for anyone else's job."""
    job = job_get_for_user(user=user, job_id=job_id)
    # Any model's prediction of the page carries the same digitised leads; the newest wins. The
    # measurements come from the same prediction, so they were read from the leads served.
    found = (
        Prediction.objects.filter(job=job, signal__isnull=False)
        .order_by("-created", "-id")
        .values_list("signal", "measurements")
        .first()
    )
    signal, measurements = found if found is not None else (None, None)
    return JobSignal(job=job, signal=signal, measurements=measurements)


def signals_for_jobs(*, job_ids: Sequence[int]) -> dict[int, PageSignal]:
    """Each job's signal from its newest prediction that has one, in one read, for jobs the
    caller has already found among the user's (``batch_get_for_user``)."""
    rows = (
        Prediction.objects.filter(job_id__in=job_ids, signal__isnull=False)
        .order_by("job_id", "-created", "-id")
        .values_list("job_id", "signal")
    )
    signals: dict[int, PageSignal] = {}
    for job_id, signal in rows:
        signals.setdefault(job_id, signal)
    return signals


def jobs_get_with_predictions(*, job_ids: Sequence[int]) -> list[Job]:
    """Jobs with what events need, in one read and in id order, for system code that already
    owns them (the worker)."""
    return list(_jobs_with_predictions().select_related("batch").filter(pk__in=job_ids).order_by("pk"))


def batches_in_progress_for_user(*, user: User, limit: int = 20) -> list[Batch]:
    """The user's unfinished batches, with jobs, for a websocket client's first snapshot."""
    return list(
        Batch.objects.filter(owner=user, completed__isnull=True)
        .prefetch_related(Prefetch("jobs", queryset=_jobs_with_predictions()))
        .order_by("-created")[:limit]
    )


def batch_search_for_user(
    *,
    user: User,
    status: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Batch]:
    """The user's batches, newest first, filtered by status ("processing" or "completed") and
    creation time, with their jobs and predictions prefetched (a fixed number of queries)."""
    batches = Batch.objects.filter(owner=user).order_by("-created", "-id")
    if status == "completed":
        batches = batches.filter(completed__isnull=False)
    elif status == "processing":
        batches = batches.filter(completed__isnull=True)
    if created_after is not None:
        batches = batches.filter(created__gte=created_after)
    if created_before is not None:
        batches = batches.filter(created__lt=created_before)
    return batches.prefetch_related(Prefetch("jobs", queryset=_jobs_with_predictions()))


def model_version_get(*, name: str) -> ModelVersion:
    """A registered model version by name; 404 when there is none (a model page is no secret,
    but an unknown name has no page)."""
    return get_object_or_404(ModelVersion, name=name)


def workers_live() -> list[WorkerProcess]:
    """Worker processes heard from within ECGSITE_WORKER_GONE_S (``worker.heartbeat``)."""
    since = timezone.now() - timedelta(seconds=settings.ECGSITE_WORKER_GONE_S)
    return list(WorkerProcess.objects.filter(seen__gte=since).order_by("hostname", "pid"))


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts of values at or under each bound, with their count and sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # one per bound
    count: int
    total: float


def job_counts_by_status() -> dict[str, int]:
    """How many jobs are in each status now (every status, zero included)."""
    counts = dict(Job.objects.values_list("status").annotate(n=Count("pk")).order_by())
    return {status: counts.get(status, 0) for status in Job.Status.values}


def _histogram(queryset: QuerySet, value: Any, bounds: Sequence[float], to_bound: Any) -> Histogram:
    """One aggregate query: the count at or under each bound, all, and the sum of `value`."""
    annotated = queryset.annotate(metric_value=value)
    buckets = {
        f"le_{index}": Count("pk", filter=Q(metric_value__lte=to_bound(bound)))
        for index, bound in enumerate(bounds)
    }
    row = annotated.aggregate(**buckets, count=Count("pk"), total=Sum("metric_value"))
    total = row["total"]
    if isinstance(total, timedelta):
        total = total.total_seconds()
    return Histogram(
        bounds=tuple(bounds),
        cumulative=tuple(row[f"le_{index}"] for index in range(len(bounds))),
        count=row["count"],
        total=float(total or 0.0),
    )


def job_seconds_histogram(bounds: Sequence[float]) -> Histogram:
    """Seconds from upload to result of every succeeded job."""
    duration = ExpressionWrapper(F("finished") - F("created"), output_field=DurationField())
    finished = Job.objects.filter(status=Job.Status.SUCCEEDED, finished__isnull=False)
    return _histogram(finished, duration, bounds, lambda bound: timedelta(seconds=bound))


def inference_seconds_histogram(bounds: Sequence[float]) -> Histogram:
    """The model's seconds per image of every prediction (its share of a forward pass)."""
    histogram = _histogram(Prediction.objects.all(), F("inference_ms"), bounds, lambda bound: bound * 1000.0)
    return dataclasses.replace(histogram, total=histogram.total / 1000.0)
