"""Uploading a batch: POST /upload/ → services.batch_create → images.clean_image.

A batch keeps its good files: each bad one is listed on the batch with its reason and nothing
else of it is kept; an upload with no good file is refused whole with a message naming each file,
and then no row and no file is left behind. Jobs reach the queue only after their transaction
commits.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from unittest import mock

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from PIL import Image

from classifier import services
from classifier.models import AuditEvent, Batch, Job
from tests.conftest import TEST_PAGE_SIZE, render_ecg_bytes, stored_files

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/upload/"
JSON = {"accept": "application/json"}


def _post_json(client, files, **data):
    return client.post(UPLOAD_URL, {"images": files, **data}, headers=JSON)


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _assert_nothing_stored(media_root):
    assert Batch.objects.count() == 0
    assert Job.objects.count() == 0
    assert stored_files(media_root) == []


# Accepted uploads


def test_several_files_in_one_post_create_one_batch_with_one_job_per_image(
    owner, owner_client, make_upload, ecg_jpeg, media_root, enqueue
):
    files = [make_upload("a.png"), make_upload("b.png"), make_upload("c.jpg", ecg_jpeg, "image/jpeg")]

    response = _post_json(owner_client, files, name="Ward 3")

    assert response.status_code == 201
    batch = Batch.objects.get()
    assert (batch.owner, batch.name) == (owner, "Ward 3")
    assert sorted(batch.jobs.values_list("original_name", flat=True)) == ["a.png", "b.png", "c.jpg"]
    assert len(stored_files(media_root)) == 3


@pytest.mark.parametrize("returns_ids", [True, False], ids=["ids-returned", "mysql-no-returning"])
def test_each_job_is_queued_and_audited_with_its_own_id(
    owner, make_upload, enqueue, monkeypatch, django_capture_on_commit_callbacks, returns_ids
):
    # The jobs go in with one INSERT; where the database does not return their ids (MySQL),
    # they are read back, so the queue and the audit record still name the right rows.
    monkeypatch.setattr(
        type(connection.features), "can_return_rows_from_bulk_insert", returns_ids, raising=True
    )

    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_create(owner=owner, files=[make_upload("a.png"), make_upload("b.png")])

    rows = dict(batch.jobs.values_list("task_id", "pk"))
    assert len(rows) == 2
    # One message for both (a message per ECGSITE_CLASSIFY_BATCH_SIZE jobs), under a job's own ids.
    (message,) = enqueue.call_args_list
    assert rows[message.kwargs["task_id"]] == message.kwargs["job_id"]
    audit = AuditEvent.objects.get(action=AuditEvent.Action.BATCH_CREATE)
    assert sorted(audit.detail["jobs"]) == sorted(rows.values())


def test_json_upload_answers_201_with_the_batch_url(owner_client, make_upload, enqueue):
    response = _post_json(owner_client, [make_upload()])

    batch = Batch.objects.get()
    assert response.status_code == 201
    url = reverse("classifier:batch-detail", args=[batch.pk])
    assert response.json() == {"batch": batch.pk, "url": url, "rejected": []}


def test_form_upload_redirects_to_the_batch_page(owner_client, make_upload, enqueue):
    response = owner_client.post(UPLOAD_URL, {"images": [make_upload()]})

    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:batch-detail", args=[batch.pk])


def test_upload_without_a_name_gets_a_dated_batch_name(owner_client, make_upload, enqueue):
    _post_json(owner_client, [make_upload()])

    assert re.fullmatch(r"Batch of \d{4}-\d\d-\d\d \d\d:\d\d UTC", Batch.objects.get().name)


def test_jobs_are_queued_and_not_enqueued_until_the_transaction_commits(
    owner_client, make_upload, enqueue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post_json(owner_client, [make_upload("a.png"), make_upload("b.png")])

    assert list(Job.objects.values_list("status", flat=True)) == [Job.Status.QUEUED, Job.Status.QUEUED]
    assert len(callbacks) == 1
    enqueue.assert_not_called()


def test_each_job_is_enqueued_with_its_task_id_after_commit(
    owner, make_upload, enqueue, django_capture_on_commit_callbacks, settings
):
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 1
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_create(owner=owner, files=[make_upload("a.png"), make_upload("b.png")])

    expected = [mock.call(job_id=job.pk, task_id=job.task_id) for job in batch.jobs.all()]
    assert enqueue.call_args_list == expected
    assert all(job.task_id for job in batch.jobs.all())


def test_one_message_goes_out_per_classify_batch_of_jobs(
    owner, make_upload, enqueue, django_capture_on_commit_callbacks, settings
):
    """The task a message starts claims the queued jobs beside its own (worker.tasks.classify)."""
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 2
    with django_capture_on_commit_callbacks(execute=True):
        batch = services.batch_create(owner=owner, files=[make_upload(f"{n}.png") for n in range(5)])

    jobs = list(batch.jobs.order_by("pk"))
    assert enqueue.call_args_list == [mock.call(job_id=job.pk, task_id=job.task_id) for job in jobs[::2]]


def test_nothing_is_enqueued_when_the_surrounding_transaction_rolls_back(
    owner, make_upload, enqueue, django_capture_on_commit_callbacks
):
    class Abort(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Abort),
        transaction.atomic(),
    ):
        services.batch_create(owner=owner, files=[make_upload()])
        raise Abort

    assert callbacks == []
    enqueue.assert_not_called()
    assert Job.objects.count() == 0


def test_a_failure_while_writing_the_batch_removes_the_files_already_stored(
    owner, make_upload, media_root, enqueue, monkeypatch
):
    # The jobs' one INSERT fails after every image file was written.
    files_when_it_failed = []

    def fail(*args, **kwargs):
        files_when_it_failed.append(len(stored_files(media_root)))
        raise IntegrityError("simulated")

    monkeypatch.setattr(QuerySet, "bulk_create", fail)

    with pytest.raises(IntegrityError):
        services.batch_create(owner=owner, files=[make_upload("a.png"), make_upload("b.png")])

    assert files_when_it_failed == [2]

    _assert_nothing_stored(media_root)
    enqueue.assert_not_called()


# Rejected uploads: 400, a message naming the file, nothing stored


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (40, 30)).save(out, format="GIF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", lambda png, jpeg: b"", "is empty."),
        (
            "notes.jpg",
            lambda png, jpeg: b"Patient notes, not an image.\n" * 20,
            "is not a JPEG or PNG image.",
        ),
        ("half.png", lambda png, jpeg: _truncated(png), "is damaged or truncated and cannot be read."),
        ("half.jpg", lambda png, jpeg: _truncated(jpeg), "is damaged or truncated and cannot be read."),
        ("anim.gif", lambda png, jpeg: _gif(), "is not a JPEG or PNG image."),
    ],
    ids=["empty file", "text renamed .jpg", "truncated PNG", "truncated JPEG", "GIF"],
)
def test_an_unusable_file_is_refused_with_a_message_naming_it_and_nothing_is_stored(
    owner_client, make_upload, ecg_png, ecg_jpeg, media_root, enqueue, name, content, reason
):
    response = _post_json(owner_client, [make_upload(name, content(ecg_png, ecg_jpeg))])

    assert response.status_code == 400
    assert response.json() == {"errors": [f"{name}: {reason}"]}
    _assert_nothing_stored(media_root)
    enqueue.assert_not_called()


def test_a_file_over_the_byte_limit_is_refused(owner_client, make_upload, media_root, settings, enqueue):
    settings.ECGSITE_MAX_UPLOAD_BYTES = 1024 * 1024
    big = _noise_png(700)
    assert len(big) > settings.ECGSITE_MAX_UPLOAD_BYTES

    response = _post_json(owner_client, [make_upload("big.png", big)])

    assert response.status_code == 400
    assert response.json() == {"errors": ["big.png: is larger than the 1 MB limit."]}
    _assert_nothing_stored(media_root)


def test_an_image_over_the_pixel_limit_is_refused(owner_client, make_upload, media_root, settings, enqueue):
    settings.ECGSITE_MAX_IMAGE_PIXELS = 100_000
    width, height = TEST_PAGE_SIZE
    assert width * height > 100_000

    response = _post_json(owner_client, [make_upload("huge.png")])

    assert response.status_code == 400
    assert response.json() == {
        "errors": [f"huge.png: is {width}x{height} pixels; the limit is 100,000 pixels."]
    }
    _assert_nothing_stored(media_root)


def test_a_batch_over_the_file_count_limit_is_refused_with_our_message(
    owner_client, make_upload, media_root, settings, enqueue
):
    settings.ECGSITE_MAX_FILES_PER_BATCH = 2

    response = _post_json(owner_client, [make_upload(f"{n}.png") for n in range(3)])

    assert response.status_code == 400
    assert response.json() == {"errors": ["3 files were sent; a batch holds at most 2."]}
    _assert_nothing_stored(media_root)


def test_a_post_without_files_is_refused(owner_client, media_root, enqueue):
    response = owner_client.post(UPLOAD_URL, {"name": "nothing"}, headers=JSON)

    assert response.status_code == 400
    assert response.json() == {"errors": ["Choose at least one JPEG or PNG image."]}
    assert Batch.objects.count() == 0


def test_a_batch_keeps_its_good_files_and_lists_each_refused_one_with_its_reason(
    owner_client, make_upload, media_root, enqueue, django_capture_on_commit_callbacks
):
    files = [make_upload("good.png"), make_upload("bad.png", b""), make_upload("notes.jpg", b"text" * 10)]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_json(owner_client, files)

    assert response.status_code == 201
    refused = [
        {"name": "bad.png", "reason": "is empty."},
        {"name": "notes.jpg", "reason": "is not a JPEG or PNG image."},
    ]
    assert response.json()["rejected"] == refused
    batch = Batch.objects.get()
    assert batch.rejected == refused
    # Only the good file is stored and queued: nothing of a refused one but its name and reason.
    assert list(batch.jobs.values_list("original_name", flat=True)) == ["good.png"]
    assert len(stored_files(media_root)) == 1
    enqueue.assert_called_once()


def test_a_form_upload_with_a_refused_file_opens_the_batch_page_that_lists_it(
    owner_client, make_upload, media_root, enqueue
):
    hostile = "<img src=x onerror=alert(1)>.png"
    response = owner_client.post(UPLOAD_URL, {"images": [make_upload("good.png"), make_upload(hostile, b"")]})

    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:batch-detail", args=[batch.pk])
    page = owner_client.get(response["Location"]).content.decode()
    assert "1 file not taken" in page
    assert "<strong>&lt;img src=x onerror=alert(1)&gt;.png</strong>: is empty." in page
    assert hostile not in page


def test_a_batch_whose_every_file_is_refused_is_refused_whole(owner_client, make_upload, media_root, enqueue):
    response = _post_json(owner_client, [make_upload("bad.png", b""), make_upload("worse.png", b"")])

    assert response.status_code == 400
    assert response.json() == {"errors": ["bad.png: is empty.", "worse.png: is empty."]}
    _assert_nothing_stored(media_root)
    enqueue.assert_not_called()


def test_every_bad_file_of_a_batch_is_named(owner_client, make_upload, media_root, enqueue):
    response = _post_json(owner_client, [make_upload("one.png", b""), make_upload("two.jpg", b"text")])

    assert response.json()["errors"] == ["one.png: is empty.", "two.jpg: is not a JPEG or PNG image."]


def test_a_refused_form_upload_shows_the_messages_on_the_upload_page(owner_client, make_upload, media_root):
    response = owner_client.post(UPLOAD_URL, {"images": [make_upload("bad.png", b"")]})

    assert response.status_code == 400
    assert "classifier/upload.html" in [template.name for template in response.templates]
    assert "<li>bad.png: is empty.</li>" in response.content.decode()


def test_an_image_that_is_not_an_ecg_printout_is_refused_with_the_reason_and_nothing_is_stored(
    owner_client, make_upload, text_page_png, media_root, settings, enqueue
):
    settings.ECGSITE_OOD_GUARD = True

    response = _post_json(owner_client, [make_upload("letter.png", text_page_png)])

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error.startswith("letter.png: does not look like a 12-lead ECG printout: no ECG grid was found")
    _assert_nothing_stored(media_root)
    enqueue.assert_not_called()


def test_the_upload_page_shows_why_an_image_was_not_taken_for_an_ecg(
    owner_client, make_upload, text_page_png, media_root, settings
):
    settings.ECGSITE_OOD_GUARD = True

    response = owner_client.post(UPLOAD_URL, {"images": [make_upload("letter.png", text_page_png)]})

    assert response.status_code == 400
    assert "letter.png: does not look like a 12-lead ECG printout" in response.content.decode()
    _assert_nothing_stored(media_root)


def test_with_the_guard_off_an_image_that_is_not_an_ecg_is_accepted(
    owner_client, make_upload, text_page_png, media_root, settings, enqueue
):
    settings.ECGSITE_OOD_GUARD = False

    response = _post_json(owner_client, [make_upload("letter.png", text_page_png)])

    assert response.status_code == 201
    assert Job.objects.get().original_name == "letter.png"


# What is stored


def test_stored_files_get_random_names_not_the_uploaded_name(owner_client, make_upload, enqueue):
    _post_json(owner_client, [make_upload("patient-john-doe.png")])

    job = Job.objects.get()
    assert job.original_name == "patient-john-doe.png"
    assert re.fullmatch(r"jobs/\d{4}/\d\d/[0-9a-f]{32}\.png", job.image.name)


def test_stored_bytes_are_re_encoded_not_the_uploaded_bytes(owner_client, make_upload, ecg_jpeg, enqueue):
    _post_json(owner_client, [make_upload("ecg.jpg", ecg_jpeg, "image/jpeg")])

    job = Job.objects.get()
    with job.image.open("rb") as stored:
        data = stored.read()
    assert data != ecg_jpeg
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_the_sha256_is_of_the_uploaded_bytes(owner_client, make_upload, ecg_png, enqueue):
    _post_json(owner_client, [make_upload("ecg.png")])

    assert Job.objects.get().sha256 == hashlib.sha256(ecg_png).hexdigest()


def test_exif_metadata_is_not_stored(owner_client, make_upload, enqueue):
    exif = Image.Exif()
    exif[0x010F] = "Scanner Maker"  # Make
    exif[0x0131] = "Hospital PACS 1.0"  # Software
    upload = render_ecg_bytes(image_format="JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(upload)).getexif()

    _post_json(owner_client, [make_upload("scan.jpg", upload, "image/jpeg")])

    with Job.objects.get().image.open("rb") as stored:
        kept = Image.open(io.BytesIO(stored.read()))
        assert dict(kept.getexif()) == {}
        assert "exif" not in kept.info


def test_an_image_with_exif_orientation_6_is_stored_upright(owner_client, make_upload, enqueue):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: the camera stored the landscape page on its side
    upload = render_ecg_bytes(image_format="JPEG", transpose=Image.Transpose.ROTATE_90, exif=exif.tobytes())
    width, height = TEST_PAGE_SIZE
    assert Image.open(io.BytesIO(upload)).size == (height, width)

    _post_json(owner_client, [make_upload("phone.jpg", upload, "image/jpeg")])

    job = Job.objects.get()
    assert (job.width, job.height) == (width, height)
    with job.image.open("rb") as stored:
        kept = Image.open(io.BytesIO(stored.read()))
        assert kept.size == (width, height)
        assert kept.getexif().get(0x0112) is None


def test_a_file_name_with_a_path_is_stored_as_its_last_component(owner, make_upload, enqueue):
    upload = make_upload()
    upload._name = "../../etc/ecg.png"  # bypass UploadedFile's own clean-up: test ours

    batch = services.batch_create(owner=owner, files=[upload])

    assert batch.jobs.get().original_name == "ecg.png"


def test_while_classification_is_unavailable_the_page_says_why_and_refuses_uploads(
    owner_client, make_upload, classification_unavailable, enqueue, media_root
):
    """The embedded default whose model failed its self-test: no batch, no file, no job."""
    page = owner_client.get(UPLOAD_URL).content.decode()
    model = classification_unavailable
    assert 'id="classification-unavailable"' in page and f"the model &#x27;{model}&#x27;" in page
    assert "/srv/" not in page  # the reason, with server paths, is for the log
    assert 'id="upload-button" disabled' in page

    response = _post_json(owner_client, [make_upload()])
    assert response.status_code == 503
    (error,) = response.json()["errors"]
    assert error.startswith(f"Classification is unavailable on this server: the model '{model}'")
    assert not Batch.objects.exists() and stored_files(media_root) == []
    enqueue.assert_not_called()


# One decode and one encode per image in the web process


@pytest.fixture
def codec_calls(monkeypatch):
    """How many times Pillow made a JPEG or PNG decoder and encoder (one per image read or
    written); "raw" ones only copy pixels between Pillow and numpy."""
    counts = {"decode": 0, "encode": 0}
    lock = threading.Lock()  # the upload path cleans images on several threads
    for kind, name in (("decode", "_getdecoder"), ("encode", "_getencoder")):
        real = getattr(Image, name)

        def counting(mode, codec_name, *args, _real=real, _kind=kind, **kwargs):
            with lock:
                counts[_kind] += codec_name != "raw"
            return _real(mode, codec_name, *args, **kwargs)

        monkeypatch.setattr(Image, name, counting)
    return counts


@pytest.mark.parametrize("guard", [True, False])
def test_the_web_process_decodes_and_encodes_each_upload_once(
    settings, guard, owner_client, make_upload, ecg_jpeg, media_root, enqueue, codec_calls
):
    """The guard reads the page the upload path decoded for re-encoding, not a second decode."""
    settings.ECGSITE_OOD_GUARD = guard
    files = [make_upload("a.png"), make_upload("b.jpg", ecg_jpeg, "image/jpeg"), make_upload("c.png")]

    response = _post_json(owner_client, files)

    assert response.status_code == 201
    assert codec_calls == {"decode": 3, "encode": 3}
