"""classifier.services: each write checks the state it expects, so repeats and late calls are safe."""

from __future__ import annotations

import pytest
from django.utils import timezone

from classifier import services
from classifier.models import Batch, Job, ModelVersion, Prediction
from classifier.reaper import attempts_exhausted_message
from ml.models import ModelIdentity
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionFactory,
    probabilities_for,
)
from tests.conftest import render_photo_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


@pytest.fixture
def job(batch) -> Job:
    return JobFactory(batch=batch)


@pytest.fixture
def version() -> ModelVersion:
    return ModelVersionFactory(name="hybrid-v1")


def _running(job: Job, task_id: str = "task-1") -> Job:
    claimed = services.job_claim(job_id=job.pk, task_id=task_id)
    assert claimed is not None
    return claimed


# batch_create and the embedded start-up recovery stamp when a job goes to the broker


def test_batch_create_stamps_each_job_with_when_it_goes_to_the_broker(owner, make_upload, monkeypatch):
    monkeypatch.setattr("classifier.dispatch.enqueue_classify", lambda **kwargs: None)
    before = timezone.now()

    batch = services.batch_create(owner=owner, files=[make_upload("a.png"), make_upload("b.png")])

    stamps = [job.enqueued_at for job in batch.jobs.all()]
    assert len(stamps) == 2
    assert all(stamp is not None and before <= stamp <= timezone.now() for stamp in stamps)


def test_batch_create_remembers_which_upload_was_a_photo(owner, make_upload, monkeypatch):
    monkeypatch.setattr("classifier.dispatch.enqueue_classify", lambda **kwargs: None)
    photo = make_upload("phone.jpg", render_photo_bytes("normal", 1), "image/jpeg")

    batch = services.batch_create(owner=owner, files=[make_upload("scan.png"), photo])

    assert [(job.original_name, job.photographed) for job in batch.jobs.all()] == [
        ("scan.png", False),
        ("phone.jpg", True),
    ]


@pytest.mark.django_db(transaction=True)
def test_batch_create_writes_its_audit_record_before_any_job_reaches_the_queue(
    owner, make_upload, monkeypatch
):
    """The record is part of the batch's transaction: when the jobs are handed over (on
    commit) it exists, so the request writes nothing a started worker could contend with."""
    from classifier.models import AuditEvent

    seen_at_hand_off: list[list[tuple]] = []

    def hand_off(**kwargs):
        seen_at_hand_off.append(list(AuditEvent.objects.values_list("action", "target_id", "actor_id")))

    monkeypatch.setattr("classifier.dispatch.enqueue_classify", hand_off)

    batch = services.batch_create(owner=owner, files=[make_upload("a.png"), make_upload("b.png")])

    assert seen_at_hand_off == [[("batch.create", batch.pk, owner.pk)]]  # one message for both jobs
    event = AuditEvent.objects.get()
    assert event.detail == {"jobs": sorted(batch.jobs.values_list("pk", flat=True)), "rejected": []}


def test_a_batch_whose_audit_record_fails_leaves_no_row_or_file(owner, make_upload, monkeypatch, media_root):
    def refuse(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr("classifier.services.audit_record", refuse)
    monkeypatch.setattr("classifier.dispatch.enqueue_classify", lambda **kwargs: pytest.fail("enqueued"))

    with pytest.raises(RuntimeError, match="audit table unavailable"):
        services.batch_create(owner=owner, files=[make_upload("a.png")])

    assert not Batch.objects.exists() and not Job.objects.exists()
    assert stored_files(media_root) == []


def test_recovering_an_orphaned_job_stamps_it_enqueued_again(batch):
    orphan = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="dead-process", attempts=1)
    before = timezone.now()

    [(job_id, _task_id)] = services.jobs_requeue_orphaned()

    orphan.refresh_from_db()
    assert job_id == orphan.pk
    assert orphan.status == Job.Status.QUEUED
    assert orphan.enqueued_at is not None and orphan.enqueued_at >= before


# job_claim


def test_claim_moves_a_queued_job_to_running_and_counts_the_attempt(job):
    claimed = services.job_claim(job_id=job.pk, task_id="task-1")

    job.refresh_from_db()
    assert claimed.pk == job.pk
    assert (job.status, job.attempts, job.task_id) == (Job.Status.RUNNING, 1, "task-1")
    assert job.started is not None


def test_claim_by_another_delivery_of_a_running_job_returns_none(job):
    _running(job, "task-1")

    assert services.job_claim(job_id=job.pk, task_id="task-2") is None
    job.refresh_from_db()
    assert (job.status, job.attempts, job.task_id) == (Job.Status.RUNNING, 1, "task-1")


def test_redelivery_with_the_same_task_id_resumes_its_running_job(job):
    _running(job, "task-1")

    resumed = services.job_claim(job_id=job.pk, task_id="task-1")

    assert resumed is not None
    assert (resumed.status, resumed.attempts) == (Job.Status.RUNNING, 2)


