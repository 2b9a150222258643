"""PDF reports of results, for a clinician to print or file: one job, or a whole batch.

A job's report holds the page (under its explanation's map when it has one), the leads as the
digitiser read them, redrawn, and what was measured on them, the label with all four
probabilities, the explanation in words, the model with its cross-validated figures and limits,
the date, and on every page "Research software, not a medical device". ReportLab draws it with
its built-in fonts: nothing is fetched over the network.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Line, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus.flowables import Flowable

from classifier.ecg_signal import LEAD_ROWS, RHYTHM_LEAD, PageMeasurements, PageSignal
from classifier.explanations import overlay_png
from classifier.model_pages import model_page
from classifier.models import CLASS_KEYS, Batch, Job, Label
from classifier.presenters import newest_measurements
from ml.decision import label_note
from ml.labels import DESCRIPTIONS

NOT_A_DEVICE = "Research software, not a medical device. A clinician reads the ECG; these results do not."
WIDTH = A4[0] - 36 * mm  # the text column
MV_HEIGHT = 6 * mm  # the redrawn leads' gain: 6 mm per mV (the printout's 10 mm/mV, shrunk to fit)
MEASURES = (
    ("heart_rate_bpm", "Heart rate", "bpm"),
    ("pr_ms", "PR", "ms"),
    ("qrs_ms", "QRS", "ms"),
    ("qt_ms", "QT", "ms"),
    ("qtc_ms", "QTc (Bazett)", "ms"),
)


def job_pdf(job: Job, signal: PageSignal | None, *, generated: datetime) -> bytes:
    """One job's report (``job`` with its predictions prefetched, newest first)."""
    return _document(f"ECG report: {job.original_name}", _job_story(job, signal), generated)


def batch_pdf(
    batch: Batch, jobs: Sequence[Job], signals: dict[int, PageSignal], *, generated: datetime
) -> bytes:
    """A batch's report: a summary page, then each job's report on pages of its own."""
    story = _batch_summary(batch, jobs)
    for job in jobs:
        story += [PageBreak(), *_job_story(job, signals.get(job.pk))]
    return _document(f"ECG batch report: {batch.name}", story, generated)


_STYLES = getSampleStyleSheet()
TITLE = ParagraphStyle("title", parent=_STYLES["Heading1"], fontSize=16, spaceAfter=4)
HEADING = ParagraphStyle("heading", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4)
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9.5, leading=12.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10, textColor=colors.HexColor("#555555"))
LABEL = ParagraphStyle("label", parent=BODY, fontSize=14, leading=18, spaceBefore=2, spaceAfter=4)
TABLE_STYLE = [
    ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
    ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
    ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
]


def _text(value: object) -> str:
    """User-given text (file and batch names) made safe for ReportLab's mark-up."""
    return escape(str(value))


def _document(title: str, story: list[Flowable], generated: datetime) -> bytes:
    out = io.BytesIO()
    stamp = f"{NOT_A_DEVICE}   Generated {generated:%Y-%m-%d %H:%M} UTC by ecgsite."

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(18 * mm, 10 * mm, stamp)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {document.page}")
        canvas.restoreState()

    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author="ecgsite",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _job_story(job: Job, signal: PageSignal | None) -> list[Flowable]:
    prediction = job.result()
    story: list[Flowable] = [
        Paragraph(f"ECG report: {_text(job.original_name)}", TITLE),
        Paragraph(
            f"Batch “{_text(job.batch.name)}”, uploaded {job.created:%Y-%m-%d %H:%M} UTC"
            + (f", classified {job.finished:%Y-%m-%d %H:%M} UTC" if job.finished else ""),
            SMALL,
        ),
    ]
    if prediction is None:
        reason = job.error or "This image has not been classified yet."
        story += [Paragraph(_text(reason), LABEL), _page_image(job, None)]
        return story

    label = Label(prediction.label).label
    story.append(Paragraph(f"<b>{_text(label)}</b>", LABEL))
    note = label_note(
        prediction.label,
        prediction.probabilities,
        prediction.model_version.card,
        photographed=job.photographed,
    )
    if note:
        story.append(Paragraph(_text(note), BODY))
    rows = [["Class", "Probability"]] + [
        [DESCRIPTIONS[key][:1].upper() + DESCRIPTIONS[key][1:], f"{prediction.probabilities[key]:.1%}"]
        for key in CLASS_KEYS
    ]
    story.append(Table(rows, colWidths=[70 * mm, 30 * mm], hAlign="LEFT", style=TABLE_STYLE))
    explanation = prediction.explanation
    story.append(Paragraph("Where the model looked" if explanation else "The page", HEADING))
    if explanation:
        story.append(Paragraph(_text(explanation["text"]) + " (red on the page; outlined).", BODY))
    story.append(_page_image(job, explanation))
    if signal is not None:
        story.append(
            KeepTogether([Paragraph("The leads as read from the page", HEADING), _leads_drawing(signal)])
        )
        measured = newest_measurements(list(job.predictions.all()))
        if measured:
            story += _measurement_table(measured)
    story += _model_section(prediction)
    return story


