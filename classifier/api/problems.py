"""Every API error as RFC 9457 problem details (`application/problem+json`).

Shape: `{type, title, status, detail, field, errors: [{field, detail}]}`. `type` is a URN
naming the kind of problem (documented in docs/API.md); `field` names the request field (or
header) at fault, or is null; `errors` lists every problem found, one per field and message.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(slug: str) -> str:
    return f"urn:ecgsite:problem:{slug}"


class ProblemJSONRenderer(JSONRenderer):
    """Lets a client that asks for `application/problem+json` get JSON instead of a 406."""

    media_type = PROBLEM_CONTENT_TYPE


class FieldProblem(exceptions.APIException):
    """An expected error about one request field, with its own problem type."""

    status_code = status.HTTP_400_BAD_REQUEST
    slug = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, *, field: str | None = None, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.field = field
        self.messages = errors or [detail]


class InvalidImage(FieldProblem):
    status_code = status.HTTP_400_BAD_REQUEST
    slug = "invalid-image"
    title = "Invalid image"


class UnsafeCallback(FieldProblem):
    status_code = status.HTTP_400_BAD_REQUEST
    slug = "unsafe-callback-url"
    title = "Callback URL not allowed"


class IdempotencyKeyReused(FieldProblem):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused"


class ImageTooLarge(FieldProblem):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    slug = "image-too-large"
    title = "Image too large"


class UnsupportedImageType(FieldProblem):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    slug = "unsupported-image-type"
    title = "Unsupported image type"


class ClassificationUnavailable(FieldProblem):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    slug = "classification-unavailable"
    title = "Classification unavailable"


class BatchBusy(FieldProblem):
    status_code = status.HTTP_409_CONFLICT
    slug = "batch-busy"
    title = "Batch still processing"


class SignalNotReady(FieldProblem):
    status_code = status.HTTP_409_CONFLICT
    slug = "signal-not-ready"
    title = "Signal not ready"


class SignalNotAvailable(FieldProblem):
    status_code = status.HTTP_404_NOT_FOUND
    slug = "signal-not-available"
    title = "Signal not available"


_BY_CLASS: list[tuple[type[Exception], str, str]] = [
    # A selector's Http404 (another user's id): DRF answers it as NotFound, so name it so too.
    (Http404, "not-found", "Not found"),
    (exceptions.NotAuthenticated, "not-authenticated", "Authentication required"),
    (exceptions.AuthenticationFailed, "authentication-failed", "Authentication failed"),
    (exceptions.PermissionDenied, "permission-denied", "Permission denied"),
    (exceptions.NotFound, "not-found", "Not found"),
    (exceptions.MethodNotAllowed, "method-not-allowed", "Method not allowed"),
    (exceptions.NotAcceptable, "not-acceptable", "Not acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported-media-type", "Unsupported media type"),
    (exceptions.Throttled, "rate-limited", "Too many requests"),
    (exceptions.ValidationError, "invalid-request", "Invalid request"),
    (exceptions.ParseError, "malformed-request", "Malformed request"),
]


def _flatten(detail: Any, field: str | None = None) -> list[tuple[str | None, str]]:
    """[(field, message)] from DRF's nested error detail (dicts of lists of strings)."""
    if isinstance(detail, dict):
        found: list[tuple[str | None, str]] = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else (f"{field}.{key}" if field else str(key))
            found.extend(_flatten(value, name))
        return found
    if isinstance(detail, list):
        found = []
        for index, value in enumerate(detail):
            sub = f"{field}[{index}]" if field and isinstance(value, dict | list) else field
            found.extend(_flatten(value, sub))
        return found
    return [(field, str(detail))]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After), with the body as problem details."""
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's 500 handling, logged
    if isinstance(exc, FieldProblem):
        slug, title = exc.slug, exc.title
        errors = [(exc.field, message) for message in exc.messages]
        detail = str(exc.detail)
    else:
        slug, title = "error", "Error"
        for cls, cls_slug, cls_title in _BY_CLASS:
            if isinstance(exc, cls):
                slug, title = cls_slug, cls_title
                break
        errors = _flatten(getattr(exc, "detail", str(exc))) or [(None, str(exc))]
        detail = "; ".join(f"{field}: {message}" if field else message for field, message in errors)
    response.data = {
        "type": problem_type(slug),
        "title": title,
        "status": response.status_code,
        "detail": detail,
        "field": errors[0][0] if errors else None,
        "errors": [{"field": field, "detail": message} for field, message in errors],
    }
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


class ProblemErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The request field or header at fault.")
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (schema only)."""

    type = serializers.CharField(help_text="A URN: urn:ecgsite:problem:<kind>.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="A message for a person.")
    field = serializers.CharField(allow_null=True, help_text="The request field or header at fault, or null.")
    errors = ProblemErrorSerializer(many=True)


def schema_content_types_hook(result: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing: successes are application/json, errors problem JSON."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                drop = "application/json" if str(code)[0] in "45" else PROBLEM_CONTENT_TYPE
                if len(content) > 1:
                    content.pop(drop, None)
    return result


def problem_response(
    status_code: int, slug: str, title: str, detail: str, field: str | None = None
) -> JsonResponse:
    """A problem-details answer from outside DRF (Django's error handlers)."""
    body = {
        "type": problem_type(slug),
        "title": title,
        "status": status_code,
        "detail": detail,
        "field": field,
        "errors": [{"field": field, "detail": detail}],
    }
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404: problem JSON for an unknown /api/ address, the usual page elsewhere."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    return problem_response(404, "not-found", "Not found", "There is nothing at this address.")
