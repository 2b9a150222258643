"""Plain-dict views of batches and jobs, one function per output shape.

- ``batch_as_dict`` / ``job_as_dict``: what the pages and the websocket send.
- ``batch_output`` / ``job_output``: what the API answers and a batch's webhook sends. Their
  shape is declared once, by the ``BatchOutput`` and ``JobOutput`` TypedDicts below: the
  presenters emit exactly the declared keys, in that order, and the API layer generates its
  OpenAPI schema from the same declarations.
- ``signal_output`` / ``signal_csv`` / ``signal_svg``: a job's digitised leads as the API's JSON
  (``SignalOutput``, with their measurements), as CSV (one row per sample of the page's 10 s)
  and redrawn as the printout.
- ``measurements_summary``: those measurements as the batch page's table shows them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, NewType, TypedDict, cast, get_type_hints

from django.urls import reverse

from classifier import svg_charts
from classifier.ecg_signal import (
    LEAD_NAMES,
    LEAD_ROWS,
    RHYTHM_LEAD,
    PageMeasurements,
    PageSignal,
    start_sample,
)
from classifier.models import CLASS_KEYS, Batch, Job, Prediction
from ml.decision import label_note


@dataclass(frozen=True)
class Doc:
    """``Annotated`` metadata: a field's description in the API schema."""

    text: str


# A moment as ISO 8601 text; the schema calls it a date-time.
IsoTimestamp = NewType("IsoTimestamp", str)

# Built from the models, so a new status or class cannot drift from the documented shape.
JobStatus = Literal[tuple(Job.Status.values)]  # type: ignore[valid-type]
ClassKey = Literal[tuple(CLASS_KEYS)]  # type: ignore[valid-type]
BatchStatus = Literal["processing", "completed"]
ProbabilitiesOutput = TypedDict("ProbabilitiesOutput", {key: float for key in CLASS_KEYS})  # type: ignore[misc]
CountsOutput = TypedDict("CountsOutput", {status: int for status in Job.Status.values})  # type: ignore[misc]


class ExplanationOutput(TypedDict):
    lead: Annotated[str, Doc('The lead (or two adjacent leads, "V2–V3") that carried most weight.')]
    start_s: Annotated[float, Doc("Where that stretch begins on the page's 10 s axis.")]
    end_s: float
    text: Annotated[str, Doc('For people: "Most weight on V2–V3, 5.0–7.5 s (31% of the total)".')]
    image_url: Annotated[str, Doc("The path of GET /api/v1/jobs/{id}/explanation.png: the page and its map.")]


class JobOutput(TypedDict):
    id: int
    batch: int
    status: JobStatus
    image_name: str
    sha256: Annotated[str, Doc("sha256 of the bytes as uploaded.")]
    label: ClassKey | None
    probabilities: Annotated[ProbabilitiesOutput | None, Doc("Sum to 1; null until the job succeeds.")]
    model_version: str | None
    error: Annotated[str, Doc("Why the job failed; empty otherwise.")]
    created: IsoTimestamp
    started: IsoTimestamp | None
    finished: IsoTimestamp | None
    label_note: Annotated[
        str,
        Doc(
            "Extra: why the label is not the most probable class, when the model's decision "
            "rule (an MI threshold) made it so; empty otherwise."
        ),
    ]
    image_url: Annotated[str, Doc("Extra: the path of GET /api/v1/jobs/{id}/image/.")]
    photographed: Annotated[
        bool,
        Doc(
            "Extra: the upload was a photo of a printout, found and straightened before it was read; "
            "the model's photo rule (its MI threshold for photos) labelled it."
        ),
    ]
    signal_url: Annotated[
        str | None,
        Doc(
            "Extra: the path of GET /api/v1/jobs/{id}/signal/ (the page's twelve leads in mV) "
            "once the job succeeded and its page was digitised; null otherwise."
        ),
    ]
    explanation: Annotated[
        ExplanationOutput | None,
        Doc(
            "Extra: which lead and which seconds drove the label (Grad-CAM on the image branch and "
            "integrated gradients on the signals), with the page drawn under that map at image_url. "
            "Null for models that are not explained and until the job succeeds."
        ),
    ]
    report_url: Annotated[
        str | None,
        Doc("Extra: the path of GET /api/v1/jobs/{id}/report.pdf once the job has finished; null before."),
    ]
    model_url: Annotated[
        str | None,
        Doc(
            "Extra: the path of the model's page for people: what it learnt from, how well it did "
            "in cross-validation, what it cannot do. Null until the job has a prediction."
        ),
    ]


