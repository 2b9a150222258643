from django.urls import path

from classifier import views

app_name = "classifier"

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/<int:batch_id>/", views.batch_detail, name="batch-detail"),
    path("jobs/<int:job_id>/image/", views.job_image, name="job-image"),
    path("jobs/<int:job_id>/signal.svg", views.job_signal_svg, name="job-signal-svg"),
    path("jobs/<int:job_id>/explanation.png", views.job_explanation_png, name="job-explanation"),
    path("models/<str:name>/", views.model_detail, name="model-detail"),
]
