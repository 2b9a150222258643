"""The audit log: every upload, read, delete and token change is recorded once, with who (user,
API token or system), from where (IP, request id), what (action, object id) and the outcome.

Entries are append-only (the model refuses updates and deletes) and read-only in the admin.
"""

from __future__ import annotations

import datetime
import re
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.tokens import api_token_create
from classifier import consumers
from classifier.audit import audit_record
from classifier.models import AuditEvent, Batch, Job
from tests.classifier.factories import BatchFactory, JobFactory
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr("classifier.dispatch.enqueue_classify", mock.Mock())


@pytest.fixture
def finished_job(owner, media_root) -> Job:
    batch = BatchFactory(owner=owner, completed=timezone.now())
    return JobFactory(batch=batch, status=Job.Status.SUCCEEDED, finished=timezone.now())


@pytest.fixture
def token_and_client(owner) -> tuple[ApiToken, Client]:
    token, key = api_token_create(user=owner)
    return token, Client(headers={"authorization": f"Token {key}"})


def only(action: str, **filters) -> AuditEvent:
    return AuditEvent.objects.get(action=action, **filters)


# --- Request ids ---------------------------------------------------------------------------------


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/")["X-Request-ID"]
    second = client.get("/no-such-page/")["X-Request-ID"]

    assert REQUEST_ID.fullmatch(first)
    assert REQUEST_ID.fullmatch(second)
    assert first != second


def test_a_request_id_sent_by_the_client_is_not_taken(client):
    response = client.get("/", headers={"x-request-id": "chosen-by-client"})

    assert response["X-Request-ID"] != "chosen-by-client"


# --- Who, from where, when ----------------------------------------------------------------------


def test_a_web_upload_records_the_user_ip_request_id_and_the_new_ids(
    owner_client, owner, make_upload, media_root
):
    images = [make_upload("a.png"), make_upload("b.png"), make_upload("c.png", b"")]
    response = owner_client.post("/upload/", {"images": images})

    event = only("batch.create")
    batch = Batch.objects.get()
    assert event.actor == owner
    assert event.actor_label == owner.email
    assert event.api_token_id is None
    assert event.ip == "127.0.0.1"
    assert event.request_id == response["X-Request-ID"]
    assert (event.target_type, event.target_id, event.outcome) == ("batch", batch.pk, "success")
    # The file refused at the door is named; its jobless name is all that is kept of it.
    assert event.detail == {"jobs": sorted(batch.jobs.values_list("pk", flat=True)), "rejected": ["c.png"]}
    assert event.created.utcoffset() == datetime.timedelta(0)


def test_an_api_upload_records_the_token(token_and_client, owner, ecg_png, media_root):
    from django.core.files.uploadedfile import SimpleUploadedFile

    token, client = token_and_client
    client.post("/api/v1/batches/", {"images": [SimpleUploadedFile("a.png", ecg_png, "image/png")]})

    event = only("batch.create")
    assert event.actor == owner
    assert event.api_token_id == token.pk
    assert event.target_id == Batch.objects.get().pk


def test_a_refused_upload_records_the_refusal_and_no_image_data(owner_client, make_upload, media_root):
    owner_client.post("/upload/", {"images": [make_upload("bad.png", b"\x89PNG\r\n\x1a\n" + b"x" * 500)]})

    event = only("batch.create")
    assert event.outcome == "refused"
    assert event.target_id is None
    assert event.detail == {"files": 1, "errors": ["bad.png: is damaged or truncated and cannot be read."]}


def test_the_system_is_the_actor_of_a_management_command(owner):
    call_command("create_api_token", owner.email, stdout=mock.Mock())

    event = only("token.create")
    assert event.actor is None
    assert event.actor_label == "system"
    assert event.target_id == ApiToken.objects.get().pk


# --- Reads of results and images ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "url", "target"),
    [
        ("batch.view", "/batches/{batch}/", "batch"),
        ("image.view", "/jobs/{job}/image/", "job"),
        ("batch.view", "/api/v1/batches/{batch}/", "batch"),
        ("job.view", "/api/v1/jobs/{job}/", "job"),
        ("image.view", "/api/v1/jobs/{job}/image/", "job"),
    ],
)
def test_each_read_of_a_result_or_image_is_recorded(owner_client, owner, finished_job, action, url, target):
    response = owner_client.get(url.format(batch=finished_job.batch_id, job=finished_job.pk))

    assert response.status_code == 200
    event = only(action)
    target_id = finished_job.batch_id if target == "batch" else finished_job.pk
    assert (event.actor, event.target_type, event.target_id, event.outcome) == (
        owner,
        target,
        target_id,
        "success",
    )
    assert event.request_id == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("action", "url"),
    [
        ("batch.view", "/batches/{batch}/"),
        ("image.view", "/jobs/{job}/image/"),
        ("batch.view", "/api/v1/batches/{batch}/"),
        ("job.view", "/api/v1/jobs/{job}/"),
        ("image.view", "/api/v1/jobs/{job}/image/"),
    ],
)
def test_another_users_attempt_is_recorded_as_not_found(other_client, other_user, finished_job, action, url):
    response = other_client.get(url.format(batch=finished_job.batch_id, job=finished_job.pk))

    assert response.status_code == 404
    event = only(action)
    assert (event.actor, event.outcome) == (other_user, "not_found")