class MeasurementsOutput(TypedDict):
    heart_rate_bpm: Annotated[float | None, Doc("60 / the median RR on the rhythm strip.")]
    rr_ms: Annotated[float | None, Doc("The median RR interval on the rhythm strip.")]
    pr_ms: Annotated[float | None, Doc("P onset to QRS onset; null without a steady P wave.")]
    qrs_ms: Annotated[float | None, Doc("QRS onset to the J point.")]
    qt_ms: Annotated[float | None, Doc("QRS onset to the T wave's end (tangent method).")]
    qtc_ms: Annotated[float | None, Doc("QT corrected for heart rate by qtc_formula.")]
    qtc_formula: Literal["Bazett"]
    st_mv: Annotated[
        dict[str, float | None], Doc("Per lead: the ST deviation at st_point from the PR segment, in mV.")
    ]
    st_point: Literal["J+60ms"]
    q_waves: Annotated[
        dict[str, bool | None], Doc("Per lead: a pathological Q wave; null where not assessed (aVR).")
    ]
    beats: Annotated[int, Doc("R peaks found on the rhythm strip.")]


class SignalOutput(TypedDict):
    job: int
    fs: Annotated[float, Doc("Samples per second of every trace.")]
    leads: Annotated[
        dict[str, list[float]],
        Doc("Each of the twelve leads in mV over the 2.5 s it was printed, from its start_s."),
    ]
    start_s: Annotated[dict[str, float], Doc("Where each lead begins on the page's 10 s time axis.")]
    rhythm: Annotated[dict[str, list[float]], Doc("The rhythm strip's lead (II) in mV over the whole 10 s.")]
    measurements: Annotated[
        MeasurementsOutput | None,
        Doc(
            "What software measured on these leads (intervals in ms, heart rate in bpm, ST in mV), "
            "each null where it could not be measured: read from the printout, not a clinical "
            "measurement. Null when none were stored with the signal."
        ),
    ]


class RejectedFileOutput(TypedDict):
    name: Annotated[str, Doc("The file's name as sent, cleaned of any path.")]
    reason: Annotated[str, Doc("Why it was refused, for the person who sent it.")]


class BatchOutput(TypedDict):
    id: int
    name: str
    status: BatchStatus
    created: IsoTimestamp
    finished: IsoTimestamp | None
    counts: CountsOutput
    callback_url: Annotated[str | None, Doc("Extra: where the webhook goes.")]
    report_url: Annotated[str, Doc("Extra: the path of GET /api/v1/batches/{id}/report.pdf.")]
    rejected: Annotated[
        list[RejectedFileOutput],
        Doc(
            "Extra: the upload's files that were refused, in the order sent, with the reason; "
            "nothing of them was stored and they have no job. The other files went ahead."
        ),
    ]
    jobs: list[JobOutput]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _has_signal(predictions: list[Prediction]) -> bool:
    # The selectors annotate has_signal and leave the signal itself unread (it is large).
    return any(
        prediction.has_signal if hasattr(prediction, "has_signal") else prediction.signal is not None
        for prediction in predictions
    )


# An ST deviation the page's table lists: 1 mm on the printout, the usual threshold of concern;
# smaller ones are within normal variation and the digitised trace's noise.
ST_SHOWN_MV = 0.1


def measurements_summary(measurements: PageMeasurements | None) -> dict[str, Any] | None:
    """The measurements as the batch page's table shows them (None: there are none).

    The intervals and heart rate as stored (None: not measured); ``st_mv`` only the leads whose
    ST deviates by ``st_threshold_mv`` or more, in page order ({} if none does; None if no lead's
    ST was measured); ``q_waves`` the leads with a pathological Q wave ([] if none; None if no
    lead was assessed). Compact: it travels with every live update of the job.
    """
    if measurements is None:
        return None
    st_mv = {lead: measurements["st_mv"].get(lead) for lead in LEAD_NAMES}
    q_waves = {lead: measurements["q_waves"].get(lead) for lead in LEAD_NAMES}
    st_measured = any(value is not None for value in st_mv.values())
    q_assessed = any(value is not None for value in q_waves.values())
    return {
        "heart_rate_bpm": measurements["heart_rate_bpm"],
        "pr_ms": measurements["pr_ms"],
        "qrs_ms": measurements["qrs_ms"],
        "qt_ms": measurements["qt_ms"],
        "qtc_ms": measurements["qtc_ms"],
        "qtc_formula": measurements["qtc_formula"],
        "st_point": measurements["st_point"],
        "st_threshold_mv": ST_SHOWN_MV,
        "st_mv": (
            {lead: value for lead, value in st_mv.items() if value is not None and abs(value) >= ST_SHOWN_MV}
            if st_measured
            else None
        ),
        "q_waves": [lead for lead, flagged in q_waves.items() if flagged] if q_assessed else None,
    }


