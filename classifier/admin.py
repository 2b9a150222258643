"""Django admin for reviewing history: batches, jobs, predictions and model versions."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.actions import delete_selected as confirm_delete_selected
from django.contrib.admin.utils import model_ngettext, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from classifier import services
from classifier.audit import Action, audit_record
from classifier.model_comparison import comparison_build, crossval_comparison_build
from classifier.models import (
    CLASS_KEYS,
    AuditEvent,
    Batch,
    Job,
    ModelVersion,
    Prediction,
    WebhookAttempt,
    WebhookDelivery,
    WorkerProcess,
)
from classifier.views import image_response
from classifier.web_context import audit_context


def _thumbnail(job: Job, size: int = 120) -> str:
    if not job.image:
        return "—"
    # Served by JobAdmin's own staff-only view; the public image view is owner-only.
    url = reverse("admin:classifier_job_image", args=[job.pk])
    return format_html('<img src="{}" alt="" style="max-width:{}px;border-radius:4px">', url, size)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the service, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RecordAdmin(ReadOnlyAdmin):
    """A row that leaves only with its batch (BatchAdmin's delete, through the service): a bare
    delete here would write no audit record."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AuditedReadAdmin(ReadOnlyAdmin):
    """Opening one object's page is a read of its results: recorded in the audit log."""

    audit_action: str = ""
    audit_target: str = ""

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200 and object_id.isdigit():
            audit_record(
                action=self.audit_action,
                context=audit_context(request),
                target_type=self.audit_target,
                target_id=int(object_id),
                detail={"via": "admin"},
            )
        return response


class RerunForm(forms.Form):
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.order_by("name"),
        widget=forms.RadioSelect,
        empty_label=None,
        label="Model version",
    )


class RerunActionMixin(admin.ModelAdmin):
    """The "Re-run on another model version" action: pick a model version on a page of its own, then
    queue the selected finished jobs again on it (classifier.services.jobs_rerun)."""

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        # A re-run changes jobs, though the admin's job pages are read-only.
        return request.user.has_perm("classifier.change_job")

    def rerun_confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        rerun: Callable[[ModelVersion], services.RerunResult],
    ) -> TemplateResponse | None:
        form = RerunForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            version = form.cleaned_data["model_version"]
            result = rerun(version)
            self.message_user(
                request, f"Queued {len(result.rerun)} job(s) again on {version.name}.", messages.SUCCESS
            )
            if result.skipped:
                self.message_user(
                    request,
                    f"Skipped {len(result.skipped)} job(s) still queued or running.",
                    messages.WARNING,
                )
            return None
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Re-run on another model version",
            "opts": opts,
            "form": form,
            "objects": list(queryset),
            "action_name": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "default_name": services.default_model_name(),
        }
        return TemplateResponse(request, "admin/classifier/rerun.html", context)


