"""API views: validate, call one service or selector, answer the presenter's JSON.

Ownership is the selectors' job (another user's id is a 404); errors are problem details
(classifier.api.problems).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, get_args

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import fhir, reports, selectors, services, webhooks
from classifier.api import problems
from classifier.api.schema import BatchSchema, JobSchema, SignalSchema
from classifier.api.throttling import TokenRateThrottle, UploadRateThrottle
from classifier.audit import Action, Outcome, audit_record, audited_lookup
from classifier.ecg_signal import PageSignal
from classifier.images import IMAGE_SIGNATURES, clean_file_name, megabytes
from classifier.models import Batch, Job
from classifier.presenters import BatchStatus, batch_output, job_output, signal_csv, signal_output
from classifier.selectors import JobSignal
from classifier.views import owned_explanation_response, owned_image_response, owned_signal
from classifier.web_context import audit_context

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(problems.ProblemSerializer, description=description)


AUTH_ERRORS = {401: _problem("No or bad credentials."), 429: _problem("Rate limited.")}
NOT_FOUND = {404: _problem("No such object among yours.")}
UPLOAD_ERRORS = {
    400: _problem("Invalid request, invalid or damaged image, or refused callback URL."),
    413: _problem("An image is larger than the limit."),
    415: _problem("A file is not a JPEG or PNG image, or the body is not multipart."),
}
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Retry-safe key (at most 255 characters): the same key with the same payload returns "
    "the same batch; with a different payload it is a 422.",
)
SIGNAL_ERRORS = {
    404: _problem(
        "No such job among yours (not-found), or the job finished without a signal (signal-not-available): "
        "it failed, or the digitiser could not read its page."
    ),
    409: _problem("The job has not finished yet (signal-not-ready): ask again once it has."),
}
IDEMPOTENCY_ERRORS = {422: _problem("The Idempotency-Key was already used for a different request.")}


class ApiView(APIView):
    # JSON only (problem JSON for errors), token or session auth, per-token rates.

    renderer_classes = (JSONRenderer, problems.ProblemJSONRenderer)
    throttle_classes = (TokenRateThrottle, UploadRateThrottle)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise problems.FieldProblem(
            "The Idempotency-Key header must hold 1 to 255 printable characters.", field=IDEMPOTENCY_HEADER
        )
    return key


def _check_files(files: Sequence[UploadedFile], field: str) -> None:
    """413 for an oversized file and 415 for one that is not JPEG or PNG, before decoding any."""
    limit = settings.ECGSITE_MAX_UPLOAD_BYTES
    for upload in files:
        name = clean_file_name(upload.name or "")
        if upload.size is not None and upload.size > limit:
            raise problems.ImageTooLarge(f"{name}: is larger than the {megabytes(limit)} limit.", field=field)
        head = upload.read(8)
        upload.seek(0)
        if head and not head.startswith(IMAGE_SIGNATURES):
            raise problems.UnsupportedImageType(f"{name}: is not a JPEG or PNG image.", field=field)


def _check_callback(url: str) -> None:
    if not url:
        return
    try:
        webhooks.callback_url_check(url)
    except webhooks.UnsafeCallbackUrl as exc:
        raise problems.UnsafeCallback(str(exc), field="callback_url") from None


def _create_batch(
    request: Request,
    *,
    files: list[UploadedFile],
    field: str,
    name: str,
    callback_url: str,
    all_or_nothing: bool = False,
) -> tuple[Any, bool]:
    """(batch, created) through the services; image problems become problem details.

    A file too large or of another type refuses the request (413, 415) only where one bad file
    refuses it all: a single file, or `all_or_nothing`. Otherwise it is listed in the batch's
    ``rejected`` like any other file the service refuses, and the good files go ahead."""
    key = _idempotency_key(request)
    if all_or_nothing or len(files) == 1:
        _check_files(files, field)
    _check_callback(callback_url)
    common = {
        "owner": request.user,
        "files": files,
        "name": name,
        "callback_url": callback_url,
        "all_or_nothing": all_or_nothing,
        "context": audit_context(request),
    }
    try:
        if key is None:
            return services.batch_create(**common), True
        return services.batch_create_once(**common, idempotency_key=key)
    except services.UploadRejected as exc:
        raise problems.InvalidImage(str(exc), field=field, errors=exc.errors) from None
    except services.ClassificationUnavailable as exc:
        raise problems.ClassificationUnavailable(str(exc)) from None
    except services.IdempotencyKeyReused as exc:
        raise problems.IdempotencyKeyReused(str(exc), field=IDEMPOTENCY_HEADER) from None


def _created(data: dict[str, Any], location: str, created: bool) -> Response:
    if created:
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})
    headers = {"Location": location, "Idempotent-Replayed": "true"}
    return Response(data, status=status.HTTP_200_OK, headers=headers)


@contextmanager
def _audit_refusal(request: Request) -> Iterator[None]:
    """Record an upload the API refuses (bad image, field or callback), then let it answer."""
    try:
        yield
    except exceptions.APIException as exc:
        audit_record(
            action=Action.BATCH_CREATE,
            context=audit_context(request),
            outcome=Outcome.REFUSED,
            detail={"status": exc.status_code, "detail": str(exc.detail)[:2000]},
        )
        raise


def _audit_replayed(request: Request, batch: Batch, created: bool) -> None:
    """Record an idempotent replay; a created batch was recorded with it (``batch_create``)."""
    if created:
        return
    audit_record(
        action=Action.BATCH_CREATE,
        context=audit_context(request),
        target_type="batch",
        target_id=batch.pk,
        detail={"jobs": [job.pk for job in batch.jobs.all()], "replayed": True},
    )


def _own_batch(request: Request, action: str, batch_id: int) -> Batch:
    """The requester's batch (selectors check ownership); a miss is recorded, then a 404."""
    try:
        return selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
    except Http404:
        audit_record(
            action=action,
            context=audit_context(request),
            target_type="batch",
            target_id=batch_id,
            outcome=Outcome.NOT_FOUND,
        )
        raise


class BatchPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class BatchListCreateApi(ApiView):
    parser_classes = (MultiPartParser, FormParser)
    pagination_class = BatchPagination  # the schema's page envelope is derived from it too

    class BatchFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=get_args(BatchStatus), required=False)
        created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
        created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")

    class BatchCreateInputSerializer(serializers.Serializer):
        images = serializers.ListField(child=serializers.FileField(), allow_empty=False)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        callback_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
        all_or_nothing = serializers.BooleanField(
            required=False,
            default=False,
            help_text="true: one refused file refuses the whole upload and nothing is stored. "
            "false (default): the good files go ahead and each refused one is listed in the "
            "batch's rejected, with its reason.",
        )

    @extend_schema(
        operation_id="batches_list",
        parameters=[BatchFilterSerializer],
        responses={200: BatchSchema(many=True), 400: _problem("Bad filter."), **AUTH_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        """Your batches, newest first, a page at a time, optionally filtered."""
        filters = self.BatchFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        batches = selectors.batch_search_for_user(user=request.user, **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(batches, request, view=self) or []
        audit_record(
            action=Action.BATCH_LIST, context=audit_context(request), detail={"batches": [b.pk for b in page]}
        )
        return paginator.get_paginated_response([batch_output(batch) for batch in page])

    @extend_schema(
        operation_id="batches_create",
        request={"multipart/form-data": BatchCreateInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: BatchSchema,
            200: OpenApiResponse(BatchSchema, description="Replay of an earlier request with the same key."),
            **UPLOAD_ERRORS,
            **IDEMPOTENCY_ERRORS,
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """One batch from one or more images; classification starts at once.

        The good images go ahead and each refused one is listed in `rejected` with its reason;
        with `all_or_nothing=true` one refused image refuses them all and nothing is stored."""
        with _audit_refusal(request):
            serializer = self.BatchCreateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            batch, created = _create_batch(
                request,
                files=data["images"],
                field="images",
                name=data.get("name", ""),
                callback_url=data.get("callback_url", ""),
                all_or_nothing=data["all_or_nothing"],
            )
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch.pk)
        _audit_replayed(request, batch, created)
        return _created(batch_output(batch), reverse("api:batch-detail", args=[batch.pk]), created)


class BatchDetailApi(ApiView):
    @extend_schema(operation_id="batches_retrieve", responses={200: BatchSchema, **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, batch_id: int) -> Response:
        """One of your batches with its jobs."""
        batch = _own_batch(request, Action.BATCH_VIEW, batch_id)
        audit_record(
            action=Action.BATCH_VIEW, context=audit_context(request), target_type="batch", target_id=batch.pk
        )
        return Response(batch_output(batch))

    @extend_schema(
        operation_id="batches_destroy",
        responses={
            204: OpenApiResponse(description="Deleted, with its jobs and images."),
            409: _problem("The batch is still being classified."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def delete(self, request: Request, batch_id: int) -> Response:
        """Delete a finished batch with its jobs, results and stored images."""
        batch = _own_batch(request, Action.BATCH_DELETE, batch_id)
        try:
            services.batch_delete_recorded(batch=batch, context=audit_context(request))
        except services.BatchBusy as exc:
            raise problems.BatchBusy(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobCreateApi(ApiView):
    parser_classes = (MultiPartParser, FormParser)

    class JobCreateInputSerializer(serializers.Serializer):
        image = serializers.FileField()
        callback_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(
        operation_id="jobs_create",
        request={"multipart/form-data": JobCreateInputSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: JobSchema,
            200: OpenApiResponse(JobSchema, description="Replay of an earlier request with the same key."),
            **UPLOAD_ERRORS,
            **IDEMPOTENCY_ERRORS,
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """One image: a batch of one, named after the file; answers the job."""
        with _audit_refusal(request):
            serializer = self.JobCreateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            image = serializer.validated_data["image"]
            batch, created = _create_batch(
                request,
                files=[image],
                field="image",
                name=clean_file_name(image.name or ""),
                callback_url=serializer.validated_data.get("callback_url", ""),
            )
        batch = selectors.batch_get_for_user(user=request.user, batch_id=batch.pk)
        _audit_replayed(request, batch, created)
        job = batch.jobs.all()[0]
        return _created(job_output(job), reverse("api:job-detail", args=[job.pk]), created)


class JobDetailApi(ApiView):
    @extend_schema(operation_id="jobs_retrieve", responses={200: JobSchema, **AUTH_ERRORS, **NOT_FOUND})
    def get(self, request: Request, job_id: int) -> Response:
        """One of your jobs: status, label and probabilities."""
        job = audited_lookup(
            lambda: selectors.job_get_for_user(user=request.user, job_id=job_id),
            action=Action.JOB_VIEW,
            context=audit_context(request),
            target_type="job",
            target_id=job_id,
        )
        return Response(job_output(job))


class FileApi(ApiView):
    """An endpoint that answers a file (an image, CSV, PDF or FHIR JSON) whatever the Accept
    header asks; its errors still come back as problem JSON."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


class JobImageApi(FileApi):
    @extend_schema(
        operation_id="jobs_image",
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The stored image."),
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, job_id: int) -> FileResponse:
        """The stored, re-encoded image (never the uploaded bytes)."""
        return owned_image_response(request, job_id)


class JobExplanationApi(FileApi):
    @extend_schema(
        operation_id="jobs_explanation",
        responses={
            (200, "image/png"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The stored page with the explanation's weight map laid over its traces "
                "in red and the lead and seconds named in the job's explanation.text outlined.",
            ),
            **AUTH_ERRORS,
            404: _problem("No such job among yours, or it has no explanation (yet, or from its model)."),
        },
    )
    def get(self, request: Request, job_id: int) -> HttpResponse:
        """Where the model looked: the page with its explanation drawn over it."""
        return owned_explanation_response(request, job_id)


def _signal_of(request: Request, job_id: int, output: str) -> JobSignal:
    """The requester's job with its signal; problems for another user's job (404), an unfinished
    job (409) and a finished one without a signal (404)."""
    found = owned_signal(request, job_id, output)
    if found.signal is not None:
        return found
    if not found.job.is_finished:
        raise problems.SignalNotReady(
            f"Job {job_id} is {found.job.status}: its signal is ready once it has been classified."
        )
    if found.job.status == Job.Status.FAILED:
        raise problems.SignalNotAvailable(f"Job {job_id} failed: there is no signal.")
    raise problems.SignalNotAvailable(
        f"Job {job_id} has no signal: its page was classified before signals were stored, "
        "or the digitiser could not read it."
    )


class JobSignalApi(ApiView):
    @extend_schema(operation_id="jobs_signal", responses={200: SignalSchema, **AUTH_ERRORS, **SIGNAL_ERRORS})
    def get(self, request: Request, job_id: int) -> Response:
        """The page's twelve leads in mV, as digitised when the job was classified, and what
        software measured on them (not a clinical measurement)."""
        found = _signal_of(request, job_id, "json")
        return Response(signal_output(found.job, found.signal, found.measurements))


class JobSignalCsvApi(FileApi):
    @extend_schema(
        operation_id="jobs_signal_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Header t_s,I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6,II_rhythm, then one row per "
                "sample over the page's 10 s (t_s in seconds, leads in mV). A lead's cells are empty "
                "outside the 2.5 s it was printed.",
            ),
            **AUTH_ERRORS,
            **SIGNAL_ERRORS,
        },
    )
    def get(self, request: Request, job_id: int) -> HttpResponse:
        """The page's leads as CSV, one row per sample."""
        found = _signal_of(request, job_id, "csv")
        response = HttpResponse(signal_csv(found.signal), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-{found.job.pk}-signal.csv"'
        return response


FHIR_JSON = "application/fhir+json"


def _fhir_response(resource: dict[str, Any]) -> HttpResponse:
    return HttpResponse(json.dumps(resource), content_type=f"{FHIR_JSON}; charset=utf-8")


def _own_job_with_signal(request: Request, job_id: int, output: str) -> JobSignal:
    """The requester's job with its signal (404 for anyone else's), its read recorded."""
    return audited_lookup(
        lambda: selectors.job_signal_for_user(user=request.user, job_id=job_id),
        action=Action.JOB_VIEW,
        context=audit_context(request),
        target_type="job",
        target_id=job_id,
        detail={"output": output},
    )


def _own_batch_with_signals(
    request: Request, batch_id: int, output: str
) -> tuple[Batch, list[Job], dict[int, PageSignal]]:
    """The requester's batch, its jobs and their signals (404 for anyone else's), its read recorded."""
    batch = audited_lookup(
        lambda: selectors.batch_get_for_user(user=request.user, batch_id=batch_id),
        action=Action.BATCH_VIEW,
        context=audit_context(request),
        target_type="batch",
        target_id=batch_id,
        detail={"output": output},
    )
    jobs = list(batch.jobs.all())
    return batch, jobs, selectors.signals_for_jobs(job_ids=[job.pk for job in jobs])


class JobFhirApi(FileApi):
    @extend_schema(
        operation_id="jobs_fhir",
        responses={
            (200, FHIR_JSON): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="An HL7 FHIR R4B DiagnosticReport: status final (registered while the "
                "job waits, cancelled if it failed), code LOINC 11524-6 EKG study, the label as "
                "conclusion and SNOMED CT conclusionCode, and as result the contained Observations: "
                "one per class probability and, when the page was digitised, one with every lead as "
                "valueSampledData in mV.",
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, job_id: int) -> HttpResponse:
        """One of your jobs as an HL7 FHIR R4B DiagnosticReport."""
        found = _own_job_with_signal(request, job_id, "fhir")
        return _fhir_response(fhir.job_report(found.job, found.signal))


class BatchFhirApi(FileApi):
    @extend_schema(
        operation_id="batches_fhir",
        responses={
            (200, FHIR_JSON): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="An HL7 FHIR R4B Bundle (type collection) of the batch's jobs, each as "
                "GET /api/v1/jobs/{id}/fhir/ answers it, under its fullUrl.",
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, batch_id: int) -> HttpResponse:
        """One of your batches as an HL7 FHIR R4B Bundle of DiagnosticReports."""
        _, jobs, signals = _own_batch_with_signals(request, batch_id, "fhir")
        base_url = request.build_absolute_uri("/").rstrip("/")
        return _fhir_response(fhir.batch_bundle(jobs, signals, base_url=base_url, when=timezone.now()))


PDF = "application/pdf"


def _pdf_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=PDF)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"  # patient data: kept by no cache
    return response


class JobReportApi(FileApi):
    @extend_schema(
        operation_id="jobs_report",
        responses={
            (200, PDF): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The job's report: the page under its explanation, the leads redrawn and "
                "their measurements, the label and all four probabilities, the model with its "
                "cross-validated figures and limits, the date, and 'Research software, not a "
                "medical device'.",
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, job_id: int) -> HttpResponse:
        """One of your jobs as a PDF report, to print or file."""
        found = _own_job_with_signal(request, job_id, "pdf")
        content = reports.job_pdf(found.job, found.signal, generated=timezone.now())
        return _pdf_response(content, f"ecg-job-{found.job.pk}.pdf")


class BatchReportApi(FileApi):
    @extend_schema(
        operation_id="batches_report",
        responses={
            (200, PDF): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="A summary page of the batch (every image's result, and the files refused "
                "at upload), then each job's report as GET /api/v1/jobs/{id}/report.pdf gives it.",
            ),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, batch_id: int) -> HttpResponse:
        """One of your batches as a PDF report."""
        batch, jobs, signals = _own_batch_with_signals(request, batch_id, "pdf")
        content = reports.batch_pdf(batch, jobs, signals, generated=timezone.now())
        return _pdf_response(content, f"ecg-batch-{batch.pk}.pdf")
