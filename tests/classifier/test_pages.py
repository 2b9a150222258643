"""Pages and ownership: a user sees their own batches, jobs and images, and 404 for anyone else's."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner):
    return BatchFactory(owner=owner, name="Ward 3 morning")


@pytest.fixture
def succeeded_job(batch):
    job = JobFactory(batch=batch, status="succeeded", original_name="lead-ii.png")
    PredictionFactory(job=job, model_version=ModelVersionFactory(name="hybrid-v1"), label="mi")
    return job


@pytest.fixture
def queued_job(batch):
    return JobFactory(batch=batch, original_name="waiting.png")


def _embedded_json(response, script_id: str):
    match = re.search(
        rf'<script id="{script_id}" type="application/json">(.*?)</script>', response.content.decode()
    )
    assert match, f"the batch page must embed its {script_id} for the page script"
    return json.loads(match.group(1))


def _batch_data(response) -> dict:
    return _embedded_json(response, "batch-data")


def _class_names(response) -> list[list[str]]:
    return _embedded_json(response, "class-names")


def test_home_sends_a_logged_in_user_to_the_upload_page(owner_client):
    response = owner_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:upload")


def test_home_shows_the_landing_page_to_anonymous_visitors(client):
    response = client.get("/")

    assert response.status_code == 200
    assert "home.html" in [template.name for template in response.templates]


def test_upload_page_states_the_limits(owner_client, settings):
    settings.ECGSITE_MAX_FILES_PER_BATCH = 7
    settings.ECGSITE_MAX_UPLOAD_BYTES = 3 * 1024 * 1024

    content = owner_client.get(reverse("classifier:upload")).content.decode()

    assert "up to 7 files of at most 3 MB each" in content
    # Photos are read too: the page says how to take one.
    assert "Scans or phone photos of a printed 12-lead ECG" in content
    assert "keep the whole page in the frame" in content


def test_batch_detail_shows_the_owner_its_jobs_with_their_predictions(
    owner_client, batch, succeeded_job, queued_job
):
    response = owner_client.get(reverse("classifier:batch-detail", args=[batch.pk]))

    assert response.status_code == 200
    assert "Ward 3 morning" in response.content.decode()
    data = _batch_data(response)
    assert (data["id"], data["status"], data["total"]) == (batch.pk, "processing", 2)
    assert data["counts"] == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0}
    jobs = {job["image_name"]: job for job in data["jobs"]}
    assert jobs["lead-ii.png"]["label"] == "mi"
    assert set(jobs["lead-ii.png"]["probabilities"]) == {"normal", "mi", "history_mi", "abnormal"}
    assert jobs["lead-ii.png"]["image_url"] == reverse("classifier:job-image", args=[succeeded_job.pk])
    assert (jobs["waiting.png"]["status"], jobs["waiting.png"]["label"]) == ("queued", None)
    # A person reads the mi class as acute MI, never as a bare "myocardial infarction".
    names = dict(_class_names(response))
    assert names == {
        "normal": "Normal",
        "mi": "Acute myocardial infarction",
        "history_mi": "History of MI",
        "abnormal": "Abnormal heartbeat",
    }


def test_batch_detail_embeds_hostile_file_names_without_breaking_out_of_the_script(owner_client, batch):
    JobFactory(batch=batch, original_name="<img src=x onerror=alert(1)>.png")

    response = owner_client.get(reverse("classifier:batch-detail", args=[batch.pk]))

    assert "<img src=x onerror=alert(1)>" not in response.content.decode()
    assert _batch_data(response)["jobs"][0]["image_name"] == "<img src=x onerror=alert(1)>.png"


def test_other_user_gets_404_for_the_batch(other_client, batch):
    assert other_client.get(reverse("classifier:batch-detail", args=[batch.pk])).status_code == 404


def test_other_user_gets_404_for_the_image(other_client, succeeded_job):
    assert other_client.get(reverse("classifier:job-image", args=[succeeded_job.pk])).status_code == 404


def test_a_missing_batch_is_404(owner_client):
    assert owner_client.get(reverse("classifier:batch-detail", args=[999_999])).status_code == 404


def test_the_image_is_served_to_its_owner_with_safe_headers(owner_client, succeeded_job):
    response = owner_client.get(reverse("classifier:job-image", args=[succeeded_job.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    assert response["Content-Disposition"] == "inline"
    with succeeded_job.image.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()


def test_a_jpeg_job_image_is_served_as_image_jpeg(owner_client, batch):
    job = JobFactory(batch=batch, image__format="JPEG", image__filename="upload.jpg")
    assert job.image.name.endswith(".jpg")

    response = owner_client.get(reverse("classifier:job-image", args=[job.pk]))

    assert response["Content-Type"] == "image/jpeg"


def test_history_lists_only_the_users_own_batches_with_counts(
    owner_client, other_user, batch, succeeded_job, queued_job
):
    JobFactory(batch=batch, status="failed")
    foreign = BatchFactory(owner=other_user, name="Bob's batch")
    JobFactory(batch=foreign)

    response = owner_client.get(reverse("classifier:batch-list"))

    assert response.status_code == 200
    listed = list(response.context["batches"])
    assert [row.pk for row in listed] == [batch.pk]
    row = listed[0]
    assert (row.job_count, row.queued_count, row.succeeded_count, row.failed_count) == (3, 1, 1, 1)
    content = response.content.decode()
    assert "Ward 3 morning" in content
    assert "Bob&#x27;s batch" not in content and "Bob's batch" not in content


def test_history_lists_newest_batches_first(owner_client, owner):
    older = BatchFactory(owner=owner)
    newer = BatchFactory(owner=owner)

    listed = list(owner_client.get(reverse("classifier:batch-list")).context["batches"])

    assert [row.pk for row in listed] == [newer.pk, older.pk]


def test_history_makes_a_fixed_number_of_queries(owner_client, owner, django_assert_max_num_queries):
    for _ in range(5):
        JobFactory(batch=BatchFactory(owner=owner))

    with django_assert_max_num_queries(6):
        response = owner_client.get(reverse("classifier:batch-list"))
    assert len(response.context["batches"]) == 5


def test_the_explanation_overlay_is_the_page_with_its_map_and_404_without_one(
    owner_client, batch, media_root
):
    from PIL import Image

    from tests.conftest import fixed_explanation, render_ecg_bytes

    page = render_ecg_bytes("normal", 1)
    job = JobFactory(batch=batch, status="succeeded", image=ContentFile(page, name="page.png"))
    PredictionFactory(job=job, model_version=ModelVersionFactory(), explanation=fixed_explanation())
    plain = JobFactory(batch=batch, status="succeeded", image=ContentFile(page, name="page.png"))
    PredictionFactory(job=plain, model_version=ModelVersionFactory())

    response = owner_client.get(reverse("classifier:job-explanation", args=[job.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    drawn = Image.open(io.BytesIO(response.content))
    assert drawn.size == Image.open(io.BytesIO(page)).size
    assert owner_client.get(reverse("classifier:job-explanation", args=[plain.pk])).status_code == 404
    # The page data tells the script where the overlay is and what it says.
    data = _batch_data(owner_client.get(reverse("classifier:batch-detail", args=[batch.pk])))
    jobs = {item["id"]: item for item in data["jobs"]}
    assert jobs[job.pk]["explanation"]["page_image_url"] == f"/jobs/{job.pk}/explanation.png"
    assert jobs[plain.pk]["explanation"] is None