@pytest.mark.parametrize("url", ["/batches/", "/api/v1/batches/"])
def test_listing_batches_records_which_were_shown(owner_client, finished_job, url):
    owner_client.get(url)

    assert only("batch.list").detail == {"batches": [finished_job.batch_id]}


def test_a_websocket_batch_subscribe_is_recorded(owner, other_user, finished_job):
    assert consumers._one_batch(owner, finished_job.batch_id, "10.1.2.3") is not None
    assert consumers._one_batch(other_user, finished_job.batch_id, "10.9.9.9") is None

    mine, theirs = AuditEvent.objects.filter(action="batch.view").order_by("id")
    assert (mine.actor, mine.ip, mine.outcome, mine.detail) == (
        owner,
        "10.1.2.3",
        "success",
        {"via": "websocket"},
    )
    assert (theirs.actor, theirs.outcome) == (other_user, "not_found")


def test_staff_reads_in_the_admin_are_recorded(staff_client, staff, finished_job):
    staff_client.get(reverse("admin:classifier_job_change", args=[finished_job.pk]))
    staff_client.get(reverse("admin:classifier_batch_change", args=[finished_job.batch_id]))
    staff_client.get(reverse("admin:classifier_job_image", args=[finished_job.pk]))

    for action in ("job.view", "batch.view", "image.view"):
        event = only(action)
        assert (event.actor, event.detail) == (staff, {"via": "admin"})


# --- Deletes and tokens ---------------------------------------------------------------------------


def test_deleting_a_batch_records_it_and_its_jobs(token_and_client, finished_job):
    batch_id, job_id = finished_job.batch_id, finished_job.pk
    _token, client = token_and_client

    assert client.delete(f"/api/v1/batches/{batch_id}/").status_code == 204

    event = only("batch.delete")
    assert (event.target_id, event.outcome, event.detail) == (batch_id, "success", {"jobs": [job_id]})


def test_a_refused_delete_is_recorded_as_refused(token_and_client, owner, media_root):
    busy = JobFactory(batch=BatchFactory(owner=owner)).batch
    _token, client = token_and_client

    assert client.delete(f"/api/v1/batches/{busy.pk}/").status_code == 409

    assert only("batch.delete").outcome == "refused"


def test_creating_and_revoking_a_token_on_the_account_page_is_recorded(owner_client, owner):
    owner_client.post("/accounts/tokens/", {"name": "script"})
    token = ApiToken.objects.get()
    owner_client.post(f"/accounts/tokens/{token.pk}/revoke/")

    assert (only("token.create").target_id, only("token.create").actor) == (token.pk, owner)
    assert (only("token.revoke").target_id, only("token.revoke").outcome) == (token.pk, "success")


# Token changes are announced by accounts (accounts.signals) and recorded here: every door's
# entry, exactly as each door wrote it itself before accounts stopped importing classifier.


def test_revoking_a_token_that_is_not_active_is_recorded_as_not_found(owner_client):
    owner_client.post("/accounts/tokens/999/revoke/")

    event = only("token.revoke")
    assert (event.target_id, event.outcome, event.actor_label) == (999, "not_found", "alice@example.com")
    assert event.detail == {}
    assert REQUEST_ID.fullmatch(event.request_id)


def test_a_token_made_by_a_management_command_names_the_door_and_the_account(owner):
    call_command("create_api_token", owner.email, stdout=mock.Mock())

    event = only("token.create")
    assert event.detail == {"via": "command", "for": owner.email}
    assert (event.ip, event.request_id) == (None, "")


def test_tokens_made_and_revoked_in_the_admin_name_the_administrator_and_the_door(staff, owner):
    admin = Client()
    admin.force_login(staff)

    admin.post(reverse("admin:accounts_apitoken_add"), {"user": owner.pk, "name": "ops"})
    token = ApiToken.objects.get()
    admin.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )

    created, revoked = only("token.create"), only("token.revoke")
    assert (created.actor, created.target_id, created.ip) == (staff, token.pk, "127.0.0.1")
    assert created.detail == {"via": "admin", "for": owner.email}
    assert (revoked.actor, revoked.target_id, revoked.outcome) == (staff, token.pk, "success")
    assert revoked.detail == {"via": "admin"}


