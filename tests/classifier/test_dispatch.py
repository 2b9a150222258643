"""classifier.dispatch: one call, three transports, tasks sent by name. The core never imports
the worker: the worker registers its in-process runners with the core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from classifier import dispatch
from ecgsite.celery import app as celery_app
from worker.embedded import EmbeddedRunner
from worker.inline import InlineRunner

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A local runner that records what it is handed."""

    def __init__(self, unavailable: str = "") -> None:
        self.submitted: list[tuple[str, list, str | None, float]] = []
        self.unavailable = unavailable

    def submit(self, name, args, *, task_id=None, countdown=0.0):
        self.submitted.append((name, list(args), task_id, countdown))

    def model_unavailable(self) -> str:
        return self.unavailable


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list, str | None, float | None]]:
    """What the Celery app would send to the broker."""
    sent: list[tuple[str, list, str | None, float | None]] = []
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args, task_id=None, countdown=None: sent.append((name, args, task_id, countdown)),
    )
    return sent


@pytest.fixture
def recorder(monkeypatch, settings) -> Recorder:
    """The embedded transport, with a recording runner in place of the worker thread."""
    settings.ECGSITE_TASK_RUNNER = "embedded"
    runner = Recorder()
    monkeypatch.setitem(dispatch._local_runners, "embedded", runner)
    return runner


def test_the_task_names_are_those_the_worker_registers():
    names = [dispatch.TASK_CLASSIFY, dispatch.TASK_DELIVER_WEBHOOK]
    names += [dispatch.TASK_SWEEP_WEBHOOKS, dispatch.TASK_REAP_STALE_JOBS]
    assert all(name in celery_app.tasks for name in names)


def test_the_celery_runner_sends_the_task_by_name_with_the_jobs_task_id(settings, published):
    settings.ECGSITE_TASK_RUNNER = "celery"

    dispatch.enqueue_classify(job_id=42, task_id="abc123")

    assert published == [("worker.classify", [42], "abc123", None)]


def test_the_embedded_runner_gets_the_task_by_name(recorder, published):
    dispatch.enqueue_classify(job_id=42, task_id="abc123")

    assert recorder.submitted == [("worker.classify", [42], "abc123", 0.0)]
    assert published == []


def test_the_inline_runner_runs_the_registered_task_in_the_calling_thread(settings, monkeypatch, published):
    settings.ECGSITE_TASK_RUNNER = "inline"
    applied = []
    task = celery_app.tasks[dispatch.TASK_CLASSIFY]
    monkeypatch.setattr(task, "apply", lambda args, task_id: applied.append((args, task_id)))

    dispatch.enqueue_classify(job_id=42, task_id="abc123")

    assert applied == [([42], "abc123")]
    assert published == []


def test_the_worker_app_registers_its_runners():
    assert isinstance(dispatch._local_runners["embedded"], EmbeddedRunner)
    assert isinstance(dispatch._local_runners["inline"], InlineRunner)


def test_a_local_mode_without_a_runner_is_a_clear_error(settings, monkeypatch):
    settings.ECGSITE_TASK_RUNNER = "embedded"
    monkeypatch.delitem(dispatch._local_runners, "embedded")

    with pytest.raises(dispatch.NoLocalRunner, match="INSTALLED_APPS"):
        dispatch.enqueue_classify(job_id=1, task_id="t")


def test_a_webhook_attempt_goes_with_its_countdown(settings, published):
    settings.ECGSITE_TASK_RUNNER = "celery"

    dispatch.enqueue_webhook(delivery_id=7)
    dispatch.enqueue_webhook(delivery_id=8, countdown=30.0)

    assert published == [
        ("worker.deliver_webhook", [7], None, None),
        ("worker.deliver_webhook", [8], None, 30.0),
    ]


@pytest.mark.parametrize("mode", ["celery", "embedded"])
def test_a_wait_longer_than_the_broker_should_hold_is_left_to_the_sweep(mode, settings, recorder, published):
    settings.ECGSITE_TASK_RUNNER = mode
    settings.ECGSITE_WEBHOOK_MAX_COUNTDOWN_S = 900

    dispatch.enqueue_webhook(delivery_id=7, countdown=901.0)

    assert published == [] and recorder.submitted == []


def test_classification_is_unavailable_when_the_embedded_runner_says_so(recorder):
    assert dispatch.classification_unavailable() == ""
    recorder.unavailable = "broken-v1"
    assert dispatch.classification_unavailable() == "broken-v1"


@pytest.mark.parametrize("mode", ["celery", "inline"])
def test_other_runners_never_refuse_classification(mode, settings, classification_unavailable):
    settings.ECGSITE_TASK_RUNNER = mode  # the fixture's worker status says unavailable

    assert dispatch.classification_unavailable() == ""


@pytest.mark.parametrize("package", ["classifier", "accounts"])
def test_the_core_never_imports_the_worker(package):
    importers = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            if any(module == "worker" or module.startswith("worker.") for module in modules):
                importers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert importers == []
