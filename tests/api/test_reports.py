"""GET /api/v1/jobs/{id}/report.pdf and /api/v1/batches/{id}/report.pdf: PDF reports a clinician
can print or file, read back here as a reader opens them (pypdf)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.base import ContentFile
from pypdf import PdfReader

from ml.models import DEFAULT_MODEL_NAME, model_path, read_card
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionFactory,
    page_measurements_for,
    page_signal_for,
)
from tests.conftest import fixed_explanation, render_ecg_bytes

pytestmark = pytest.mark.django_db


def _text(response) -> tuple[int, str]:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response["Cache-Control"] == "private, no-store"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), re.sub(r"\s+", " ", text)


@pytest.fixture
def batch(owner, media_root):
    batch = BatchFactory(owner=owner, name="Ward <3> & co")
    batch.rejected = [{"name": "chart.png", "reason": "does not look like a 12-lead ECG printout."}]
    batch.save(update_fields=["rejected"])
    return batch


@pytest.fixture
def classified(batch):
    card = read_card(model_path(DEFAULT_MODEL_NAME))
    version = ModelVersionFactory(name=DEFAULT_MODEL_NAME, architecture=card["architecture"], card=card)
    page = render_ecg_bytes("mi", 1)
    stored = ContentFile(page, name="p.png")
    job = JobFactory(batch=batch, status="succeeded", original_name="bed-4 <ecg>.png", image=stored)
    PredictionFactory(
        job=job,
        model_version=version,
        label="mi",
        probabilities={"normal": 0.1, "mi": 0.6, "history_mi": 0.2, "abnormal": 0.1},
        signal=page_signal_for("mi", 1),
        measurements=page_measurements_for("mi", 1),
        explanation=fixed_explanation(),
    )
    return job


def test_a_jobs_report_gives_the_label_probabilities_explanation_measurements_model_and_caveat(
    owner_api, classified
):
    pages, text = _text(owner_api.get(f"/api/v1/jobs/{classified.pk}/report.pdf"))

    assert pages >= 1
    assert "ECG report: bed-4 <ecg>.png" in text and "Ward <3> & co" in text
    assert "Acute myocardial infarction" in text
    for name, share in [("Normal ECG", "10.0%"), ("Acute myocardial infarction", "60.0%")]:
        assert f"{name} {share}" in text
    assert "Most weight on V2–V3, 5.0–7.5 s (63% of the total)" in text
    heart_rate = page_measurements_for("mi", 1)["heart_rate_bpm"]
    assert f"Heart rate {heart_rate:.0f} bpm" in text and "not a clinical measurement" in text
    # The model with its cross-validated figures and what it cannot do, and the data credit.
    card = read_card(model_path(DEFAULT_MODEL_NAME))
    decided = card["decision"]["crossval"]["pooled"]["macro_f1"]
    assert f"The model: {DEFAULT_MODEL_NAME}" in text
    assert f"macro-F1 {decided['value']:.3f} [{decided['low']:.3f}, {decided['high']:.3f}]" in text
    assert "It knows four classes only" in text and "Khan & Hussain 2021" in text
    assert "Research software, not a medical device" in text


def test_a_failed_jobs_report_says_why(owner_api, batch):
    failed = JobFactory(
        batch=batch,
        status="failed",
        error="The image could not be read.",
        image=ContentFile(render_ecg_bytes("normal", 2), name="p.png"),
    )

    _, text = _text(owner_api.get(f"/api/v1/jobs/{failed.pk}/report.pdf"))

    assert "The image could not be read." in text and "Research software, not a medical device" in text


def test_a_batch_report_sums_up_every_image_and_refused_file_then_reports_each(owner_api, batch, classified):
    failed = JobFactory(
        batch=batch, status="failed", error="The image could not be read.", original_name="blurred.jpg"
    )

    pages, text = _text(owner_api.get(f"/api/v1/batches/{batch.pk}/report.pdf"))

    assert "ECG batch report: Ward <3> & co" in text
    assert "bed-4 <ecg>.png Acute myocardial infarction (60%)" in text
    assert f"{failed.original_name} The image could not be read." in text
    assert "chart.png: does not look like a 12-lead ECG printout." in text
    # The summary, then each job's report from a page of its own.
    assert pages >= 3 and text.count("ECG report: ") == 2