def newest_measurements(predictions: list[Prediction]) -> PageMeasurements | None:
    # Any model's prediction of the page carries the same reading; the newest that has one wins.
    return next(
        (prediction.measurements for prediction in predictions if prediction.measurements is not None), None
    )


def job_as_dict(job: Job) -> dict[str, Any]:
    """A job with its newest prediction (label and all four probabilities), JSON-ready.

    ``label_note`` says why the label is not the most probable class, when the model's
    decision rule (an MI threshold) made it so; otherwise it is empty. The ``signal_*`` URLs
    (the page's drawing of the leads, their CSV and JSON) are null until there is a signal;
    ``measurements`` (``measurements_summary``) is null until there are measurements.
    """
    predictions = list(job.predictions.all())
    prediction = predictions[0] if predictions else None
    probabilities = {key: prediction.probabilities[key] for key in CLASS_KEYS} if prediction else None
    succeeded = job.status == Job.Status.SUCCEEDED
    has_signal = succeeded and _has_signal(predictions)
    return {
        "id": job.pk,
        "batch": job.batch_id,
        "status": job.status,
        "image_name": job.original_name,
        "image_url": reverse("classifier:job-image", args=[job.pk]),
        "signal_url": reverse("api:job-signal", args=[job.pk]) if has_signal else None,
        "signal_svg_url": reverse("classifier:job-signal-svg", args=[job.pk]) if has_signal else None,
        "signal_csv_url": reverse("api:job-signal-csv", args=[job.pk]) if has_signal else None,
        "sha256": job.sha256,
        "label": prediction.label if prediction else None,
        "label_note": (
            label_note(
                prediction.label, probabilities, prediction.model_version.card, photographed=job.photographed
            )
            if prediction
            else ""
        ),
        "photographed": job.photographed,
        "probabilities": probabilities,
        "model_version": prediction.model_version.name if prediction else None,
        "model_url": (
            reverse("classifier:model-detail", args=[prediction.model_version.name]) if prediction else None
        ),
        "inference_ms": prediction.inference_ms if prediction else None,
        "measurements": measurements_summary(newest_measurements(predictions)) if succeeded else None,
        "explanation": _explanation(job, prediction) if succeeded else None,
        "report_url": reverse("api:job-report", args=[job.pk]) if job.is_finished else None,
        "error": job.error,
        "attempts": job.attempts,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
    }


def _explanation(job: Job, prediction: Prediction | None) -> dict[str, Any] | None:
    """The newest prediction's explanation without its weight map, and where its overlay is."""
    found = prediction.explanation if prediction else None
    if not found:
        return None
    return {
        "lead": found["lead"],
        "start_s": found["start_s"],
        "end_s": found["end_s"],
        "text": found["text"],
        "image_url": reverse("api:job-explanation", args=[job.pk]),
        "page_image_url": reverse("classifier:job-explanation", args=[job.pk]),
    }


def batch_counts(jobs: list[Job]) -> dict[str, int]:
    counts = {status: 0 for status in Job.Status.values}
    for job in jobs:
        counts[job.status] += 1
    return counts


def batch_as_dict(batch: Batch, *, with_jobs: bool = True) -> dict[str, Any]:
    """A batch with its counts per status and, unless asked not to, its jobs."""
    jobs = list(batch.jobs.all())
    data: dict[str, Any] = {
        "id": batch.pk,
        "name": batch.name,
        "status": "completed" if batch.is_completed else "processing",
        "created": _iso(batch.created),
        "finished": _iso(batch.completed),
        "url": reverse("classifier:batch-detail", args=[batch.pk]),
        "report_url": reverse("api:batch-report", args=[batch.pk]),
        "counts": batch_counts(jobs),
        "total": len(jobs),
        "rejected": [{"name": item["name"], "reason": item["reason"]} for item in batch.rejected],
    }
    if with_jobs:
        data["jobs"] = [job_as_dict(job) for job in jobs]
    return data