def test_a_password_change_records_each_revoked_token_as_done_by_the_user(owner):
    tokens = sorted(api_token_create(user=owner)[0].pk for _ in range(2))
    client = Client()
    client.force_login(owner)

    client.post(
        "/accounts/password/change/",
        {
            "oldpassword": PASSWORD,
            "password1": "another-long-passphrase-77",
            "password2": "another-long-passphrase-77",
        },
    )

    events = AuditEvent.objects.filter(action="token.revoke").order_by("target_id")
    assert [event.target_id for event in events] == tokens
    for event in events:
        assert (event.actor, event.ip, event.detail) == (owner, "127.0.0.1", {"reason": "password changed"})
        assert REQUEST_ID.fullmatch(event.request_id)


def test_a_password_set_by_an_administrator_records_the_revocation_as_the_users(staff, owner):
    token, _key = api_token_create(user=owner)
    admin = Client()
    admin.force_login(staff)

    admin.post(
        f"/admin/accounts/user/{owner.pk}/password/",
        {"password1": "another-long-passphrase-77", "password2": "another-long-passphrase-77"},
    )

    event = only("token.revoke")
    assert (event.target_id, event.actor, event.ip) == (token.pk, owner, None)
    assert event.detail == {"reason": "password set by an administrator"}


def test_signing_in_and_out_and_a_failed_sign_in_are_recorded(owner):
    client = Client()
    client.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
    client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    client.post("/accounts/logout/")

    assert only("login.failed").detail == {"login": owner.email}
    assert only("login").actor == owner
    assert only("logout").actor == owner


# --- Append-only ------------------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_through_save(owner):
    event = audit_record(action="batch.view", actor=owner, target_type="batch", target_id=1)

    event.outcome = "not_found"
    with pytest.raises(PermissionError):
        event.save()

    assert AuditEvent.objects.get().outcome == "success"


def test_entries_cannot_be_deleted_or_bulk_updated(owner):
    event = audit_record(action="batch.view", actor=owner)

    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(outcome="failed")

    assert AuditEvent.objects.filter(pk=event.pk, outcome="success").exists()


def test_a_new_entry_with_an_old_id_does_not_overwrite_it(owner):
    event = audit_record(action="batch.view", actor=owner)

    with pytest.raises(IntegrityError):
        AuditEvent(pk=event.pk, action="batch.delete", actor_label="forger").save()


def test_an_entry_outlives_its_users_account(owner):
    audit_record(action="batch.view", actor=owner, target_type="batch", target_id=7)

    User.objects.filter(pk=owner.pk).delete()

    event = AuditEvent.objects.get()
    assert (event.actor, event.actor_label, event.target_id) == (None, "alice@example.com", 7)


# --- Admin: read-only, filterable ------------------------------------------------------------------


@pytest.fixture
def some_events(owner, other_user) -> list[AuditEvent]:
    return [
        audit_record(action="batch.create", actor=owner, target_type="batch", target_id=1),
        audit_record(action="image.view", actor=owner, target_type="job", target_id=2),
        audit_record(
            action="image.view", actor=other_user, target_type="job", target_id=2, outcome="not_found"
        ),
    ]


def test_staff_read_the_log_filtered_by_user_action_outcome_and_date(staff_client, owner, some_events):
    url = reverse("admin:classifier_auditevent_changelist")
    today = timezone.now()

    def count(**query) -> int:
        response = staff_client.get(url, query)
        assert response.status_code == 200
        return response.context["cl"].result_count

    assert count(action="image.view") == 2
    assert count(actor__id__exact=owner.pk) == 2
    assert count(action="image.view", outcome="not_found") == 1
    assert count(created__year=today.year, created__month=today.month, created__day=today.day) >= 3


def test_the_admin_offers_no_add_change_or_delete(staff_client, some_events):
    event = some_events[0]
    change_url = reverse("admin:classifier_auditevent_change", args=[event.pk])

    assert staff_client.get(reverse("admin:classifier_auditevent_add")).status_code == 403
    assert staff_client.get(reverse("admin:classifier_auditevent_delete", args=[event.pk])).status_code == 403
    page = staff_client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert staff_client.post(change_url, {"outcome": "failed"}).status_code == 403
    changelist = staff_client.get(reverse("admin:classifier_auditevent_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert AuditEvent.objects.get(pk=event.pk).outcome == "success"


def test_a_non_staff_user_cannot_read_the_log(owner_client, some_events):
    response = owner_client.get(reverse("admin:classifier_auditevent_changelist"))

    assert response.status_code == 302
