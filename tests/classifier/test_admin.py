"""The admin: staff review every batch, job, prediction and model version; nobody else gets in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(owner, other_user):
    """Two users' jobs: one labelled mi by hybrid-v1, one normal by cnn-v1, one failed."""
    hybrid = ModelVersionFactory(name="hybrid-v1")
    cnn = ModelVersionFactory(name="cnn-v1")
    mi_job = JobFactory(batch=BatchFactory(owner=owner), status="succeeded", model_version=hybrid)
    PredictionFactory(job=mi_job, model_version=hybrid, label="mi")
    normal_job = JobFactory(batch=BatchFactory(owner=other_user), status="succeeded", model_version=cnn)
    PredictionFactory(job=normal_job, model_version=cnn, label="normal")
    failed_job = JobFactory(batch=mi_job.batch, status="failed", error="The file is empty.")
    return {"hybrid": hybrid, "cnn": cnn, "mi": mi_job, "normal": normal_job, "failed": failed_job}


@pytest.mark.parametrize("model", ["batch", "job", "prediction", "modelversion"])
def test_staff_can_open_the_changelist(staff_client, history, model):
    response = staff_client.get(reverse(f"admin:classifier_{model}_changelist"))

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


def test_staff_can_open_a_job_with_its_predictions(staff_client, history):
    job = history["mi"]

    response = staff_client.get(reverse("admin:classifier_job_change", args=[job.pk]))

    assert response.status_code == 200
    assert reverse("admin:classifier_job_image", args=[job.pk]) in response.content.decode()


def test_staff_can_open_a_batch_with_its_jobs(staff_client, history):
    response = staff_client.get(reverse("admin:classifier_batch_change", args=[history["mi"].batch_id]))

    assert response.status_code == 200
    assert history["failed"].original_name in response.content.decode()


def test_the_admin_never_offers_to_add_jobs(staff_client):
    assert staff_client.get(reverse("admin:classifier_job_add")).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", ["failed"]),
        ("status=succeeded", ["mi", "normal"]),
        ("label=mi", ["mi"]),
        ("label=normal", ["normal"]),
    ],
)
def test_the_job_list_filters_by_status_and_label(staff_client, history, query, expected):
    response = staff_client.get(reverse("admin:classifier_job_changelist") + "?" + query)

    assert response.status_code == 200
    assert sorted(job.pk for job in response.context["cl"].result_list) == sorted(
        history[name].pk for name in expected
    )


def test_the_job_list_filters_by_model_version(staff_client, history):
    query = f"?model_version__id__exact={history['cnn'].pk}"

    response = staff_client.get(reverse("admin:classifier_job_changelist") + query)

    assert response.status_code == 200
    assert [job.pk for job in response.context["cl"].result_list] == [history["normal"].pk]


def test_the_prediction_list_filters_by_label_and_model_version(staff_client, history):
    query = f"?label=mi&model_version__id__exact={history['hybrid'].pk}"

    response = staff_client.get(reverse("admin:classifier_prediction_changelist") + query)

    assert response.status_code == 200
    assert [prediction.job_id for prediction in response.context["cl"].result_list] == [history["mi"].pk]


def test_staff_can_open_any_users_image_through_the_admin(staff_client, history):
    response = staff_client.get(reverse("admin:classifier_job_image", args=[history["normal"].pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_non_staff_user_cannot_open_the_admin_image(owner_client, history):
    url = reverse("admin:classifier_job_image", args=[history["mi"].pk])

    response = owner_client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_an_anonymous_visitor_cannot_open_the_admin_image(client, history):
    response = client.get(reverse("admin:classifier_job_image", args=[history["mi"].pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_non_staff_user_cannot_open_the_job_changelist(owner_client, history):
    response = owner_client.get(reverse("admin:classifier_job_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_view_permission_cannot_open_the_admin_image(history):
    clerk = User.objects.create_user(email="clerk@example.com", is_staff=True)
    client = Client()
    client.force_login(clerk)

    response = client.get(reverse("admin:classifier_job_image", args=[history["mi"].pk]))

    assert response.status_code == 403


def test_a_predictions_page_says_whether_its_leads_are_kept_without_printing_them(staff_client, history):
    from tests.classifier.factories import page_signal_for

    prediction = history["mi"].predictions.get()
    prediction.signal = page_signal_for("mi", 1)
    prediction.save(update_fields=["signal"])

    page = staff_client.get(
        reverse("admin:classifier_prediction_change", args=[prediction.pk])
    ).content.decode()

    assert "12 leads and the rhythm strip at 102.4 Hz" in page
    assert str(prediction.signal["leads"]["V1"][10]) not in page


def test_staff_see_the_worker_processes_as_their_heartbeats_left_them(staff_client):
    from django.utils import timezone

    from classifier.models import WorkerProcess

    now = timezone.now()
    WorkerProcess.objects.create(
        name="gpu-node-7/88",
        hostname="gpu-node-7",
        pid=88,
        queues="classify",
        model="hybrid-v5",
        state="ready",
        started=now,
        seen=now,
    )
    response = staff_client.get("/admin/classifier/workerprocess/")
    assert response.status_code == 200
    assert b"gpu-node-7/88" in response.content
    assert b"hybrid-v5" in response.content
