"""Pages: upload, batch history, one batch's live results, and owner-only image and signal downloads.

Each answer is recorded in the audit log (classifier.audit), refusals and other users' ids too.
"""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.defaults import bad_request as django_bad_request

from classifier import selectors, services
from classifier.api.problems import problem_response
from classifier.audit import Action, Outcome, audit_record, audited_lookup
from classifier.explanations import overlay_png
from classifier.images import megabytes
from classifier.model_pages import model_page
from classifier.models import CLASS_KEYS, Job, Label
from classifier.presenters import batch_as_dict, signal_svg
from classifier.selectors import JobSignal
from classifier.web_context import audit_context

CLASS_NAMES = [(key, Label(key).label) for key in CLASS_KEYS]
PatientFile = TypeVar("PatientFile", bound=HttpResponse)


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:upload")
    return render(request, "home.html")


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """GET: the drop zone. POST: one batch from the files; JSON for the page's script."""
    if request.method == "GET":
        return render(request, "classifier/upload.html", {**_limits(), "unavailable": _unavailable()})
    files = request.FILES.getlist("images")
    try:
        batch = services.batch_create(
            owner=request.user, files=files, name=request.POST.get("name", ""), context=audit_context(request)
        )
    except services.ClassificationUnavailable as exc:
        return upload_refused(request, [str(exc)], status=503)
    except services.UploadRejected as exc:
        audit_record(
            action=Action.BATCH_CREATE,
            context=audit_context(request),
            outcome=Outcome.REFUSED,
            detail={"files": len(files), "errors": exc.errors[:50]},
        )
        return upload_refused(request, exc.errors)
    summary = batch_as_dict(batch, with_jobs=False)
    if _wants_json(request):
        answer = {"batch": batch.pk, "url": summary["url"], "rejected": summary["rejected"]}
        return JsonResponse(answer, status=201)
    return redirect(summary["url"])  # the batch page lists any file that was refused


def upload_refused(request: HttpRequest, errors: list[str], status: int = 400) -> HttpResponse:
    """The answer to a refused upload: JSON for the page's script, else the page with messages."""
    if _wants_json(request):
        return JsonResponse({"errors": errors}, status=status)
    return render(request, "classifier/upload.html", {**_limits(), "errors": errors}, status=status)


def _unavailable() -> str:
    """The refusal every upload gets while no worker can classify, or ""."""
    try:
        services.classification_unavailable_check()
    except services.ClassificationUnavailable as exc:
        return str(exc)
    return ""


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _limits() -> dict[str, int | str]:
    return {
        "max_files": settings.ECGSITE_MAX_FILES_PER_BATCH,
        "max_size": megabytes(settings.ECGSITE_MAX_UPLOAD_BYTES),
    }


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = list(selectors.batch_list_for_user(user=request.user)[:200])
    audit_record(
        action=Action.BATCH_LIST, context=audit_context(request), detail={"batches": [b.pk for b in batches]}
    )
    return render(request, "classifier/batch_list.html", {"batches": batches})


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = audited_lookup(
        lambda: selectors.batch_get_for_user(user=request.user, batch_id=batch_id),
        action=Action.BATCH_VIEW,
        context=audit_context(request),
        target_type="batch",
        target_id=batch_id,
    )
    data = batch_as_dict(batch)
    return render(
        request,
        "classifier/batch_detail.html",
        {"batch": batch, "batch_data": data, "class_names": CLASS_NAMES},
    )


@login_required
@require_GET
def job_image(request: HttpRequest, job_id: int) -> FileResponse:
    """The stored (re-encoded) image, to its owner only, never cached by shared caches."""
    return owned_image_response(request, job_id)


def owned_image_response(request: HttpRequest, job_id: int) -> FileResponse:
    """The image of one of the requester's jobs (404 for anyone else's), recorded in the audit log."""
    job = audited_lookup(
        lambda: selectors.job_get_for_user(user=request.user, job_id=job_id),
        action=Action.IMAGE_VIEW,
        context=audit_context(request),
        target_type="job",
        target_id=job_id,
    )
    return image_response(job)