class JobInline(admin.TabularInline):
    model = Job
    fields = ("thumbnail", "original_name", "status", "attempts", "error", "finished")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    @admin.display(description="Image")
    def thumbnail(self, job: Job) -> str:
        return _thumbnail(job, 80)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("event", "url", "status", "attempts", "next_attempt_at", "delivered")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(RerunActionMixin, AuditedReadAdmin):
    audit_action = Action.BATCH_VIEW
    audit_target = "batch"
    list_display = ("name", "owner", "created", "completed", "job_total")
    list_filter = ("created", "completed", ("owner", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "owner__email")
    date_hierarchy = "created"
    inlines = (JobInline, WebhookDeliveryInline)
    list_select_related = ("owner",)

    # Replaces the site's "delete_selected" (a bare queryset delete) with the service's delete.
    actions = ("rerun_on_model_version", "delete_selected")

    @admin.display(description="Images")
    def job_total(self, batch: Batch) -> int:
        return batch.jobs.count()

    def get_deleted_objects(self, objs: object, request: HttpRequest) -> tuple:
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        # The jobs, predictions and webhook records go with their batch (services.batch_delete):
        # permission to delete the batch is what counts. JobAdmin deletes nothing on its own.
        return deleted, counts, set(), protected

    def _delete(self, request: HttpRequest, batch: Batch) -> None:
        """Delete through the API's service: audit record (via admin), then the files; BatchBusy
        when a worker may still hold one of its jobs. Not inside a transaction of the admin's:
        that would also undo the service's record of a refusal."""
        services.batch_delete_recorded(batch=batch, context=audit_context(request), via="admin")
        self.log_deletions(request, [batch])  # the admin's history; the object is still in memory

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        if not request.POST:
            return super().delete_view(request, object_id, extra_context)  # the confirmation page
        # Confirmed. Not Django's own POST path: it deletes inside a transaction of its own (see _delete).
        batch = self.get_object(request, unquote(object_id))
        if not self.has_delete_permission(request, batch):
            raise PermissionDenied
        if batch is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            self._delete(request, batch)
        except services.BatchBusy as exc:
            self.message_user(request, f"{batch} was not deleted: {exc}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:classifier_batch_change", args=[batch.pk]))
        return self.response_delete(request, str(batch), batch.pk)

    @admin.action(description="Delete selected batches", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Batch]) -> TemplateResponse | None:
        if not request.POST.get("post"):
            return confirm_delete_selected(self, request, queryset)  # Django's confirmation page
        deleted, busy = 0, []
        for batch in queryset:
            try:
                self._delete(request, batch)
            except services.BatchBusy:
                busy.append(str(batch))
            else:
                deleted += 1
        if deleted:
            self.message_user(
                request, f"Deleted {deleted} {model_ngettext(self.opts, deleted)}.", messages.SUCCESS
            )
        if busy:
            self.message_user(
                request,
                f"Not deleted, still being classified: {', '.join(busy)}. "
                "Delete them once they have finished.",
                messages.WARNING,
            )
        return None

    @admin.action(description="Re-run on another model version", permissions=["rerun"])
    def rerun_on_model_version(
        self, request: HttpRequest, queryset: QuerySet[Batch]
    ) -> TemplateResponse | None:
        def rerun(version: ModelVersion) -> services.RerunResult:
            results = [
                services.batch_rerun(
                    batch=batch, model_version=version, actor=request.user, context=audit_context(request)
                )
                for batch in queryset
            ]
            return services.RerunResult(
                rerun=[job_id for result in results for job_id in result.rerun],
                skipped=[job_id for result in results for job_id in result.skipped],
            )

        return self.rerun_confirmation(request, queryset, rerun)


class PredictionInline(admin.TabularInline):
    model = Prediction
    fields = ("model_version", "label", "probability_table", "inference_ms", "created")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="Probabilities")
    def probability_table(self, prediction: Prediction) -> str:
        return _probabilities(prediction)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _probabilities(prediction: Prediction) -> str:
    rows = ((key, f"{prediction.probabilities.get(key, 0):.3f}") for key in CLASS_KEYS)
    return format_html_join(" · ", "{}: {}", rows)


class JobLabelFilter(admin.SimpleListFilter):
    title = "label"
    parameter_name = "label"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, key) for key in CLASS_KEYS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        if self.value():
            return queryset.filter(predictions__label=self.value()).distinct()
        return queryset


@admin.register(Job)
class JobAdmin(RerunActionMixin, AuditedReadAdmin):
    audit_action = Action.JOB_VIEW
    audit_target = "job"
    list_display = (
        "id",
        "thumbnail",
        "original_name",
        "owner",
        "status",
        "label",
        "model_version",
        "created",
    )
    list_filter = (
        "status",
        JobLabelFilter,
        ("batch__owner", admin.RelatedOnlyFieldListFilter),
        "model_version",
        "created",
    )
    search_fields = ("original_name", "sha256", "batch__name", "batch__owner__email")
    date_hierarchy = "created"
    list_select_related = ("batch__owner", "model_version")
    readonly_fields = ("large_image",)
    exclude = ("image",)
    inlines = (PredictionInline,)
    actions = ("rerun_on_model_version",)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A job goes with its batch (BatchAdmin): a bare delete would leave its image on disk
        # and write no audit record.
        return False

    @admin.action(description="Re-run on another model version", permissions=["rerun"])
    def rerun_on_model_version(
        self, request: HttpRequest, queryset: QuerySet[Job]
    ) -> TemplateResponse | None:
        return self.rerun_confirmation(
            request,
            queryset,
            lambda version: services.jobs_rerun(
                jobs=queryset, model_version=version, actor=request.user, context=audit_context(request)
            ),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).prefetch_related("predictions")

    def get_urls(self) -> list[URLPattern]:
        image_url = path(
            "<int:job_id>/image/",
            self.admin_site.admin_view(self.image_view),
            name="classifier_job_image",
        )
        return [image_url, *super().get_urls()]

    def image_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=job_id)
        audit_record(
            action=Action.IMAGE_VIEW,
            context=audit_context(request),
            target_type="job",
            target_id=job.pk,
            detail={"via": "admin"},
        )
        return image_response(job)

    @admin.display(description="Image")
    def thumbnail(self, job: Job) -> str:
        return _thumbnail(job)

    @admin.display(description="Image")
    def large_image(self, job: Job) -> str:
        return _thumbnail(job, 600)

    @admin.display(description="Owner", ordering="batch__owner__email")
    def owner(self, job: Job) -> str:
        return job.batch.owner.email

    @admin.display(description="Label")
    def label(self, job: Job) -> str:
        predictions = list(job.predictions.all())
        return predictions[0].label if predictions else "—"


