"""Results in HL7 FHIR R4B, for hospital systems: a job as a DiagnosticReport, a batch as a Bundle.

A report is an EKG study (LOINC 11524-6). Its ``conclusionCode`` is the label as SNOMED CT, its
``result`` the contained Observations: one per class probability and, when the page was
digitised, one with the twelve leads (and the rhythm strip) as ``valueSampledData`` in mV, each
lead coded in ISO/IEEE 11073 MDC as the FHIR specification's own ECG example codes them. Nothing
names the patient: ecgsite never learns who it is.

Every resource is checked against fhir.resources' R4B models before it is served, so a change
here that breaks the standard's shape fails loudly instead of reaching a hospital.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from classifier.ecg_signal import LEAD_NAMES, RHYTHM_LEAD, PageSignal
from classifier.models import CLASS_KEYS, Job, Label
from ml.decision import label_note
from ml.labels import DESCRIPTIONS

UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
MDC = "urn:oid:2.16.840.1.113883.6.24"
# The classes are ecgsite's own: a code system of its own names them (the keys the API uses).
CLASS_SYSTEM = "urn:ecgsite:ecg-class"
JOB_SYSTEM = "urn:ecgsite:job"
EKG_STUDY = {"system": "http://loinc.org", "code": "11524-6", "display": "EKG study"}
ELECTROCARDIAC = {
    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
    "code": "EC",
    "display": "Electrocardiac (e.g., EKG, EEC, Holter)",
}
CONCLUSION_CODES = {
    "normal": ("164854000", "Electrocardiogram normal"),
    "mi": ("57054005", "Acute myocardial infarction"),
    "history_mi": ("399211009", "History of myocardial infarction"),
    "abnormal": ("698247007", "Cardiac arrhythmia"),
}
# MDC_ECG_ELEC_POTL (131328) plus the lead's number in IEEE 11073-10101 (I 1, II 2, V1-V6 3-8,
# III 61, aVR 62, aVL 63, aVF 64).
ECG_POTENTIAL = {"system": MDC, "code": "131328", "display": "MDC_ECG_ELEC_POTL"}
MDC_LEAD_NUMBERS = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8}
MDC_LEAD_NUMBERS.update({"III": 61, "aVR": 62, "aVL": 63, "aVF": 64})
REPORT_STATUS = {
    Job.Status.QUEUED: "registered",
    Job.Status.RUNNING: "registered",
    Job.Status.SUCCEEDED: "final",
    Job.Status.FAILED: "cancelled",
}
NOT_A_DEVICE = "Research software, not a medical device: a clinician reads the ECG."


def job_report(job: Job, signal: PageSignal | None) -> dict[str, Any]:
    """``job`` (with its predictions prefetched, newest first) as a DiagnosticReport; its leads
    are contained when ``signal`` is given."""
    report = _report(job, signal)
    DiagnosticReport.model_validate(report)
    return report


def _report(job: Job, signal: PageSignal | None) -> dict[str, Any]:
    prediction = job.result()
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"job-{job.pk}",
        "identifier": [{"system": JOB_SYSTEM, "value": str(job.pk)}],
        "status": REPORT_STATUS[Job.Status(job.status)],
        "category": [{"coding": [ELECTROCARDIAC]}],
        "code": {"coding": [EKG_STUDY], "text": f"12-lead ECG printout {job.original_name}"},
    }
    if job.finished:
        report["issued"] = job.finished.isoformat()
    if job.status == Job.Status.FAILED:
        report["conclusion"] = job.error or "The image could not be classified."
    if prediction is None:
        return report

    model = prediction.model_version
    performer = {"display": f"ecgsite, model {model.name}"}
    observations = [_probability(key, prediction.probabilities[key], performer) for key in CLASS_KEYS]
    if signal is not None:
        observations.append(_leads(signal, performer))
    code, display = CONCLUSION_CODES[prediction.label]
    note = label_note(prediction.label, prediction.probabilities, model.card, photographed=job.photographed)
    report.update(
        {
            "performer": [performer],
            "contained": observations,
            "result": [{"reference": f"#{observation['id']}"} for observation in observations],
            "conclusion": " ".join(
                part
                for part in (
                    f"{Label(prediction.label).label}, labelled by software (model {model.name}).",
                    note,
                    NOT_A_DEVICE,
                )
                if part
            ),
            "conclusionCode": [
                {
                    "coding": [{"system": SNOMED, "code": code, "display": display}],
                    "text": Label(prediction.label).label,
                }
            ],
        }
    )
    return report


def batch_bundle(
    jobs: list[Job], signals: dict[int, PageSignal], *, base_url: str, when: datetime
) -> dict[str, Any]:
    """A batch's jobs as a collection Bundle of their DiagnosticReports, each at its own URL."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": when.isoformat(),
        "entry": [
            {
                "fullUrl": base_url + reverse("api:job-fhir", args=[job.pk]),
                # Checked once, as the bundle's entries, not again on their own.
                "resource": _report(job, signals.get(job.pk)),
            }
            for job in jobs
        ],
    }
    Bundle.model_validate(bundle)
    return bundle


def _probability(key: str, value: float, performer: dict[str, str]) -> dict[str, Any]:
    name = f"Probability of {DESCRIPTIONS[key]}"
    return {
        "resourceType": "Observation",
        "id": f"probability-{key.replace('_', '-')}",
        "status": "final",
        "code": {"coding": [{"system": CLASS_SYSTEM, "code": key, "display": name}], "text": name},
        "valueQuantity": {
            "value": round(float(value), 6),
            "unit": "probability",
            "system": UCUM,
            "code": "1",
        },
        "device": performer,
    }


def _leads(signal: PageSignal, performer: dict[str, str]) -> dict[str, Any]:
    period_ms = round(1000 / float(signal["fs"]), 6)
    components = []
    for name in LEAD_NAMES:
        start = float(signal["start_s"][name])
        samples = signal["leads"][name]
        end = start + len(samples) * period_ms / 1000
        text = f"Lead {name}, {start:.1f} to {end:.1f} s of the page"
        components.append(_lead(name, text, samples, period_ms))
    for name, samples in signal["rhythm"].items():
        components.append(_lead(name, f"Lead {name}, rhythm strip, the whole page", samples, period_ms))
    return {
        "resourceType": "Observation",
        "id": "leads",
        "status": "final",
        "code": {"coding": [ECG_POTENTIAL], "text": "The leads as digitised from the printout, in mV"},
        "device": performer,
        "component": components,
    }


def _lead(name: str, text: str, samples: list[float], period_ms: float) -> dict[str, Any]:
    number = MDC_LEAD_NUMBERS[name if name in MDC_LEAD_NUMBERS else RHYTHM_LEAD]
    coding = {"system": MDC, "code": str(131328 + number), "display": f"MDC_ECG_ELEC_POTL_{name.upper()}"}
    return {
        "code": {"coding": [coding], "text": text},
        "valueSampledData": {
            "origin": {"value": 0, "unit": "mV", "system": UCUM, "code": "mV"},
            "period": period_ms,
            "dimensions": 1,
            # "E" is FHIR's mark for a sample that could not be read.
            "data": " ".join(f"{v:.4f}" if v is not None and math.isfinite(v) else "E" for v in samples),
        },
    }