def image_response(job: Job) -> FileResponse:
    """A job's stored image with headers that stop sniffing and any caching."""
    content_type = "image/png" if job.image.name.endswith(".png") else "image/jpeg"
    response = _patient_document(FileResponse(job.image.open("rb"), content_type=content_type))
    response["Content-Disposition"] = "inline"
    return response


def _patient_document(response: PatientFile) -> PatientFile:
    """Headers for a file drawn from a patient's ECG: no sniffing, no cache, nothing that runs."""
    response["X-Content-Type-Options"] = "nosniff"
    # An ECG is patient data: kept by no cache, the browser's own included.
    response["Cache-Control"] = "private, no-store"
    # Even if a browser were tricked into rendering it as a document, nothing in it may run.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_GET
def job_signal_svg(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's twelve leads redrawn as the printout (SVG), to its owner only; 404 for anyone
    else's job and while the job has no signal."""
    found = owned_signal(request, job_id, "svg")
    if found.signal is None:
        raise Http404("This job has no signal.")
    return _patient_document(HttpResponse(signal_svg(found.job, found.signal), content_type="image/svg+xml"))


@login_required
@require_GET
def job_explanation_png(request: HttpRequest, job_id: int) -> HttpResponse:
    """The job's page with its explanation's map laid over it (PNG), to its owner only; 404 for
    anyone else's job and while the job has no explanation."""
    return owned_explanation_response(request, job_id)


def owned_explanation_response(request: HttpRequest, job_id: int) -> HttpResponse:
    """One of the requester's jobs drawn with its explanation (404 for anyone else's, or when it
    has none), recorded in the audit log as a view of its image."""
    job = audited_lookup(
        lambda: selectors.job_get_for_user(user=request.user, job_id=job_id),
        action=Action.IMAGE_VIEW,
        context=audit_context(request),
        target_type="job",
        target_id=job_id,
        detail={"output": "explanation"},
    )
    result = job.result()
    explanation = result.explanation if result else None
    if not explanation:
        raise Http404("This job has no explanation.")
    return _patient_document(HttpResponse(overlay_png(job, explanation), content_type="image/png"))


def owned_signal(request: HttpRequest, job_id: int, output: str) -> JobSignal:
    """One of the requester's jobs with its signal (404 for anyone else's job), recorded in the
    audit log with the ``output`` asked for (json, csv, svg). A job without a signal (yet) is
    recorded as refused: its state does not allow the read."""
    return audited_lookup(
        lambda: selectors.job_signal_for_user(user=request.user, job_id=job_id),
        action=Action.SIGNAL_VIEW,
        context=audit_context(request),
        target_type="job",
        target_id=job_id,
        detail={"output": output},
        outcome_of=lambda found: Outcome.SUCCESS if found.signal is not None else Outcome.REFUSED,
    )


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A model's page for the people reading its results: what it learnt from, how well it did,
    what it cannot do. It holds no patient's data, so any signed-in user may read it."""
    version = selectors.model_version_get(name=name)
    context = model_page(version, is_default=version.name == services.default_model_name())
    return render(request, "classifier/model_detail.html", context)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler400. A request Django refuses to parse (more files or fields than
    DATA_UPLOAD_MAX_NUMBER_FILES / _FIELDS allow) gets our message instead of a bare 400:
    problem JSON under /api/, the upload page's own refusal on /upload/."""
    if isinstance(exception, TooManyFilesSent | TooManyFieldsSent):
        limit = settings.ECGSITE_MAX_FILES_PER_BATCH
        message = f"Too many files were sent in one request; a batch holds at most {limit}."
        if request.path.startswith("/api/"):
            return problem_response(400, "too-many-files", "Too many files", message, field="images")
        if request.path == reverse("classifier:upload") and request.user.is_authenticated:
            audit_record(
                action=Action.BATCH_CREATE,
                context=audit_context(request),
                outcome=Outcome.REFUSED,
                detail={"errors": [message]},
            )
            return upload_refused(request, [message])
    return django_bad_request(request, exception)