@pytest.mark.parametrize("status", [Job.Status.SUCCEEDED, Job.Status.FAILED])
def test_a_finished_job_is_never_claimed_again(batch, status):
    job = JobFactory(batch=batch, status=status, task_id="task-1", attempts=1)

    assert services.job_claim(job_id=job.pk, task_id="task-1") is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (status, 1)


def test_claim_of_a_job_that_used_up_its_attempts_fails_it_with_a_clear_error(batch, settings):
    settings.ECGSITE_MAX_ATTEMPTS = 2
    job = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="task-1", attempts=2)

    assert services.job_claim(job_id=job.pk, task_id="task-1") is None
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "We could not classify this image after 2 attempts. Please upload it again."
    assert job.error == attempts_exhausted_message(2)  # the reaper's words, from one place
    assert job.finished is not None


def test_claim_allows_the_last_attempt_below_the_limit(batch, settings):
    settings.ECGSITE_MAX_ATTEMPTS = 2
    job = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="task-1", attempts=1)

    claimed = services.job_claim(job_id=job.pk, task_id="task-1")

    assert claimed is not None
    assert claimed.attempts == 2


# prediction_record


def test_prediction_record_stores_the_prediction_and_marks_the_job_succeeded(job, version):
    running = _running(job)

    result = services.prediction_record(
        job=running,
        model_version=version,
        label="mi",
        probabilities=probabilities_for("mi"),
        inference_ms=8.5,
    )

    prediction = Prediction.objects.get(job=job)
    assert (prediction.label, prediction.inference_ms, prediction.model_version) == ("mi", 8.5, version)
    assert prediction.probabilities == pytest.approx(probabilities_for("mi"))
    assert result.status == Job.Status.SUCCEEDED
    assert result.model_version == version
    assert result.finished is not None


def test_prediction_record_called_twice_keeps_exactly_one_prediction(job, version):
    running = _running(job)
    for label in ("mi", "normal"):
        services.prediction_record(
            job=running,
            model_version=version,
            label=label,
            probabilities=probabilities_for(label),
            inference_ms=1,
        )

    assert list(Prediction.objects.filter(job=job).values_list("label", flat=True)) == ["mi"]


def test_prediction_record_never_moves_a_failed_job_back_to_succeeded(job, version):
    running = _running(job)
    services.job_fail(job_id=job.pk, error="Gave up.")

    result = services.prediction_record(
        job=running, model_version=version, label="mi", probabilities=probabilities_for("mi"), inference_ms=1
    )

    assert (result.status, result.error) == (Job.Status.FAILED, "Gave up.")


def test_prediction_record_for_a_finished_job_stores_nothing_and_keeps_the_first(job, version):
    running = _running(job)
    services.prediction_record(
        job=running, model_version=version, label="mi", probabilities=probabilities_for("mi"), inference_ms=1
    )
    other_version = ModelVersionFactory(name="cnn-v1")

    result = services.prediction_record(
        job=running,
        model_version=other_version,
        label="normal",
        probabilities=probabilities_for("normal"),
        inference_ms=1,
    )

    assert result.status == Job.Status.SUCCEEDED
    assert result.model_version == version
    assert list(Prediction.objects.filter(job=job).values_list("model_version__name", flat=True)) == [
        version.name
    ]


@pytest.mark.parametrize(
    "probabilities",
    [
        {"normal": 0.5, "mi": 0.5, "history_mi": 0.0},
        {"normal": 0.25, "mi": 0.25, "history_mi": 0.25, "abnormal": 0.125, "other": 0.125},
        {"normal": 0.25, "mi": 0.25, "history_mi": 0.25, "other": 0.25},
    ],
    ids=["a key missing", "an extra key", "a wrong key"],
)
def test_prediction_record_refuses_probabilities_without_exactly_the_four_classes(
    job, version, probabilities
):
    running = _running(job)

    with pytest.raises(ValueError, match="exactly the keys"):
        services.prediction_record(
            job=running, model_version=version, label="normal", probabilities=probabilities, inference_ms=1
        )
    assert not Prediction.objects.exists()


def test_prediction_record_refuses_probabilities_that_do_not_sum_to_one(job, version):
    running = _running(job)

    with pytest.raises(ValueError, match="sum to 1"):
        services.prediction_record(
            job=running,
            model_version=version,
            label="normal",
            probabilities={"normal": 0.5, "mi": 0.3, "history_mi": 0.3, "abnormal": 0.2},
            inference_ms=1,
        )
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING


def test_prediction_record_refuses_an_unknown_label(job, version):
    running = _running(job)

    with pytest.raises(ValueError, match="label must be one of"):
        services.prediction_record(
            job=running,
            model_version=version,
            label="sinus",
            probabilities=probabilities_for("mi"),
            inference_ms=1,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("text"), "has the keys"),
        (lambda e: e.update(weights=[[0.25] * 4] * 4), "weights are 4 x 32"),
        (lambda e: e["weights"][0].__setitem__(0, -1.0), "finite values >= 0"),
        (lambda e: e["weights"][0].__setitem__(0, 5.0), "sum to 1"),
    ],
)
def test_prediction_record_refuses_an_explanation_not_of_the_stored_shape(job, version, change, message):
    from tests.conftest import fixed_explanation

    explanation = fixed_explanation()
    change(explanation)
    running = _running(job)

    with pytest.raises(ValueError, match=message):
        services.prediction_record(
            job=running,
            model_version=version,
            label="mi",
            probabilities=probabilities_for("mi"),
            inference_ms=1,
            explanation=explanation,
        )
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING


# job_fail


def test_job_fail_marks_an_unfinished_job_failed_with_the_message(job):
    failed = services.job_fail(job_id=job.pk, error="The file is empty.")

    assert (failed.status, failed.error) == (Job.Status.FAILED, "The file is empty.")
    assert failed.finished is not None


def test_job_fail_does_not_overwrite_a_succeeded_job(job, version):
    running = _running(job)
    services.prediction_record(
        job=running, model_version=version, label="mi", probabilities=probabilities_for("mi"), inference_ms=1
    )

    result = services.job_fail(job_id=job.pk, error="Too late.")

    assert (result.status, result.error) == (Job.Status.SUCCEEDED, "")


# batch_complete_if_done


def test_batch_is_not_completed_while_a_job_is_unfinished(batch):
    JobFactory(batch=batch, status=Job.Status.SUCCEEDED)
    JobFactory(batch=batch, status=Job.Status.RUNNING)

    assert services.batch_complete_if_done(batch_id=batch.pk) is False
    batch.refresh_from_db()
    assert batch.completed is None


def test_batch_completion_is_reported_true_exactly_once(batch):
    JobFactory(batch=batch, status=Job.Status.SUCCEEDED)
    JobFactory(batch=batch, status=Job.Status.FAILED)

    results = [services.batch_complete_if_done(batch_id=batch.pk) for _ in range(3)]

    assert results == [True, False, False]
    batch.refresh_from_db()
    assert batch.completed is not None


# model_version_register


def _identity(name: str = "hybrid-v1", sha: str = "a" * 64) -> ModelIdentity:
    return ModelIdentity(
        name=name, architecture="hybrid", file_sha256=sha, card={"metrics": {"macro_f1": 0.8}}
    )


def test_model_version_register_creates_the_version_with_the_card_metrics():
    version = services.model_version_register(identity=_identity())

    assert (version.name, version.architecture, version.file_sha256) == ("hybrid-v1", "hybrid", "a" * 64)
    assert (version.metrics["name"], version.metrics["macro_f1"]) == ("hybrid-v1", 0.8)


def test_model_version_register_returns_the_existing_row_for_the_same_model():
    first = services.model_version_register(identity=_identity())
    second = services.model_version_register(identity=_identity())

    assert first.pk == second.pk
    assert ModelVersion.objects.count() == 1


def test_model_version_register_refuses_a_same_name_model_with_another_file():
    services.model_version_register(identity=_identity(sha="a" * 64))

    with pytest.raises(ValueError, match="give a retrained model a new name"):
        services.model_version_register(identity=_identity(sha="b" * 64))
    assert ModelVersion.objects.get().file_sha256 == "a" * 64


# jobs_requeue_orphaned


def test_requeue_orphaned_puts_running_and_queued_jobs_back_with_fresh_task_ids(batch):
    running = JobFactory(batch=batch, status=Job.Status.RUNNING, task_id="old-running", attempts=1)
    queued = JobFactory(batch=batch, status=Job.Status.QUEUED, task_id="old-queued")

    requeued = dict(services.jobs_requeue_orphaned())

    assert set(requeued) == {running.pk, queued.pk}
    running.refresh_from_db()
    queued.refresh_from_db()
    assert (running.status, running.task_id) == (Job.Status.QUEUED, requeued[running.pk])
    assert (queued.status, queued.task_id) == (Job.Status.QUEUED, requeued[queued.pk])
    assert not {"old-running", "old-queued"} & set(requeued.values())
    assert running.attempts == 1  # attempts stay counted, so a crashing image still runs out


def test_requeue_orphaned_leaves_finished_jobs_alone(batch, version):
    succeeded = JobFactory(batch=batch, status=Job.Status.SUCCEEDED, task_id="done")
    PredictionFactory(job=succeeded, model_version=version)
    failed = JobFactory(batch=batch, status=Job.Status.FAILED, task_id="failed")

    assert services.jobs_requeue_orphaned() == []
    succeeded.refresh_from_db()
    failed.refresh_from_db()
    assert (succeeded.status, succeeded.task_id) == (Job.Status.SUCCEEDED, "done")
    assert (failed.status, failed.task_id) == (Job.Status.FAILED, "failed")


def test_prediction_record_for_a_job_that_failed_meanwhile_stores_no_prediction(job, version):
    running = _running(job)
    services.job_fail(job_id=job.pk, error="The image could not be read.")

    result = services.prediction_record(
        job=running, model_version=version, label="mi", probabilities=probabilities_for("mi"), inference_ms=1
    )

    assert result.status == Job.Status.FAILED
    assert not Prediction.objects.filter(job=job).exists()
