"""POST/GET/DELETE /api/v1/batches/ and the job endpoints: shapes, ownership, errors, idempotency."""

from __future__ import annotations

import datetime as dt
import json
import math
from functools import cache

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from classifier.models import Batch, Job
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory
from tests.conftest import assert_problem, stored_files

BATCHES = "/api/v1/batches/"
JOBS = "/api/v1/jobs/"


@cache
def _documented_keys(component: str) -> frozenset[str]:
    """The keys the OpenAPI schema documents for `component`, every one required: an answer must
    carry exactly these. (The schema and the answers both come from classifier.presenters.)"""
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    shape = schema["components"]["schemas"][component]
    assert set(shape["required"]) == set(shape["properties"])
    return frozenset(shape["properties"])


def _png(ecg_png: bytes, name: str = "ecg.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ecg_png, content_type="image/png")


def _finished_batch(owner, label: str = "mi") -> Batch:
    batch = BatchFactory(owner=owner, completed=timezone.now())
    job = JobFactory(batch=batch, status=Job.Status.SUCCEEDED, finished=timezone.now())
    PredictionFactory(job=job, model_version=ModelVersionFactory(), label=label)
    return batch


def test_posting_images_creates_a_batch_and_answers_201_with_its_json_and_location(
    api, ecg_png, media_root, django_capture_on_commit_callbacks, fake_classifier
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            BATCHES, {"images": [_png(ecg_png, "a.png"), _png(ecg_png, "b.png")], "name": "ward 3"}
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == _documented_keys("BatchOutput")
    assert all(set(job) == _documented_keys("JobOutput") for job in body["jobs"])
    assert response["Location"] == f"/api/v1/batches/{body['id']}/"
    assert body["name"] == "ward 3"
    assert [job["image_name"] for job in body["jobs"]] == ["a.png", "b.png"]
    assert set(body["counts"]) == {"queued", "running", "succeeded", "failed"}
    assert sum(body["counts"].values()) == 2
    assert len(stored_files(media_root)) == 2


def test_a_finished_job_has_the_issue_shape_and_its_probabilities_sum_to_one(api, owner):
    job = _finished_batch(owner).jobs.get()
    body = api.get(f"{JOBS}{job.pk}/").json()
    assert set(body) == _documented_keys("JobOutput")
    assert body["label"] == "mi"
    assert set(body["probabilities"]) == {"normal", "mi", "history_mi", "abnormal"}
    assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-6)
    assert body["image_url"] == f"/api/v1/jobs/{job.pk}/image/"
    assert body["label_note"] == ""  # the label is the most probable class
    assert body["photographed"] is False


def test_a_photographed_page_labelled_by_the_models_photo_threshold_says_so(api, owner):
    batch = BatchFactory(owner=owner, completed=timezone.now())
    job = JobFactory(batch=batch, status=Job.Status.SUCCEEDED, finished=timezone.now(), photographed=True)
    card = {
        "decision": {"rule": "threshold", "class": "mi", "threshold": 0.4},
        "decision_photos": {"rule": "threshold", "class": "mi", "threshold": 0.25},
    }
    probabilities = {"normal": 0.6, "mi": 0.3, "history_mi": 0.05, "abnormal": 0.05}
    PredictionFactory(
        job=job, model_version=ModelVersionFactory(card=card), label="mi", probabilities=probabilities
    )

    body = api.get(f"{JOBS}{job.pk}/").json()

    assert body["photographed"] is True
    assert "reaches this model's threshold for photographed pages of 25.0%" in body["label_note"]


def test_a_label_set_by_the_models_mi_threshold_says_why(api, owner):
    """p(mi) 0.3 loses the argmax to normal, but reaches the card's threshold of 0.2."""
    batch = BatchFactory(owner=owner, completed=timezone.now())
    job = JobFactory(batch=batch, status=Job.Status.SUCCEEDED, finished=timezone.now())
    card = {"decision": {"rule": "threshold", "class": "mi", "threshold": 0.2}}
    probabilities = {"normal": 0.6, "mi": 0.3, "history_mi": 0.05, "abnormal": 0.05}
    PredictionFactory(
        job=job, model_version=ModelVersionFactory(card=card), label="mi", probabilities=probabilities
    )

    body = api.get(f"{JOBS}{job.pk}/").json()

    assert body["label"] == "mi"
    assert body["label_note"] == (
        "Labelled acute myocardial infarction: its probability, 30.0%, is not the highest but "
        "reaches this model's threshold of 20.0%, set so that fewer acute MIs are missed at the "
        "cost of some false alarms."
    )


def test_a_posted_batch_is_classified_and_its_results_read_back(
    api, ecg_png, media_root, django_capture_on_commit_callbacks, fake_classifier
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = api.post(BATCHES, {"images": [_png(ecg_png)]}).json()["id"]
    body = api.get(f"{BATCHES}{batch_id}/").json()
    assert body["status"] == "completed"
    assert body["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}
    assert body["jobs"][0]["label"] == "mi"
    assert body["finished"] is not None


def test_the_list_is_paginated_newest_first(api, owner):
    batches = [BatchFactory(owner=owner) for _ in range(3)]
    first = api.get(BATCHES, {"page_size": 2}).json()
    assert first["count"] == 3
    assert [item["id"] for item in first["results"]] == [batches[2].pk, batches[1].pk]
    second = api.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [batches[0].pk]
    assert second["next"] is None


def test_the_list_filters_by_status(api, owner):
    done = _finished_batch(owner)
    running = BatchFactory(owner=owner)
    assert [b["id"] for b in api.get(BATCHES, {"status": "completed"}).json()["results"]] == [done.pk]
    assert [b["id"] for b in api.get(BATCHES, {"status": "processing"}).json()["results"]] == [running.pk]


def test_the_list_filters_by_creation_date(api, owner):
    old = BatchFactory(owner=owner)
    Batch.objects.filter(pk=old.pk).update(created=timezone.now() - dt.timedelta(days=10))
    new = BatchFactory(owner=owner)
    cutoff = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert [b["id"] for b in api.get(BATCHES, {"created_after": cutoff}).json()["results"]] == [new.pk]
    assert [b["id"] for b in api.get(BATCHES, {"created_before": cutoff}).json()["results"]] == [old.pk]


def test_a_bad_filter_is_a_400_problem_naming_the_parameter(api):
    assert_problem(api.get(BATCHES, {"status": "lost"}), 400, field="status")


def test_the_list_shows_only_the_users_own_batches(api, owner, other_user):
    mine = BatchFactory(owner=owner)
    BatchFactory(owner=other_user)
    assert [b["id"] for b in api.get(BATCHES).json()["results"]] == [mine.pk]


@pytest.mark.parametrize(
    "path", ["/api/v1/batches/{batch}/", "/api/v1/jobs/{job}/", "/api/v1/jobs/{job}/image/"]
)
def test_another_users_batch_job_and_image_are_404(other_api, owner, path):
    batch = _finished_batch(owner)
    url = path.format(batch=batch.pk, job=batch.jobs.get().pk)
    assert_problem(other_api.get(url), 404)


def test_another_user_cannot_delete_a_batch(other_api, owner):
    batch = _finished_batch(owner)
    assert_problem(other_api.delete(f"{BATCHES}{batch.pk}/"), 404)
    assert Batch.objects.filter(pk=batch.pk).exists()


def test_the_image_comes_back_with_its_type_and_no_sniffing(api, owner):
    job = _finished_batch(owner).jobs.get()
    response = api.get(f"{JOBS}{job.pk}/image/", HTTP_ACCEPT="image/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_deleting_a_batch_removes_its_rows_and_stored_images(
    api, ecg_png, media_root, django_capture_on_commit_callbacks, fake_classifier
):
    with django_capture_on_commit_callbacks(execute=True):
        batch_id = api.post(BATCHES, {"images": [_png(ecg_png), _png(ecg_png)]}).json()["id"]
    assert len(stored_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{BATCHES}{batch_id}/")
    assert response.status_code == 204
    assert not Batch.objects.filter(pk=batch_id).exists()
    assert not Job.objects.filter(batch_id=batch_id).exists()
    assert stored_files(media_root) == []
    assert_problem(api.get(f"{BATCHES}{batch_id}/"), 404)


def test_a_batch_still_processing_is_not_deleted(api, owner):
    batch = BatchFactory(owner=owner)
    JobFactory(batch=batch)
    assert_problem(api.delete(f"{BATCHES}{batch.pk}/"), 409)
    assert Batch.objects.filter(pk=batch.pk).exists()


def test_posting_one_image_to_jobs_answers_the_job_with_its_location(
    api, ecg_png, media_root, django_capture_on_commit_callbacks, fake_classifier
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(JOBS, {"image": _png(ecg_png, "single.png")})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == _documented_keys("JobOutput")
    assert response["Location"] == f"/api/v1/jobs/{body['id']}/"
    assert body["image_name"] == "single.png"
    assert Batch.objects.get(pk=body["batch"]).name == "single.png"


def test_the_same_idempotency_key_returns_the_same_batch_and_creates_nothing_new(api, ecg_png, media_root):
    first = api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="upload-42")
    again = api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="upload-42")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert Batch.objects.count() == 1
    assert len(stored_files(media_root)) == 1


def test_another_idempotency_key_or_none_creates_another_batch(api, ecg_png, media_root):
    api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="a")
    api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="b")
    api.post(BATCHES, {"images": [_png(ecg_png)]})
    assert Batch.objects.count() == 3


def test_the_same_idempotency_key_from_another_user_is_their_own(api, other_api, ecg_png, media_root):
    mine = api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="k").json()
    theirs = other_api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="k")
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]


