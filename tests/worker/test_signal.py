"""The worker digitises each page it classifies, once, and stores the twelve leads and their
measurements with the prediction (ml.leads through classifier.ecg_signal); a page the digitiser
cannot read is still classified and recorded, without a signal."""

from __future__ import annotations

import logging

import factory
import pytest
from django.core.files.base import ContentFile

from classifier import services
from classifier.models import Job, Prediction
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    page_measurements_for,
    page_signal_for,
)
from tests.conftest import render_ecg_bytes
from worker.tasks import classify

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_job(owner, media_root) -> Job:
    """A queued job whose stored image is a real (synthetic) ECG page."""
    batch = BatchFactory(owner=owner)
    return JobFactory(batch=batch, image=ContentFile(render_ecg_bytes("mi", 3), name="page.png"))


def test_a_classified_jobs_prediction_carries_the_pages_signal(page_job, fake_classifier, sent):
    classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    prediction = Prediction.objects.get(job=page_job)
    assert Job.objects.get(pk=page_job.pk).status == Job.Status.SUCCEEDED
    # The same leads the digitiser reads from the page, rounded as stored.
    assert prediction.signal == page_signal_for("mi", 3)
    assert set(prediction.signal) == {"fs", "leads", "start_s", "rhythm"}
    assert len(prediction.signal["leads"]) == 12
    assert len(prediction.signal["rhythm"]["II"]) == 1024


def test_a_classified_jobs_prediction_carries_the_measurements_of_its_leads(page_job, fake_classifier, sent):
    classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    measurements = Prediction.objects.get(job=page_job).measurements
    # Stored apart from the signal, as ml.measurements reads them from the same leads.
    assert measurements == page_measurements_for("mi", 3)
    assert 40 < measurements["heart_rate_bpm"] < 150
    assert measurements["qtc_formula"] == "Bazett" and measurements["st_point"] == "J+60ms"
    assert len(measurements["st_mv"]) == len(measurements["q_waves"]) == 12


def test_the_live_update_of_the_succeeded_job_carries_its_measurements(page_job, fake_classifier, sent):
    classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    updates = [payload for _, kind, payload in sent if kind == "job.updated" and payload["id"] == page_job.pk]
    stored = page_measurements_for("mi", 3)
    summary = updates[-1]["measurements"]
    assert summary["heart_rate_bpm"] == stored["heart_rate_bpm"]
    assert summary["qtc_ms"] == stored["qtc_ms"]
    # Only the ST deviations worth a look travel, not every lead's.
    assert summary["st_mv"] == {lead: mv for lead, mv in stored["st_mv"].items() if abs(mv) >= 0.1}
    assert [payload["measurements"] for payload in updates[:-1]] == [None] * (len(updates) - 1)


def test_the_live_update_of_the_succeeded_job_links_its_drawing(page_job, fake_classifier, sent):
    classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    succeeded = [
        payload for _, kind, payload in sent if kind == "job.updated" and payload["id"] == page_job.pk
    ]
    assert succeeded[-1]["status"] == "succeeded"
    assert succeeded[-1]["signal_svg_url"] == f"/jobs/{page_job.pk}/signal.svg"
    assert succeeded[-1]["signal_csv_url"] == f"/api/v1/jobs/{page_job.pk}/signal.csv"
    assert succeeded[-1]["signal_url"] == f"/api/v1/jobs/{page_job.pk}/signal/"
    # The event carries links, never the samples themselves.
    assert "leads" not in str(succeeded[-1])


def test_a_page_the_digitiser_fails_on_is_still_classified_without_a_signal(
    page_job, fake_classifier, sent, monkeypatch, caplog
):
    def broken(image, signals=None):
        raise RuntimeError("no traces found")

    monkeypatch.setattr("worker.tasks.page_reading", broken)

    with caplog.at_level(logging.WARNING, logger="worker.tasks"):
        classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    prediction = Prediction.objects.get(job=page_job)
    assert Job.objects.get(pk=page_job.pk).status == Job.Status.SUCCEEDED
    assert (prediction.label, prediction.signal, prediction.measurements) == ("mi", None, None)
    assert any("no signal stored: no traces found" in record.getMessage() for record in caplog.records)
    last = [payload for _, kind, payload in sent if kind == "job.updated"][-1]
    assert (last["signal_svg_url"], last["measurements"]) == (None, None)