@cache
def _keys(shape: type) -> tuple[str, ...]:
    return tuple(get_type_hints(shape))


def _declared(shape: type, values: dict[str, Any]) -> dict[str, Any]:
    # Exactly the declared keys, in declared order (the API's JSON keeps that order).
    return {key: values[key] for key in _keys(shape)}


def job_output(job: Job) -> JobOutput:
    """A job as the API answers it (see ``JobOutput``)."""
    values = {**job_as_dict(job), "image_url": reverse("api:job-image", args=[job.pk])}
    if values["explanation"] is not None:
        values["explanation"] = _declared(ExplanationOutput, values["explanation"])
    return cast(JobOutput, _declared(JobOutput, values))


def batch_output(batch: Batch) -> BatchOutput:
    """A batch with its jobs as the API answers it and its webhook sends it (see ``BatchOutput``)."""
    values = {
        **batch_as_dict(batch, with_jobs=False),
        "callback_url": batch.callback_url or None,
        "jobs": [job_output(job) for job in batch.jobs.all()],
    }
    return cast(BatchOutput, _declared(BatchOutput, values))


def signal_output(job: Job, signal: PageSignal, measurements: PageMeasurements | None = None) -> SignalOutput:
    """A job's digitised leads and their measurements as the API answers them (see
    ``SignalOutput``), leads in page order."""
    return {
        "job": job.pk,
        "fs": signal["fs"],
        "leads": {name: signal["leads"][name] for name in LEAD_NAMES},
        "start_s": {name: signal["start_s"][name] for name in LEAD_NAMES},
        "rhythm": dict(signal["rhythm"]),
        "measurements": _measurements_output(measurements),
    }


def _measurements_output(measurements: PageMeasurements | None) -> MeasurementsOutput | None:
    if measurements is None:
        return None
    output = _declared(MeasurementsOutput, dict(measurements))
    # Leads in page order, as the signal's.
    output["st_mv"] = {name: measurements["st_mv"][name] for name in LEAD_NAMES}
    output["q_waves"] = {name: measurements["q_waves"][name] for name in LEAD_NAMES}
    return cast(MeasurementsOutput, output)


def signal_csv(signal: PageSignal) -> str:
    """The leads as CSV: ``t_s``, the twelve leads, then the rhythm strip (``II_rhythm``), one row
    per sample over the page's 10 s. A lead has values only for the 2.5 s it was printed, from its
    start_s; its other cells are empty (not zero: nothing was printed there)."""
    fs = signal["fs"]
    rhythm_names = list(signal["rhythm"])
    samples = max(len(trace) for trace in signal["rhythm"].values())
    columns: list[list[float | None]] = []
    for name in LEAD_NAMES:
        column: list[float | None] = [None] * samples
        start = start_sample(signal, name)
        trace = signal["leads"][name][: max(samples - start, 0)]
        column[start : start + len(trace)] = trace
        columns.append(column)
    for name in rhythm_names:
        trace = signal["rhythm"][name]
        columns.append([*trace, *[None] * (samples - len(trace))])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["t_s", *LEAD_NAMES, *(f"{name}_rhythm" for name in rhythm_names)])
    for index in range(samples):
        cells = ["" if column[index] is None else repr(column[index]) for column in columns]
        writer.writerow([f"{index / fs:.4f}", *cells])
    return out.getvalue()


def signal_svg(job: Job, signal: PageSignal) -> str:
    """The leads redrawn as printed: three rows of four 2.5 s panels, then the rhythm strip."""
    rhythm_name = RHYTHM_LEAD if RHYTHM_LEAD in signal["rhythm"] else next(iter(signal["rhythm"]))
    return svg_charts.twelve_lead_chart(
        LEAD_ROWS,
        signal["leads"],
        signal["start_s"],
        (rhythm_name, signal["rhythm"][rhythm_name]),
        signal["fs"],
        f"The twelve leads of {job.original_name}, as digitised",
    )
