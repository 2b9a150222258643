"""The worker explains each label it stores (which lead and seconds drove it: ml.explain); an
explanation that fails leaves the result stored without one, and ECGSITE_EXPLANATIONS=0 skips them."""

from __future__ import annotations

import logging

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from classifier.models import Job, Prediction
from classifier.presenters import job_as_dict, job_output
from tests.classifier.factories import BatchFactory, JobFactory
from tests.conftest import fixed_explanation, render_ecg_bytes
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_job(owner, media_root) -> Job:
    batch = BatchFactory(owner=owner)
    return JobFactory(batch=batch, image=ContentFile(render_ecg_bytes("mi", 3), name="page.png"))


def _classified(job: Job) -> Job:
    classify.apply(args=[job.pk], task_id=job.task_id)
    return Job.objects.get(pk=job.pk)


def test_the_prediction_carries_its_explanation_and_the_job_says_it_with_the_overlays_address(
    page_job, fake_classifier, sent
):
    job = _classified(page_job)

    assert Prediction.objects.get(job=job).explanation == fixed_explanation()
    shown = job_as_dict(job)["explanation"]
    assert shown["text"] == "Most weight on V2–V3, 5.0–7.5 s (63% of the total)"
    assert (shown["lead"], shown["start_s"], shown["end_s"]) == ("V2–V3", 5.0, 7.5)
    assert shown["page_image_url"] == reverse("classifier:job-explanation", args=[job.pk])
    # The API gives the declared keys only, and its own overlay address.
    assert job_output(job)["explanation"] == {
        "lead": "V2–V3",
        "start_s": 5.0,
        "end_s": 7.5,
        "text": shown["text"],
        "image_url": f"/api/v1/jobs/{job.pk}/explanation.png",
    }


def test_an_explanation_that_fails_leaves_the_result_stored_without_one(
    page_job, fake_classifier, sent, caplog
):
    fake_classifier.explanation_error = RuntimeError("gradient of nothing")

    with caplog.at_level(logging.ERROR, logger="worker.tasks"):
        job = _classified(page_job)

    assert job.status == Job.Status.SUCCEEDED
    prediction = Prediction.objects.get(job=job)
    assert (prediction.label, prediction.explanation) == ("mi", None)
    assert job_as_dict(job)["explanation"] is None
    assert any("explanations of 1 pages failed" in record.getMessage() for record in caplog.records)


def test_explanations_can_be_switched_off(page_job, fake_classifier, sent, settings):
    settings.ECGSITE_EXPLANATIONS = False
    fake_classifier.explanation_error = AssertionError("explain must not be called")

    job = _classified(page_job)

    assert job.status == Job.Status.SUCCEEDED
    assert Prediction.objects.get(job=job).explanation is None
