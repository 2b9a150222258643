"""ECGSITE_MEDIA_STORAGE=s3: uploads live in an S3 bucket, so web and workers on different
machines share nothing but it.

The S3 server here is moto's (an in-process, S3-compatible server on a loopback port, pinned in
requirements-dev.txt); django-storages talks to it over HTTP exactly as it would to AWS or MinIO.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest
from django.conf import settings as django_settings
from moto.server import ThreadedMotoServer

from classifier import services
from classifier.models import Job
from tests.conftest import stored_files
from tests.e2e.livestack import free_port
from worker.tasks import classify

BUCKET = "ecgsite-media-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _settings_in_a_fresh_process(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import json; from ecgsite import settings; print(json.dumps(settings.STORAGES['default']))"
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ECGSITE_MEDIA"))}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_environment_chooses_the_s3_backend_with_private_objects():
    result = _settings_in_a_fresh_process(
        {
            "ECGSITE_MEDIA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": "ecg-media",
            "AWS_S3_ENDPOINT_URL": "http://minio:9000",
            "AWS_S3_REGION_NAME": "eu-west-1",
        }
    )
    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert (options["bucket_name"], options["endpoint_url"], options["region_name"]) == (
        "ecg-media",
        "http://minio:9000",
        "eu-west-1",
    )
    assert (options["default_acl"], options["file_overwrite"]) == ("private", False)


def test_local_storage_is_the_default():
    result = _settings_in_a_fresh_process({})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["BACKEND"] == "django.core.files.storage.FileSystemStorage"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ECGSITE_MEDIA_STORAGE": "s3"}, "needs AWS_STORAGE_BUCKET_NAME"),
        ({"ECGSITE_MEDIA_STORAGE": "ftp"}, "must be 'local' or 's3'"),
    ],
)
def test_a_storage_it_cannot_use_stops_the_start_with_a_reason(env, message):
    result = _settings_in_a_fresh_process(env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.fixture
def s3_bucket(settings, monkeypatch):
    """A moto S3 server with an empty bucket, and the default storage pointed at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_lower(CREDENTIALS))
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **django_settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "default_acl": "private",
                "file_overwrite": False,
                "querystring_auth": True,
            },
        },
    }
    yield client
    server.stop()


def _lower(credentials: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": "testing"}


def _keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.mark.django_db
def test_an_upload_is_stored_in_the_bucket_read_from_it_by_the_worker_and_deleted_with_its_batch(
    s3_bucket,
    owner,
    owner_client,
    make_upload,
    media_root,
    fake_classifier,
    sent,
    enqueue,
    django_capture_on_commit_callbacks,
):
    response = owner_client.post(
        "/upload/", {"images": [make_upload("a.png")]}, headers={"accept": "application/json"}
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    (key,) = _keys(s3_bucket)
    assert key == job.image.name
    assert stored_files(media_root) == []  # nothing on the web process's disk

    grants = s3_bucket.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
    assert all(grant["Grantee"].get("URI", "").endswith("AllUsers") is False for grant in grants)

    classify.apply(args=[job.pk], task_id=job.task_id)  # the worker opens the page from the bucket
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert fake_classifier.pages_read == 1

    served = owner_client.get(f"/jobs/{job.pk}/image/")
    assert served.status_code == 200
    body = b"".join(served.streaming_content) if served.streaming else served.content
    assert body == s3_bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    with django_capture_on_commit_callbacks(execute=True):  # the files go once the rows have gone
        services.batch_delete(batch=job.batch)
    assert _keys(s3_bucket) == []
