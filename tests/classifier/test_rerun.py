"""Re-running jobs on another model version: services and the admin action.

Staff with the change-job permission may re-run; other staff only view; users never get in.
"""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from accounts.models import User
from classifier import services
from classifier.models import AuditEvent, Batch, Job, ModelVersion
from ml.models import ModelIdentity
from tests.classifier.factories import BatchFactory, JobFactory, ModelVersionFactory, PredictionFactory
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions() -> dict[str, ModelVersion]:
    return {"old": ModelVersionFactory(name="hybrid-v1"), "new": ModelVersionFactory(name="cnn-v2")}


@pytest.fixture
def batch(owner) -> Batch:
    from django.utils import timezone

    return BatchFactory(owner=owner, completed=timezone.now())


def _finished(batch: Batch, version: ModelVersion, status: str = Job.Status.SUCCEEDED, **fields) -> Job:
    job = JobFactory(batch=batch, status=status, model_version=version, attempts=2, **fields)
    if status == Job.Status.SUCCEEDED:
        PredictionFactory(job=job, model_version=version, label="mi")
    return job


# services


def test_job_rerun_queues_the_job_again_on_the_requested_model(
    batch, versions, staff, enqueue, django_capture_on_commit_callbacks
):
    job = _finished(batch, versions["old"], status=Job.Status.FAILED, error="boom")
    old_task_id = job.task_id

    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    assert (job.status, job.attempts, job.error, job.requested_model) == ("queued", 0, "", versions["new"])
    assert (job.started, job.finished) == (None, None)
    assert job.enqueued_at is not None
    assert job.task_id != old_task_id
    enqueue.assert_called_once_with(job_id=job.pk, task_id=job.task_id)


def test_job_rerun_keeps_the_earlier_predictions(batch, versions, staff, enqueue):
    job = _finished(batch, versions["old"])

    services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    assert list(job.predictions.values_list("model_version__name", flat=True)) == ["hybrid-v1"]


def test_job_rerun_is_not_enqueued_until_the_transaction_commits(
    batch, versions, staff, enqueue, django_capture_on_commit_callbacks
):
    job = _finished(batch, versions["old"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    assert len(callbacks) == 1
    enqueue.assert_not_called()


def test_job_rerun_reopens_the_batch(batch, versions, staff, enqueue):
    job = _finished(batch, versions["old"])

    services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    batch.refresh_from_db()
    assert batch.completed is None


def test_job_rerun_writes_an_audit_event_naming_the_model(batch, versions, staff, enqueue):
    job = _finished(batch, versions["old"])

    services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    event = AuditEvent.objects.get(action=AuditEvent.Action.JOB_RERUN)
    assert (event.actor, event.target_type, event.target_id, event.outcome) == (
        staff,
        "job",
        job.pk,
        "success",
    )
    assert event.detail == {"model_version": "cnn-v2"}


@pytest.mark.parametrize("status", [Job.Status.QUEUED, Job.Status.RUNNING])
def test_job_rerun_refuses_a_job_still_in_progress(batch, versions, staff, enqueue, status):
    job = JobFactory(batch=batch, status=status, attempts=1)

    with pytest.raises(services.JobNotFinished):
        services.job_rerun(job=job, model_version=versions["new"], actor=staff)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.requested_model) == (status, 1, None)
    assert AuditEvent.objects.get(action=AuditEvent.Action.JOB_RERUN).outcome == "refused"
    enqueue.assert_not_called()


def test_batch_rerun_queues_the_finished_jobs_and_skips_the_running_one(
    batch, versions, staff, enqueue, django_capture_on_commit_callbacks, settings
):
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 1  # a message per job, to see which were queued
    done = _finished(batch, versions["old"])
    failed = _finished(batch, versions["old"], status=Job.Status.FAILED)
    running = JobFactory(batch=batch, status=Job.Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.batch_rerun(batch=batch, model_version=versions["new"], actor=staff)

    assert (result.rerun, result.skipped) == ([done.pk, failed.pk], [running.pk])
    assert sorted(call.kwargs["job_id"] for call in enqueue.call_args_list) == [done.pk, failed.pk]
    assert set(Job.objects.filter(requested_model=versions["new"]).values_list("pk", flat=True)) == {
        done.pk,
        failed.pk,
    }


def test_a_rerun_on_a_model_that_already_predicted_the_job_keeps_that_prediction_and_succeeds(
    batch, versions, staff, fake_classifier, django_capture_on_commit_callbacks
):
    identity = ModelIdentity(
        name=fake_classifier.name,
        architecture=fake_classifier.architecture,
        file_sha256=fake_classifier.file_sha256,
        card={},
    )
    fake_version = services.model_version_register(identity=identity)
    job = _finished(batch, fake_version)  # predicted "mi" by fake-v1 already
    fake_classifier.label = "normal"

    with django_capture_on_commit_callbacks(execute=True):
        services.job_rerun(job=job, model_version=fake_version, actor=staff)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert list(job.predictions.values_list("label", flat=True)) == ["mi"]
    batch.refresh_from_db()
    assert batch.completed is not None


# admin action


def _action(client: Client, model: str, action_data: dict) -> object:
    return client.post(reverse(f"admin:classifier_{model}_changelist"), action_data)


def _job_action_data(*jobs: Job, **extra: object) -> dict:
    return {
        "action": "rerun_on_model_version",
        helpers.ACTION_CHECKBOX_NAME: [job.pk for job in jobs],
        **extra,
    }


def test_the_job_action_shows_a_page_listing_the_model_versions(staff_client, batch, versions):
    job = _finished(batch, versions["old"])

    response = _action(staff_client, "job", _job_action_data(job))

    assert response.status_code == 200
    assert response.templates[0].name == "admin/classifier/rerun.html"
    page = response.content.decode()
    assert "cnn-v2" in page and "hybrid-v1" in page
    assert "csrfmiddlewaretoken" in page
    assert f'name="{helpers.ACTION_CHECKBOX_NAME}" value="{job.pk}"' in page
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED  # nothing happened yet


def test_choosing_a_model_version_reruns_the_jobs_and_returns_to_the_list(
    staff_client, batch, versions, enqueue, django_capture_on_commit_callbacks
):
    job = _finished(batch, versions["old"])

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            staff_client, "job", _job_action_data(job, apply="1", model_version=versions["new"].pk)
        )

    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.requested_model) == (Job.Status.QUEUED, versions["new"])
    enqueue.assert_called_once_with(job_id=job.pk, task_id=job.task_id)
    messages = [str(message) for message in response.wsgi_request._messages]
    assert messages == ["Queued 1 job(s) again on cnn-v2."]


