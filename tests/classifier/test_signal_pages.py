"""The batch page's drawing of each job's twelve leads: a server-drawn SVG (/jobs/<id>/signal.svg)
that the page's script shows once the job succeeded, to the job's owner only, with a table of
what was measured on them (the page's data carries a summary of the stored measurements)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from classifier import selectors, svg_charts
from classifier.models import AuditEvent, Job
from classifier.presenters import job_as_dict, measurements_summary
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionFactory,
    page_measurements_for,
    page_signal_for,
)

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture
def batch(owner):
    return BatchFactory(owner=owner)


@pytest.fixture
def job(batch):
    job = JobFactory(batch=batch, status="succeeded", original_name="<b>ward&3</b>.png")
    PredictionFactory(
        job=job,
        model_version=ModelVersionFactory(),
        signal=page_signal_for("mi", 3),
        measurements=page_measurements_for("mi", 3),
    )
    return job


@pytest.fixture
def job_without_signal(batch):
    job = JobFactory(batch=batch, status="succeeded")
    PredictionFactory(job=job, model_version=ModelVersionFactory(), signal=None)
    return job


def _svg_url(job) -> str:
    return reverse("classifier:job-signal-svg", args=[job.pk])


def _batch_jobs(client, batch) -> dict[int, dict]:
    content = client.get(reverse("classifier:batch-detail", args=[batch.pk])).content.decode()
    match = re.search(r'<script id="batch-data" type="application/json">(.*?)</script>', content)
    assert match
    return {job["id"]: job for job in json.loads(match.group(1))["jobs"]}


def test_the_batch_page_links_each_digitised_job_to_its_drawing_and_data(
    owner_client, batch, job, job_without_signal
):
    jobs = _batch_jobs(owner_client, batch)

    assert jobs[job.pk]["signal_svg_url"] == f"/jobs/{job.pk}/signal.svg"
    assert jobs[job.pk]["signal_csv_url"] == f"/api/v1/jobs/{job.pk}/signal.csv"
    assert jobs[job.pk]["signal_url"] == f"/api/v1/jobs/{job.pk}/signal/"
    no_signal = jobs[job_without_signal.pk]
    assert (no_signal["signal_svg_url"], no_signal["signal_csv_url"], no_signal["signal_url"]) == (None,) * 3
    # The page carries links only: the samples stay out of its embedded data.
    assert "rhythm" not in json.dumps(jobs)


def test_the_batch_page_reads_no_signal_samples(owner, batch, job):
    """The pages, events and the API read jobs through the same selectors: the samples (tens of
    kB a page) stay in the database, only whether there are any is read."""
    loaded = selectors.batch_get_for_user(user=owner, batch_id=batch.pk)

    (prediction,) = loaded.jobs.all()[0].predictions.all()
    assert "signal" in prediction.get_deferred_fields()
    assert prediction.has_signal is True
    # The measurements are small and shown on the page: read with the prediction.
    assert "measurements" not in prediction.get_deferred_fields()


def test_the_batch_page_carries_each_jobs_measurements(owner_client, batch, job, job_without_signal):
    jobs = _batch_jobs(owner_client, batch)

    stored = page_measurements_for("mi", 3)
    summary = jobs[job.pk]["measurements"]
    assert {key: summary[key] for key in ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")} == {
        key: stored[key] for key in ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")
    }
    assert (summary["qtc_formula"], summary["st_point"], summary["st_threshold_mv"]) == (
        "Bazett",
        "J+60ms",
        0.1,
    )
    # This page's ST is raised in I, aVL, V5 and V6 (its synthetic MI); the others stay under 0.1 mV.
    assert summary["st_mv"] == {lead: stored["st_mv"][lead] for lead in ("I", "aVL", "V5", "V6")}
    assert summary["q_waves"] == []
    assert jobs[job_without_signal.pk]["measurements"] is None


def test_the_page_reads_its_measurements_without_the_signal(owner, batch, job, django_assert_num_queries):
    loaded = selectors.batch_get_for_user(user=owner, batch_id=batch.pk)

    with django_assert_num_queries(0):
        data = job_as_dict(loaded.jobs.all()[0])

    assert data["measurements"]["heart_rate_bpm"] == page_measurements_for("mi", 3)["heart_rate_bpm"]


def test_an_unfinished_job_shows_no_measurements(batch):
    job = JobFactory(batch=batch, status="running")
    PredictionFactory(job=job, model_version=ModelVersionFactory(), measurements=page_measurements_for())

    assert job_as_dict(Job.objects.get(pk=job.pk))["measurements"] is None


def _measured(**changes) -> dict:
    return {**page_measurements_for("normal", 0), **changes}


def test_the_summary_lists_the_st_deviations_of_a_tenth_of_a_millivolt_or_more_in_page_order():
    st_mv = {lead: 0.0 for lead in LEADS} | {"V6": -0.1, "I": 0.25, "V2": 0.099, "aVR": None}

    assert measurements_summary(_measured(st_mv=st_mv))["st_mv"] == {"I": 0.25, "V6": -0.1}
    assert measurements_summary(_measured(st_mv={lead: 0.01 for lead in LEADS}))["st_mv"] == {}
    # None: no lead's ST could be measured, which the table shows apart from "none raised".
    assert measurements_summary(_measured(st_mv=dict.fromkeys(LEADS)))["st_mv"] is None


def test_the_summary_lists_the_leads_with_a_pathological_q_wave():
    q_waves = {lead: False for lead in LEADS} | {"aVR": None, "aVF": True, "III": True}

    assert measurements_summary(_measured(q_waves=q_waves))["q_waves"] == ["III", "aVF"]
    assert measurements_summary(_measured(q_waves=dict.fromkeys(LEADS)))["q_waves"] is None


def test_unmeasured_values_stay_null_in_the_summary():
    summary = measurements_summary(_measured(pr_ms=None, qt_ms=None, qtc_ms=None))

    assert (summary["pr_ms"], summary["qt_ms"], summary["qtc_ms"]) == (None, None, None)
    assert measurements_summary(None) is None


def test_the_owner_gets_the_twelve_leads_drawn_as_the_printout(owner_client, job):
    response = owner_client.get(_svg_url(job))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    svg = ET.fromstring(response.content)  # well-formed, the file name escaped
    assert svg.tag == f"{SVG}svg"
    assert svg.find(f"{SVG}title").text == "The twelve leads of <b>ward&3</b>.png, as digitised"
    labels = [text.text for text in svg.iter(f"{SVG}text")]
    assert labels == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6", "II"]
    traces = list(svg.iter(f"{SVG}polyline"))
    assert len(traces) == 13  # twelve 2.5 s panels and the 10 s rhythm strip
    assert sorted(len(trace.get("points").split()) for trace in traces) == [256] * 12 + [1024]


def test_the_panels_sit_where_the_printout_has_them(job):
    signal = page_signal_for("mi", 3)
    svg = ET.fromstring(
        svg_charts.twelve_lead_chart(
            [("I", "aVR", "V1", "V4")], signal["leads"], signal["start_s"], ("II", [0.0] * 1024), 102.4, "t"
        )
    )
    first_x = [float(trace.get("points").split()[0].split(",")[0]) for trace in svg.iter(f"{SVG}polyline")]
    px_per_s = svg_charts.ECG_PX_PER_S
    # I, aVR, V1, V4 start at 0, 2.5, 5 and 7.5 s; the flat rhythm strip at 0.
    assert first_x == pytest.approx([6 + start * px_per_s for start in (0, 2.5, 5, 7.5, 0)], abs=0.1)


def test_the_drawing_is_served_like_the_image(owner_client, job):
    response = owner_client.get(_svg_url(job))

    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"<script" not in response.content and b"<style" not in response.content


def test_each_view_of_the_drawing_is_audited(owner_client, owner, job):
    owner_client.get(_svg_url(job))

    event = AuditEvent.objects.get(action="signal.view")
    assert (event.actor, event.target_id, event.outcome, event.detail) == (
        owner,
        job.pk,
        "success",
        {"output": "svg"},
    )


def test_another_user_gets_404_for_the_drawing(other_client, job):
    assert other_client.get(_svg_url(job)).status_code == 404
    assert AuditEvent.objects.get(action="signal.view").outcome == "not_found"


def test_a_job_without_a_signal_has_no_drawing(owner_client, job_without_signal):
    assert owner_client.get(_svg_url(job_without_signal)).status_code == 404
    assert AuditEvent.objects.get(action="signal.view").outcome == "refused"


def test_an_anonymous_visitor_is_sent_to_sign_in(client, job):
    response = client.get(_svg_url(job))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
