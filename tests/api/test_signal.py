"""GET /api/v1/jobs/{id}/signal/ and /signal.csv: the page's twelve leads as the worker digitised
them (the JSON with their measurements), to the job's owner only, audited; problems while there
is none."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from classifier.models import AuditEvent, Batch, Job
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionFactory,
    page_measurements_for,
    page_signal_for,
)
from tests.conftest import assert_problem

pytestmark = pytest.mark.django_db

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MEASUREMENT_KEYS = [
    "heart_rate_bpm",
    "rr_ms",
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_ms",
    "qtc_formula",
    "st_mv",
    "st_point",
    "q_waves",
    "beats",
]
STARTS = {"I": 0.0, "II": 0.0, "III": 0.0, "aVR": 2.5, "aVL": 2.5, "aVF": 2.5}
STARTS |= {"V1": 5.0, "V2": 5.0, "V3": 5.0, "V4": 7.5, "V5": 7.5, "V6": 7.5}


@pytest.fixture
def batch(owner) -> Batch:
    return BatchFactory(owner=owner)


def _job(
    batch: Batch, status: str = "succeeded", signal: dict | None = None, measurements: dict | None = None
) -> Job:
    job = JobFactory(batch=batch, status=status)
    if status == "succeeded":
        PredictionFactory(
            job=job, model_version=ModelVersionFactory(), signal=signal, measurements=measurements
        )
    return job


@pytest.fixture
def signal() -> dict:
    return page_signal_for("mi", 3)


@pytest.fixture
def measurements() -> dict:
    return page_measurements_for("mi", 3)


@pytest.fixture
def job(batch, signal, measurements) -> Job:
    return _job(batch, signal=signal, measurements=measurements)


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_signal_is_the_digitised_leads_of_the_page(api, job, signal):
    response = api.get(f"/api/v1/jobs/{job.pk}/signal/")

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["job", "fs", "leads", "start_s", "rhythm", "measurements"]
    assert (body["job"], body["fs"]) == (job.pk, pytest.approx(102.4))
    assert list(body["leads"]) == LEADS
    assert all(len(values) == 256 for values in body["leads"].values())
    assert body["start_s"] == STARTS
    assert list(body["rhythm"]) == ["II"] and len(body["rhythm"]["II"]) == 1024
    assert body["leads"] == signal["leads"] and body["rhythm"] == signal["rhythm"]
    # Rounded as ml.digitise rounds: 4 decimals.
    assert all(round(value, 4) == value for value in body["rhythm"]["II"])
    assert max(abs(value) for value in body["rhythm"]["II"]) > 0.3  # a real trace, not a flat line


def test_the_signal_carries_the_measurements_read_from_its_leads(api, job, measurements):
    body = api.get(f"/api/v1/jobs/{job.pk}/signal/").json()["measurements"]

    assert body == measurements
    assert list(body) == MEASUREMENT_KEYS
    assert list(body["st_mv"]) == LEADS and list(body["q_waves"]) == LEADS
    assert 40 < body["heart_rate_bpm"] < 150
    assert (body["qtc_formula"], body["st_point"]) == ("Bazett", "J+60ms")


def test_a_signal_stored_without_measurements_has_null_measurements(api, batch, signal):
    job = _job(batch, signal=signal, measurements=None)

    body = api.get(f"/api/v1/jobs/{job.pk}/signal/").json()

    assert body["measurements"] is None
    assert body["leads"] == signal["leads"]


def test_the_job_links_to_its_signal_once_there_is_one(api, batch, job):
    waiting = _job(batch, status="queued")
    without = _job(batch, signal=None)

    assert api.get(f"/api/v1/jobs/{job.pk}/").json()["signal_url"] == f"/api/v1/jobs/{job.pk}/signal/"
    assert api.get(f"/api/v1/jobs/{waiting.pk}/").json()["signal_url"] is None
    assert api.get(f"/api/v1/jobs/{without.pk}/").json()["signal_url"] is None


def test_the_csv_has_a_column_per_lead_and_a_row_per_sample(api, job, signal):
    response = api.get(f"/api/v1/jobs/{job.pk}/signal.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="job-{job.pk}-signal.csv"'
    header, *rows = _rows(response)
    assert header == ["t_s", *LEADS, "II_rhythm"]
    assert len(rows) == 1024
    assert all(len(row) == len(header) for row in rows)
    assert [row[0] for row in rows[:3]] == ["0.0000", "0.0098", "0.0195"]
    assert rows[-1][0] == f"{1023 / 102.4:.4f}"
    # The rhythm strip fills every row; each lead only the 256 samples it was printed.
    assert [float(row[-1]) for row in rows] == signal["rhythm"]["II"]
    for column, lead in enumerate(LEADS, start=1):
        start = round(STARTS[lead] * 102.4)
        cells = [row[column] for row in rows]
        assert [float(cell) for cell in cells[start : start + 256]] == signal["leads"][lead], lead
        assert set(cells[:start] + cells[start + 256 :]) == {""}, lead


def test_the_first_row_has_the_first_column_of_leads_and_empty_cells_for_the_rest(api, job):
    first = _rows(api.get(f"/api/v1/jobs/{job.pk}/signal.csv"))[1]

    assert all(first[1:4]) and first[-1]
    assert first[4:13] == [""] * 9


def test_the_csv_answers_a_client_that_asks_for_csv(api, job):
    response = api.get(f"/api/v1/jobs/{job.pk}/signal.csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("path", ["/api/v1/jobs/{job}/signal/", "/api/v1/jobs/{job}/signal.csv"])
def test_another_users_job_is_404(other_api, job, path):
    body = assert_problem(other_api.get(path.format(job=job.pk)), 404)

    assert body["type"] == "urn:ecgsite:problem:not-found"
    event = AuditEvent.objects.get(action="signal.view")
    assert (event.outcome, event.target_id, event.actor_label) == ("not_found", job.pk, "bob@example.com")


@pytest.mark.parametrize("path", ["/api/v1/jobs/{job}/signal/", "/api/v1/jobs/{job}/signal.csv"])
def test_no_signal_without_credentials(client, job, path):
    assert_problem(client.get(path.format(job=job.pk)), 401)


@pytest.mark.parametrize("status", ["queued", "running"])
@pytest.mark.parametrize("path", ["/api/v1/jobs/{job}/signal/", "/api/v1/jobs/{job}/signal.csv"])
def test_an_unfinished_jobs_signal_is_not_ready_yet(api, batch, status, path):
    job = _job(batch, status=status)

    body = assert_problem(api.get(path.format(job=job.pk)), 409)

    assert body["type"] == "urn:ecgsite:problem:signal-not-ready"
    assert AuditEvent.objects.get(action="signal.view").outcome == "refused"


@pytest.mark.parametrize("status", ["succeeded", "failed"])
@pytest.mark.parametrize("path", ["/api/v1/jobs/{job}/signal/", "/api/v1/jobs/{job}/signal.csv"])
def test_a_job_that_finished_without_a_signal_has_none(api, batch, status, path):
    job = _job(batch, status=status, signal=None)

    body = assert_problem(api.get(path.format(job=job.pk)), 404)

    assert body["type"] == "urn:ecgsite:problem:signal-not-available"


@pytest.mark.parametrize(("path", "output"), [("signal/", "json"), ("signal.csv", "csv")])
def test_each_read_is_audited(api, owner, job, path, output):
    api.get(f"/api/v1/jobs/{job.pk}/{path}")

    event = AuditEvent.objects.get(action="signal.view")
    assert (event.actor, event.target_type, event.target_id) == (owner, "job", job.pk)
    assert (event.outcome, event.detail) == ("success", {"output": output})
    assert event.api_token_id is not None


def test_the_signal_is_never_stored(api, job):
    for path in ["signal/", "signal.csv"]:
        assert "no-store" in api.get(f"/api/v1/jobs/{job.pk}/{path}")["Cache-Control"], path


def test_the_schema_documents_both_signal_endpoints(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    json_get = schema["paths"]["/api/v1/jobs/{job_id}/signal/"]["get"]
    csv_get = schema["paths"]["/api/v1/jobs/{job_id}/signal.csv"]["get"]
    assert list(json_get["responses"]["200"]["content"]) == ["application/json"]
    assert list(csv_get["responses"]["200"]["content"]) == ["text/csv"]
    for operation in (json_get, csv_get):
        assert {"401", "404", "409"} <= set(operation["responses"])
        assert list(operation["responses"]["409"]["content"]) == ["application/problem+json"]
    shape = schema["components"]["schemas"]["SignalOutput"]
    assert set(shape["properties"]) == {"job", "fs", "leads", "start_s", "rhythm", "measurements"}
    assert shape["properties"]["leads"]["additionalProperties"]["items"]["type"] == "number"
    measured = schema["components"]["schemas"]["MeasurementsOutput"]["properties"]
    assert set(measured) == set(MEASUREMENT_KEYS)
    assert measured["heart_rate_bpm"]["nullable"] is True
    assert measured["st_mv"]["additionalProperties"] == {
        "type": "number",
        "format": "double",
        "nullable": True,
    }