def _page_image(job: Job, explanation: dict[str, Any] | None) -> Flowable:
    if explanation:
        data = overlay_png(job, explanation)  # type: ignore[arg-type]
    else:
        with job.image.open("rb") as stored:
            data = stored.read()
    width = WIDTH
    height = width * (job.height / job.width) if job.width else width * 0.71
    return Image(io.BytesIO(data), width=width, height=height)


def _leads_drawing(signal: PageSignal) -> Drawing:
    """Three rows of four 2.5 s panels, then the rhythm strip, as on the printout."""
    row_height = 22 * mm
    drawing = Drawing(WIDTH, row_height * 4)
    per_second = WIDTH / 10.0
    step = 1.0 / float(signal["fs"])
    rows: list[list[tuple[str, list[float], float]]] = [
        [(name, signal["leads"][name], float(signal["start_s"][name])) for name in names]
        for names in LEAD_ROWS
    ]
    rhythm = RHYTHM_LEAD if RHYTHM_LEAD in signal["rhythm"] else next(iter(signal["rhythm"]))
    rows.append([(f"{rhythm} (rhythm)", signal["rhythm"][rhythm], 0.0)])
    for index, row in enumerate(rows):
        baseline = row_height * (len(rows) - index) - row_height / 2
        drawing.add(
            Line(0, baseline, WIDTH, baseline, strokeColor=colors.HexColor("#f2c4cc"), strokeWidth=0.3)
        )
        for name, samples, start in row:
            points: list[float] = []
            for number, value in enumerate(samples):
                if value is None:
                    continue
                volts = max(-2.5, min(2.5, float(value)))
                points += [(start + number * step) * per_second, baseline + volts * MV_HEIGHT]
            drawing.add(PolyLine(points, strokeColor=colors.black, strokeWidth=0.5))
            drawing.add(String(start * per_second + 2, baseline + row_height * 0.3, name, fontSize=7))
    return drawing


def _measurement_table(measured: PageMeasurements) -> list[Flowable]:
    rows = [["Measure", "Value"]]
    for key, name, unit in MEASURES:
        value = measured.get(key)  # type: ignore[misc]
        rows.append([name, f"{value:.0f} {unit}" if isinstance(value, int | float) else "not measured"])
    return [
        Table(rows, colWidths=[50 * mm, 40 * mm], hAlign="LEFT", style=TABLE_STYLE),
        Paragraph("Read by software from the printed traces: not a clinical measurement.", SMALL),
    ]


def _model_section(prediction: Any) -> list[Flowable]:
    about = model_page(prediction.model_version, is_default=False)
    figures = (
        f"Measured by {about['evaluated_on']} on images it did not train on: macro-F1 {about['macro_f1']}, "
        f"accuracy {about['accuracy']}, calibration error (ECE) {about['ece']}."
        if about["cross_validated"]
        else f"Not cross-validated ({about['evaluated_on']})."
    )
    story: list[Flowable] = [
        Paragraph(f"The model: {_text(prediction.model_version.name)}", HEADING),
        Paragraph(_text(figures), BODY),
        Paragraph("What it cannot do:", BODY),
    ]
    story += [Paragraph("• " + _text(sentence), BODY) for sentence in about["limits"]]
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph("Data: " + _text(about["credit"]), SMALL))
    return story


def _batch_summary(batch: Batch, jobs: Sequence[Job]) -> list[Flowable]:
    story: list[Flowable] = [
        Paragraph(f"ECG batch report: {_text(batch.name)}", TITLE),
        Paragraph(
            f"{len(jobs)} image{'s' if len(jobs) != 1 else ''}, uploaded {batch.created:%Y-%m-%d %H:%M} UTC"
            + (
                f", complete {batch.completed:%Y-%m-%d %H:%M} UTC"
                if batch.completed
                else ", still in progress"
            ),
            SMALL,
        ),
        Spacer(1, 3 * mm),
    ]
    rows: list[list[Any]] = [["Image", "Result", "Where the model looked"]]
    for job in jobs:
        prediction = job.result()
        if prediction is None:
            result, where = (job.error or job.status), ""
        else:
            top = prediction.probabilities[prediction.label]
            result = f"{Label(prediction.label).label} ({top:.0%})"
            where = (prediction.explanation or {}).get("text", "")
        rows.append(
            [
                Paragraph(_text(job.original_name), BODY),
                Paragraph(_text(result), BODY),
                Paragraph(_text(where), BODY),
            ]
        )
    story.append(Table(rows, colWidths=[55 * mm, 55 * mm, WIDTH - 110 * mm], style=TABLE_STYLE, repeatRows=1))
    if batch.rejected:
        story.append(Paragraph("Files refused at upload (nothing of them was stored)", HEADING))
        story += [
            Paragraph(f"<b>{_text(item['name'])}</b>: {_text(item['reason'])}", BODY)
            for item in batch.rejected
        ]
    return story