@admin.register(Prediction)
class PredictionAdmin(RecordAdmin):
    list_display = ("job", "label", "probability_table", "model_version", "inference_ms", "created")
    list_filter = (
        "label",
        "model_version",
        "created",
        ("job__batch__owner", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("job__original_name", "job__batch__owner__email")
    date_hierarchy = "created"
    list_select_related = ("job", "model_version")
    # The stored leads are tens of kB of numbers: the page says whether they are there, the
    # owner's API and job page show them.
    exclude = ("signal",)
    readonly_fields = ("signal_summary",)

    @admin.display(description="Probabilities")
    def probability_table(self, prediction: Prediction) -> str:
        return _probabilities(prediction)

    @admin.display(description="Digitised leads")
    def signal_summary(self, prediction: Prediction) -> str:
        signal = prediction.signal
        if not signal:
            return "none (the page could not be digitised, or it was classified before leads were kept)"
        return f"{len(signal.get('leads', {}))} leads and the rhythm strip at {signal.get('fs')} Hz"


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("name", "architecture", "short_sha", "created")
    search_fields = ("name", "architecture", "file_sha256")
    change_list_template = "admin/classifier/modelversion/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        compare_url = path(
            "compare/",
            self.admin_site.admin_view(self.compare_view),
            name="classifier_modelversion_compare",
        )
        return [compare_url, *super().get_urls()]

    def compare_view(self, request: HttpRequest) -> TemplateResponse:
        """Every registered model version side by side: table and charts from their cards; then
        every cross-validation report in ECGSITE_CROSSVAL_REPORTS_DIR (all architectures, same folds)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        versions = list(ModelVersion.objects.order_by("name"))
        comparison = comparison_build(versions=versions, default_name=services.default_model_name())
        crossval = crossval_comparison_build(folder=settings.ECGSITE_CROSSVAL_REPORTS_DIR, versions=versions)
        context = {
            **self.admin_site.each_context(request),
            "title": "Compare model versions",
            "opts": self.model._meta,
            "comparison": comparison,
            "crossval": crossval,
        }
        return TemplateResponse(request, "admin/classifier/modelversion/compare.html", context)

    @admin.display(description="File sha256")
    def short_sha(self, version: ModelVersion) -> str:
        return version.file_sha256[:12]


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RecordAdmin):
    """Each webhook call and every attempt at it: status code or error, and when."""

    list_display = ("event_id", "event", "batch", "url", "status", "attempts", "next_attempt_at", "delivered")
    list_filter = ("status", "event", "created")
    search_fields = ("url", "event_id", "batch__name", "batch__owner__email")
    date_hierarchy = "created"
    list_select_related = ("batch",)
    inlines = (WebhookAttemptInline,)
    readonly_fields = ("event_id",)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, readable by staff with the view permission; nobody adds, edits or deletes."""

    list_display = (
        "created",
        "actor_label",
        "api_token_id",
        "action",
        "target_type",
        "target_id",
        "outcome",
        "ip",
    )
    list_filter = (
        "action",
        "outcome",
        ("actor", admin.RelatedOnlyFieldListFilter),
        "created",
    )
    search_fields = ("actor_label", "request_id", "ip")
    date_hierarchy = "created"
    list_select_related = ("actor",)
    readonly_fields = (
        "created",
        "actor",
        "actor_label",
        "api_token_id",
        "ip",
        "request_id",
        "action",
        "target_type",
        "target_id",
        "outcome",
        "detail",
    )
    fields = readonly_fields
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WorkerProcess)
class WorkerProcessAdmin(RecordAdmin):
    """The worker processes as their heartbeats last reported them (what /health/ lists);
    written by the workers, pruned by the reaper an hour after a process was last heard from."""

    list_display = ("name", "queues", "model", "state", "seen", "started")
    list_filter = ("state", "queues")
    search_fields = ("name", "hostname", "model")
    ordering = ("-seen",)