def test_the_action_runs_the_jobs_on_the_chosen_model(
    staff_client, batch, versions, monkeypatch, django_capture_on_commit_callbacks
):
    from collections import OrderedDict

    import worker.runtime
    from tests.conftest import FakeClassifier

    new = versions["new"]
    monkeypatch.setattr(worker.runtime, "_classifiers", OrderedDict())
    monkeypatch.setattr(
        worker.runtime,
        "_load",
        lambda path: FakeClassifier(name=path.stem, file_sha256=new.file_sha256, label="normal"),
    )
    job = _finished(batch, versions["old"])

    with django_capture_on_commit_callbacks(execute=True):
        _action(staff_client, "job", _job_action_data(job, apply="1", model_version=new.pk))

    job.refresh_from_db()
    assert (job.status, job.model_version) == (Job.Status.SUCCEEDED, new)
    assert [p.model_version.name for p in job.predictions.order_by("-created", "-pk")] == [
        "cnn-v2",
        "hybrid-v1",
    ]


def test_the_batch_action_reruns_every_finished_job_of_the_chosen_batches(
    staff_client, batch, versions, enqueue, django_capture_on_commit_callbacks, settings
):
    settings.ECGSITE_CLASSIFY_BATCH_SIZE = 1  # a message per job, to see which were queued
    jobs = [_finished(batch, versions["old"]), _finished(batch, versions["old"], status=Job.Status.FAILED)]
    untouched = _finished(BatchFactory(owner=batch.owner), versions["old"])
    data = {
        "action": "rerun_on_model_version",
        helpers.ACTION_CHECKBOX_NAME: [batch.pk],
    }

    page = _action(staff_client, "batch", data)
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(staff_client, "batch", {**data, "apply": "1", "model_version": versions["new"].pk})

    assert page.status_code == 200 and "cnn-v2" in page.content.decode()
    assert response.status_code == 302
    assert sorted(call.kwargs["job_id"] for call in enqueue.call_args_list) == [job.pk for job in jobs]
    untouched.refresh_from_db()
    assert untouched.status == Job.Status.SUCCEEDED


def test_an_unknown_model_version_shows_the_page_again_and_changes_nothing(
    staff_client, batch, versions, enqueue
):
    job = _finished(batch, versions["old"])

    response = _action(staff_client, "job", _job_action_data(job, apply="1", model_version=99999))

    assert response.status_code == 200
    assert response.context["form"].errors
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    enqueue.assert_not_called()


def test_staff_without_the_change_job_permission_are_not_offered_the_action(batch, versions, enqueue):
    viewer = User.objects.create_user(email="dana@example.com", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client = Client()
    client.force_login(viewer)
    job = _finished(batch, versions["old"])

    listing = client.get(reverse("admin:classifier_job_changelist"))
    response = _action(client, "job", _job_action_data(job, apply="1", model_version=versions["new"].pk))

    assert listing.status_code == 200
    assert "rerun_on_model_version" not in listing.content.decode()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert response.status_code in (200, 302)
    enqueue.assert_not_called()


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(owner_client, batch, versions, enqueue):
    job = _finished(batch, versions["old"])

    response = _action(
        owner_client, "job", _job_action_data(job, apply="1", model_version=versions["new"].pk)
    )

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    enqueue.assert_not_called()


def test_the_action_needs_a_csrf_token(staff, batch, versions, enqueue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    job = _finished(batch, versions["old"])

    response = _action(client, "job", _job_action_data(job, apply="1", model_version=versions["new"].pk))

    assert response.status_code == 403
    enqueue.assert_not_called()