def test_measurements_of_another_shape_are_dropped_and_the_leads_kept(
    page_job, fake_classifier, sent, monkeypatch, caplog
):
    from classifier import ecg_signal

    def misshapen(image, signals=None):
        reading = ecg_signal.page_reading(image, signals)
        return reading._replace(measurements={**reading.measurements, "heart_rate_bpm": "fast"})

    monkeypatch.setattr("worker.tasks.page_reading", misshapen)

    with caplog.at_level(logging.ERROR, logger="worker.tasks"):
        classify.apply(args=[page_job.pk], task_id=page_job.task_id)

    prediction = Prediction.objects.get(job=page_job)
    assert Job.objects.get(pk=page_job.pk).status == Job.Status.SUCCEEDED
    assert prediction.signal == page_signal_for("mi", 3) and prediction.measurements is None
    assert any("measurements are not of the stored shape" in record.getMessage() for record in caplog.records)


def test_a_page_too_small_for_the_model_and_the_digitiser_fails_its_job_with_the_reason(
    owner, fake_classifier, sent
):
    small = JobFactory(
        batch=BatchFactory(owner=owner),
        image=factory.django.ImageField(width=90, height=60, format="PNG", filename="small.png"),
    )

    classify.apply(args=[small.pk], task_id=small.task_id)

    small.refresh_from_db()
    assert small.status == Job.Status.FAILED
    assert small.error == (
        "The file is too small (90x60 pixels); an ECG page needs at least 64 pixels on each side."
    )
    assert not Prediction.objects.filter(job=small).exists()


# --- services.prediction_record --------------------------------------------------------------


@pytest.fixture
def running_job(owner) -> Job:
    return JobFactory(batch=BatchFactory(owner=owner), status=Job.Status.RUNNING)


def _record(job: Job, signal: dict | None, measurements: dict | None = None) -> Job:
    return services.prediction_record(
        job=job,
        model_version=ModelVersionFactory(),
        label="normal",
        probabilities={"normal": 0.7, "mi": 0.1, "history_mi": 0.1, "abnormal": 0.1},
        inference_ms=3.0,
        signal=signal,
        measurements=measurements,
    )


def test_prediction_record_stores_the_signal_with_the_prediction(running_job):
    signal = page_signal_for()

    _record(running_job, signal)

    assert Prediction.objects.get(job=running_job).signal == signal


@pytest.mark.parametrize(
    "damage",
    [
        lambda signal: signal.pop("rhythm"),
        lambda signal: signal["leads"].pop("V6"),
        lambda signal: signal.update(fs=0),
        lambda signal: signal["leads"]["I"].__setitem__(0, float("nan")),
    ],
)
def test_prediction_record_refuses_a_signal_of_another_shape(running_job, damage):
    signal = page_signal_for()
    damage(signal)

    with pytest.raises(ValueError, match="signal"):
        _record(running_job, signal)
    assert not Prediction.objects.filter(job=running_job).exists()


def test_prediction_record_stores_the_measurements_beside_the_signal(running_job):
    signal, measurements = page_signal_for(), page_measurements_for()

    _record(running_job, signal, measurements)

    prediction = Prediction.objects.get(job=running_job)
    assert (prediction.signal, prediction.measurements) == (signal, measurements)


@pytest.mark.parametrize(
    "damage",
    [
        lambda measurements: measurements.pop("qt_ms"),
        lambda measurements: measurements.update(heart_rate_bpm=float("inf")),
        lambda measurements: measurements.update(pr_ms=True),
        lambda measurements: measurements["st_mv"].pop("V6"),
        lambda measurements: measurements["st_mv"].__setitem__("I", "high"),
        lambda measurements: measurements["q_waves"].__setitem__("I", 1),
        lambda measurements: measurements.update(beats=-1),
    ],
)
def test_prediction_record_refuses_measurements_of_another_shape(running_job, damage):
    measurements = page_measurements_for()
    damage(measurements)

    with pytest.raises(ValueError, match="measurements"):
        _record(running_job, page_signal_for(), measurements)
    assert not Prediction.objects.filter(job=running_job).exists()


def test_prediction_record_refuses_measurements_without_their_signal(running_job):
    with pytest.raises(ValueError, match="measurements"):
        _record(running_job, None, page_measurements_for())
    assert not Prediction.objects.filter(job=running_job).exists()
