"""GET /api/v1/jobs/{id}/fhir/ and /api/v1/batches/{id}/fhir/: HL7 FHIR R4B, validated with the
fhir.resources R4B models."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from classifier.ecg_signal import LEAD_NAMES
from tests.classifier.factories import (
    BatchFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionFactory,
    page_signal_for,
)

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json"
# ISO/IEEE 11073 MDC_ECG_ELEC_POTL_<lead>, as the FHIR specification's ECG example codes leads.
MDC_CODES = {
    "I": "131329", "II": "131330", "III": "131389", "aVR": "131390", "aVL": "131391", "aVF": "131392",
    "V1": "131331", "V2": "131332", "V3": "131333", "V4": "131334", "V5": "131335", "V6": "131336",
}  # fmt: skip


def _get(api, url: str) -> dict:
    response = api.get(url, HTTP_ACCEPT=FHIR_JSON)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR_JSON)
    return json.loads(response.content)


@pytest.fixture
def batch(owner):
    return BatchFactory(owner=owner, name="Ward 3")


@pytest.fixture
def classified(batch):
    job = JobFactory(batch=batch, status="succeeded", original_name="ecg-001.png")
    probabilities = {"normal": 0.1, "mi": 0.6, "history_mi": 0.2, "abnormal": 0.1}
    version = ModelVersionFactory(name="hybrid-v9")
    PredictionFactory(
        job=job, model_version=version, label="mi", probabilities=probabilities, signal=page_signal_for()
    )
    return job


def test_a_classified_job_is_a_final_ekg_report_with_its_label_probabilities_and_leads(owner_api, classified):
    body = _get(owner_api, f"/api/v1/jobs/{classified.pk}/fhir/")

    report = DiagnosticReport.model_validate(body)
    assert report.status == "final"
    assert [(c.system, c.code) for c in report.code.coding] == [("http://loinc.org", "11524-6")]
    assert [(c.system, c.code) for c in report.conclusionCode[0].coding] == [
        ("http://snomed.info/sct", "57054005")
    ]
    assert report.conclusionCode[0].text == "Acute myocardial infarction"
    assert report.conclusion.startswith(
        "Acute myocardial infarction, labelled by software (model hybrid-v9)."
    )
    assert "not a medical device" in report.conclusion
    # Every result is a contained Observation: one per class probability, then the leads.
    contained = {resource.id: resource for resource in report.contained}
    assert [ref.reference for ref in report.result] == [f"#{key}" for key in contained]
    probabilities = {
        observation.code.coding[0].code: float(observation.valueQuantity.value)
        for observation in contained.values()
        if observation.id.startswith("probability-")
    }
    assert probabilities == {"normal": 0.1, "mi": 0.6, "history_mi": 0.2, "abnormal": 0.1}
    leads = Observation.model_validate(body["contained"][-1])
    signal = page_signal_for()
    # The twelve leads in the page's order, each coded MDC_ECG_ELEC_POTL_<lead>, then the rhythm strip.
    names = [component.code.text.split(",")[0].removeprefix("Lead ") for component in leads.component]
    assert names == [*LEAD_NAMES, *signal["rhythm"]]
    codes = [component.code.coding[0].code for component in leads.component]
    assert codes == [MDC_CODES[name] for name in names]
    for name, component in zip(LEAD_NAMES, leads.component, strict=False):
        sampled = component.valueSampledData
        assert (sampled.origin.code, sampled.dimensions) == ("mV", 1)
        assert float(sampled.period) == pytest.approx(1000 / signal["fs"], rel=1e-6)
        values = [float(v) for v in sampled.data.split()]
        assert values == pytest.approx(signal["leads"][name], abs=1e-4)
    rhythm = leads.component[len(LEAD_NAMES)]
    assert "rhythm strip" in rhythm.code.text
    assert len(rhythm.valueSampledData.data.split()) == len(next(iter(signal["rhythm"].values())))


def test_a_waiting_job_is_registered_and_a_failed_one_cancelled_with_its_reason(owner_api, batch):
    waiting = JobFactory(batch=batch)
    failed = JobFactory(batch=batch, status="failed", error="The image could not be read.")

    registered = DiagnosticReport.model_validate(_get(owner_api, f"/api/v1/jobs/{waiting.pk}/fhir/"))
    assert (registered.status, registered.result, registered.conclusionCode) == ("registered", None, None)
    cancelled = DiagnosticReport.model_validate(_get(owner_api, f"/api/v1/jobs/{failed.pk}/fhir/"))
    assert (cancelled.status, cancelled.conclusion) == ("cancelled", "The image could not be read.")


def test_a_batch_is_a_bundle_of_its_jobs_reports_each_at_its_own_url(owner_api, batch, classified):
    waiting = JobFactory(batch=batch)

    body = _get(owner_api, f"/api/v1/batches/{batch.pk}/fhir/")

    bundle = Bundle.model_validate(body)
    assert bundle.type == "collection" and bundle.timestamp is not None
    urls = [entry.fullUrl for entry in bundle.entry]
    assert urls == [f"http://testserver/api/v1/jobs/{job.pk}/fhir/" for job in (classified, waiting)]
    assert [entry.resource.status for entry in bundle.entry] == ["final", "registered"]
    # Each entry is what the job's own address answers, leads included.
    assert body["entry"][0]["resource"] == _get(owner_api, f"/api/v1/jobs/{classified.pk}/fhir/")
