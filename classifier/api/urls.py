from django.urls import path, register_converter

from classifier.api import views


class IdConverter:
    """A database id: 1 to 18 digits, so no id overflows a 64-bit column (others are 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

app_name = "api"

urlpatterns = [
    path("batches/", views.BatchListCreateApi.as_view(), name="batch-list"),
    path("batches/<id:batch_id>/", views.BatchDetailApi.as_view(), name="batch-detail"),
    path("batches/<id:batch_id>/fhir/", views.BatchFhirApi.as_view(), name="batch-fhir"),
    path("batches/<id:batch_id>/report.pdf", views.BatchReportApi.as_view(), name="batch-report"),
    path("jobs/", views.JobCreateApi.as_view(), name="job-create"),
    path("jobs/<id:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<id:job_id>/image/", views.JobImageApi.as_view(), name="job-image"),
    path("jobs/<id:job_id>/signal/", views.JobSignalApi.as_view(), name="job-signal"),
    path("jobs/<id:job_id>/signal.csv", views.JobSignalCsvApi.as_view(), name="job-signal-csv"),
    path("jobs/<id:job_id>/fhir/", views.JobFhirApi.as_view(), name="job-fhir"),
    path("jobs/<id:job_id>/report.pdf", views.JobReportApi.as_view(), name="job-report"),
    path("jobs/<id:job_id>/explanation.png", views.JobExplanationApi.as_view(), name="job-explanation"),
]