def test_an_idempotent_job_post_returns_the_same_job(api, ecg_png, media_root):
    first = api.post(JOBS, {"image": _png(ecg_png)}, HTTP_IDEMPOTENCY_KEY="job-1").json()
    again = api.post(JOBS, {"image": _png(ecg_png)}, HTTP_IDEMPOTENCY_KEY="job-1")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert Job.objects.count() == 1


def test_an_overlong_idempotency_key_is_a_400_problem(api, ecg_png, media_root):
    response = api.post(BATCHES, {"images": [_png(ecg_png)]}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert_problem(response, 400, field="Idempotency-Key")
    assert Batch.objects.count() == 0


def test_a_file_over_the_size_limit_is_a_413_problem_and_nothing_is_stored(
    api, ecg_png, media_root, settings
):
    settings.ECGSITE_MAX_UPLOAD_BYTES = len(ecg_png) - 1
    body = assert_problem(api.post(BATCHES, {"images": [_png(ecg_png, "big.png")]}), 413, field="images")
    assert "big.png" in body["detail"]
    assert stored_files(media_root) == []
    # Asked for all or nothing, one file too large refuses the others too.
    settings.ECGSITE_MAX_UPLOAD_BYTES = len(ecg_png)
    too_big = SimpleUploadedFile("big.png", ecg_png + b"\0", content_type="image/png")
    files = [_png(ecg_png, "fits.png"), too_big]
    assert_problem(api.post(BATCHES, {"images": files, "all_or_nothing": "true"}), 413, field="images")
    assert (Batch.objects.count(), stored_files(media_root)) == (0, [])


def test_all_or_nothing_is_part_of_what_an_idempotency_key_names(api, ecg_png, media_root):
    def post(**fields: str):
        return api.post(BATCHES, {"images": [_png(ecg_png)], **fields}, HTTP_IDEMPOTENCY_KEY="k1")

    first, other = post(), post(all_or_nothing="true")
    assert first.status_code == 201
    assert_problem(other, 422, field="Idempotency-Key")
    # Sent again as it was, the request replays; all_or_nothing=false is the default spelt out.
    again = post(all_or_nothing="false")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("name", "content"),
    [("scan.pdf", b"%PDF-1.7\n1 0 obj\n"), ("notes.txt", b"just some text\n")],
)
def test_a_file_that_is_not_an_image_is_a_415_problem(api, media_root, name, content):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    body = assert_problem(api.post(BATCHES, {"images": [upload]}), 415, field="images")
    assert name in body["detail"]
    assert Batch.objects.count() == 0


