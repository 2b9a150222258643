"""Pages: upload, batch history, one batch's live results, and owner-only image downloads."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from classifier import selectors, services
from classifier.images import megabytes
from classifier.models import CLASS_KEYS, Job, Label
from classifier.presenters import batch_as_dict

CLASS_NAMES = [(key, Label(key).label) for key in CLASS_KEYS]


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("classifier:upload")
    return render(request, "home.html")


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """GET: the drop zone. POST: one batch from the files; JSON for the page's script."""
    if request.method == "GET":
        return render(request, "classifier/upload.html", _limits())
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        batch = services.batch_create(
            owner=request.user,
            files=request.FILES.getlist("images"),
            name=request.POST.get("name", ""),
        )
    except services.UploadRejected as exc:
        if wants_json:
            return JsonResponse({"errors": exc.errors}, status=400)
        return render(request, "classifier/upload.html", {**_limits(), "errors": exc.errors}, status=400)
    url = batch_as_dict(batch, with_jobs=False)["url"]
    if wants_json:
        return JsonResponse({"batch": batch.pk, "url": url}, status=201)
    return redirect(url)


def _limits() -> dict[str, int | str]:
    return {
        "max_files": settings.ECGSITE_MAX_FILES_PER_BATCH,
        "max_size": megabytes(settings.ECGSITE_MAX_UPLOAD_BYTES),
    }


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = selectors.batch_list_for_user(user=request.user)[:200]
    return render(request, "classifier/batch_list.html", {"batches": batches})


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = selectors.batch_get_for_user(user=request.user, batch_id=batch_id)
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
    return image_response(selectors.job_get_for_user(user=request.user, job_id=job_id))


def image_response(job: Job) -> FileResponse:
    """A job's stored image with headers that stop sniffing and shared caching."""
    content_type = "image/png" if job.image.name.endswith(".png") else "image/jpeg"
    response = FileResponse(job.image.open("rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = "inline"
    return response
