"""A worker proves its model before its first job, and one whose model cannot run takes none.

Celery: each worker process loads the model and runs its self-test as it starts; a failure is
logged with the reason and the worker exits non-zero. The embedded default: the worker thread
does the same first, and while the model cannot run, jobs stay queued (the page and the API
refuse uploads meanwhile: tests/classifier/test_upload.py, tests/api/test_batches.py).
"""

from __future__ import annotations

import logging

import pytest

import worker.runtime as runtime
import worker.tasks as tasks
from classifier.models import Job
from tests.classifier.factories import BatchFactory, JobFactory
from tests.ml.helpers import unrunnable_model
from worker.embedded import EmbeddedRunner


@pytest.fixture(autouse=True)
def fresh_status(monkeypatch):
    """Each test starts with an unproven worker; the module's status is restored afterwards."""
    monkeypatch.setattr(runtime, "_status", runtime.LOADING)


@pytest.fixture
def broken_model(settings, tmp_path, monkeypatch):
    """The configured default model is one TensorFlow's plain kernels cannot run."""
    from collections import OrderedDict

    monkeypatch.setattr(runtime, "_classifiers", OrderedDict())
    settings.ECGSITE_MODEL = str(unrunnable_model(tmp_path))


@pytest.mark.slow
def test_a_model_that_cannot_run_makes_the_worker_unavailable_with_a_logged_reason(broken_model, caplog):
    with caplog.at_level(logging.CRITICAL, logger="worker.runtime"):
        status = runtime.prove_default_model()

    assert status.unavailable and runtime.model_status() is status and status.model == "unrunnable"
    assert "the model 'unrunnable' cannot run here" in status.reason
    assert "'uneven_depthwise' (DepthwiseConv2D) has unequal strides (2, 1)" in status.reason
    (record,) = caplog.records
    assert record.levelname == "CRITICAL"
    assert "this worker takes no job" in record.getMessage() and status.reason in record.getMessage()


def test_a_model_that_loads_and_answers_makes_the_worker_ready(fake_classifier):
    assert runtime.prove_default_model() == runtime.ModelStatus("ready")


@pytest.mark.slow
def test_a_celery_worker_process_stops_the_worker_when_its_model_cannot_run(broken_model, monkeypatch):
    stopped = []
    monkeypatch.setattr(tasks, "stop_worker_process", lambda: stopped.append(True))
    tasks.load_model_after_fork()
    assert stopped == [True] and runtime.model_status().unavailable


def test_a_celery_worker_process_with_a_good_model_keeps_running(fake_classifier, monkeypatch):
    monkeypatch.setattr(tasks, "stop_worker_process", lambda: pytest.fail("the worker was stopped"))
    tasks.load_model_after_fork()
    assert runtime.model_status() == runtime.ModelStatus("ready")


class Exited(BaseException):
    pass


@pytest.mark.parametrize(("process", "signalled"), [("ForkPoolWorker-1", True), ("MainProcess", False)])
def test_stopping_exits_non_zero_and_a_prefork_child_takes_its_parent_along(monkeypatch, process, signalled):
    """A prefork child asks its parent to shut down with its exit code, or billiard
    would only start another child; the solo pool's process is the worker itself."""
    import billiard.process

    kills, exits = [], []
    monkeypatch.setattr(billiard.process, "current_process", lambda: type("P", (), {"name": process})())
    monkeypatch.setattr(tasks.os, "kill", lambda pid, sig: kills.append((pid, sig)))

    def exit_(code):
        exits.append(code)
        raise Exited

    monkeypatch.setattr(tasks.os, "_exit", exit_)
    with pytest.raises(Exited):
        tasks.stop_worker_process()

    assert exits == [tasks.EX_MODEL_UNAVAILABLE] and tasks.EX_MODEL_UNAVAILABLE != 0
    assert kills == ([(tasks.os.getppid(), tasks.MODEL_UNAVAILABLE_SIGNAL)] if signalled else [])


@pytest.mark.django_db(transaction=True)
def test_the_embedded_worker_leaves_jobs_queued_while_its_model_cannot_run(
    owner, fake_classifier, classification_unavailable
):
    job = JobFactory(batch=BatchFactory(owner=owner))
    runner = EmbeddedRunner()
    try:
        runner.submit("worker.classify", [job.pk], task_id=job.task_id).result(timeout=30)
    finally:
        runner._executor.shutdown(wait=True)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (Job.Status.QUEUED, 0, "")
    assert fake_classifier.calls == 0


@pytest.mark.django_db(transaction=True)
def test_the_embedded_worker_proves_its_model_before_any_job(owner, fake_classifier):
    job = JobFactory(batch=BatchFactory(owner=owner))
    runner = EmbeddedRunner()
    try:
        runner.recover_unfinished().result(timeout=30)
        runner._executor.submit(lambda: None).result(timeout=30)
    finally:
        runner._executor.shutdown(wait=True)
    assert runtime.model_status() == runtime.ModelStatus("ready")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_the_main_process_shuts_the_worker_down_with_the_childs_exit_code(monkeypatch):
    import signal

    from celery.worker import state

    previous = signal.getsignal(tasks.MODEL_UNAVAILABLE_SIGNAL)
    monkeypatch.setattr(state, "should_stop", None)
    try:
        tasks.listen_for_unavailable_model()
        signal.raise_signal(tasks.MODEL_UNAVAILABLE_SIGNAL)
    finally:
        signal.signal(tasks.MODEL_UNAVAILABLE_SIGNAL, previous)
    assert state.should_stop == tasks.EX_MODEL_UNAVAILABLE
    with pytest.raises(SystemExit) as stopped:  # what the worker's event loop does next
        state.maybe_shutdown()
    assert stopped.value.code == tasks.EX_MODEL_UNAVAILABLE