def test_a_damaged_image_is_a_400_problem_naming_the_file(api, ecg_png, media_root):
    broken = SimpleUploadedFile("broken.png", ecg_png[: len(ecg_png) // 3], content_type="image/png")
    body = assert_problem(api.post(BATCHES, {"images": [broken]}), 400, field="images")
    assert body["type"] == "urn:ecgsite:problem:invalid-image"
    assert "broken.png" in body["detail"]
    assert stored_files(media_root) == []


def test_a_batch_keeps_its_good_images_and_lists_the_refused_ones_with_their_reasons(
    api, ecg_png, text_page_png, media_root, settings
):
    settings.ECGSITE_OOD_GUARD = True
    limit = settings.ECGSITE_MAX_UPLOAD_BYTES = max(len(ecg_png), len(text_page_png))
    too_big = SimpleUploadedFile("big.png", ecg_png.ljust(limit + 1, b"\0"), content_type="image/png")
    pdf = SimpleUploadedFile("scan.pdf", b"%PDF-1.7\n1 0 obj\n", content_type="application/pdf")
    files = [_png(ecg_png, "ecg.png"), _png(text_page_png, "letter.png"), too_big, pdf]

    response = api.post(BATCHES, {"images": files})

    # A file too large or not an image is listed like any other, not a 413 or 415 for them all.
    assert response.status_code == 201
    body = response.json()
    assert [job["image_name"] for job in body["jobs"]] == ["ecg.png"]
    assert [item["name"] for item in body["rejected"]] == ["letter.png", "big.png", "scan.pdf"]
    letter, big, pdf_reason = (item["reason"] for item in body["rejected"])
    assert letter.startswith("does not look like a 12-lead ECG printout: no ECG grid")
    assert big.startswith("is larger than the") and pdf_reason == "is not a JPEG or PNG image."
    assert api.get(response["Location"]).json()["rejected"] == body["rejected"]
    assert len(stored_files(media_root)) == 1


def test_all_or_nothing_refuses_the_whole_upload_for_one_bad_image(
    api, ecg_png, text_page_png, media_root, settings
):
    settings.ECGSITE_OOD_GUARD = True
    files = [_png(ecg_png, "ecg.png"), _png(text_page_png, "letter.png")]

    body = assert_problem(api.post(BATCHES, {"images": files, "all_or_nothing": "true"}), 400, field="images")

    assert body["type"] == "urn:ecgsite:problem:invalid-image"
    assert body["detail"].startswith("letter.png: does not look like a 12-lead ECG printout: no ECG grid")
    assert [error["detail"] for error in body["errors"]] == [body["detail"]]
    assert (Batch.objects.count(), Job.objects.count(), stored_files(media_root)) == (0, 0, [])


def test_a_single_job_upload_of_a_non_ecg_image_is_refused_too(api, text_page_png, media_root, settings):
    settings.ECGSITE_OOD_GUARD = True

    body = assert_problem(api.post(JOBS, {"image": _png(text_page_png, "letter.png")}), 400, field="image")

    assert "does not look like a 12-lead ECG printout" in body["detail"]
    assert (Batch.objects.count(), stored_files(media_root)) == (0, [])


def test_with_the_guard_off_the_api_accepts_an_image_that_is_not_an_ecg(
    api, text_page_png, media_root, settings, django_capture_on_commit_callbacks, fake_classifier
):
    settings.ECGSITE_OOD_GUARD = False

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(BATCHES, {"images": [_png(text_page_png, "letter.png")]})

    assert response.status_code == 201, response.content
    assert [job["image_name"] for job in response.json()["jobs"]] == ["letter.png"]


def test_a_post_without_images_is_a_400_problem_naming_the_field(api, media_root):
    assert_problem(api.post(BATCHES, {"name": "empty"}), 400, field="images")


def test_a_json_body_is_a_415_problem(api):
    response = api.post(BATCHES, data=json.dumps({"images": []}), content_type="application/json")
    assert_problem(response, 415)


def test_too_many_requests_get_a_429_problem_with_retry_after(api, settings):
    settings.ECGSITE_API_THROTTLE_RATES = {"api": "2/min", "api-upload": "60/min"}
    assert api.get(BATCHES).status_code == 200
    assert api.get(BATCHES).status_code == 200
    response = api.get(BATCHES)
    assert_problem(response, 429)
    assert int(response["Retry-After"]) > 0


def test_rates_are_counted_per_token(api, other_api, settings):
    settings.ECGSITE_API_THROTTLE_RATES = {"api": "1/min", "api-upload": "60/min"}
    assert api.get(BATCHES).status_code == 200
    assert other_api.get(BATCHES).status_code == 200
    assert api.get(BATCHES).status_code == 429


def test_uploads_have_their_own_tighter_rate(api, settings, media_root):
    settings.ECGSITE_API_THROTTLE_RATES = {"api": "100/min", "api-upload": "1/min"}
    api.post(BATCHES, {"name": "no files"})
    assert_problem(api.post(BATCHES, {"name": "no files"}), 429)
    assert api.get(BATCHES).status_code == 200


def test_uploads_are_refused_while_classification_is_unavailable(
    api, ecg_png, media_root, classification_unavailable
):
    response = api.post(BATCHES, {"images": [_png(ecg_png)]})
    problem = assert_problem(response, 503, field=None)
    assert problem["type"] == "urn:ecgsite:problem:classification-unavailable"
    assert f"the model '{classification_unavailable}' failed its start-up check" in problem["detail"]
    assert "/srv/" not in problem["detail"]
    assert not Batch.objects.exists() and stored_files(media_root) == []
