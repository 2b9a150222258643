"""JSON-lines logs carry the request's id (as answered in X-Request-ID) or the worker's job ids."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.conf import settings
from django.http import HttpResponse
from pythonjsonlogger.json import JsonFormatter

from ecgsite import log_context
from ecgsite.log_context import ContextFilter
from ecgsite.middleware import RequestIdMiddleware
from tests.classifier.factories import BatchFactory, JobFactory
from worker.tasks import classify


def _json_handler() -> tuple[logging.Handler, io.StringIO]:
    """A handler set up as settings.LOGGING's json formatter and context filter are."""
    options = {key: value for key, value in settings.LOGGING["formatters"]["json"].items() if key != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(ContextFilter())
    return handler, stream


@pytest.fixture
def json_lines():
    handler, stream = _json_handler()
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_the_json_format_is_settings_own_choice_in_production():
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["context"]
    assert settings.LOGGING["formatters"]["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"


def test_a_line_outside_any_request_or_job_has_null_ids(json_lines):
    logging.getLogger("ecgsite.test").warning("plain %s", "words")
    (line,) = json_lines()
    assert line["message"] == "plain words"
    assert line["level"] == "WARNING"
    assert line["logger"] == "ecgsite.test"
    assert line["request_id"] is None
    assert line["job_ids"] is None


def test_a_line_inside_a_task_names_its_jobs(json_lines):
    with log_context.for_jobs([7, 8]):
        logging.getLogger("worker.tasks").info("classifying")
    assert json_lines()[-1]["job_ids"] == [7, 8]


def test_a_line_logged_while_a_request_runs_has_its_id(json_lines, rf):
    def view(request):
        logging.getLogger("classifier.views").info("handling")
        return HttpResponse("ok")

    response = RequestIdMiddleware(view)(rf.get("/"))
    (line,) = [line for line in json_lines() if line["logger"] == "classifier.views"]
    assert line["request_id"] == response["X-Request-ID"]
    logging.getLogger("classifier.views").info("after")
    assert json_lines()[-1]["request_id"] is None


@pytest.mark.django_db
def test_the_classify_task_logs_with_its_job_ids(json_lines, owner, fake_classifier, sent):
    job = JobFactory(batch=BatchFactory(owner=owner))
    fake_classifier.explanation_error = RuntimeError("no map")  # the task logs this failure
    classify.apply(args=[job.pk], task_id=job.task_id)
    logged = [line for line in json_lines() if line["logger"] == "worker.tasks"]
    assert logged and all(line["job_ids"] == [job.pk] for line in logged)
