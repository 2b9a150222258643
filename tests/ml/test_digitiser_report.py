"""ml.digitiser_report: docs/DIGITISER.md from physiology on real pages and ground truth on
synthetic ones."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np

from ml import digitiser_report as report
from ml.synthetic import render_ecg, render_ecg_with_signals


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_render_with_signals_draws_the_same_page_and_returns_what_it_drew():
    image, drawn = render_ecg_with_signals("mi", 2)

    assert np.array_equal(np.asarray(image), np.asarray(render_ecg("mi", 2)))
    assert set(drawn.leads) == set(report.LEADS) and set(drawn.rhythm) == {"II"}
    times, millivolts = drawn.leads["V1"]
    assert 5.0 <= times[0] < times[-1] <= 7.5 + 1e-6 and len(times) == len(millivolts)


def test_the_digitiser_reads_back_what_a_synthetic_page_drew():
    image, drawn = render_ecg_with_signals("normal", 1)

    figures = report.against_truth(report.read_leads(_png(image)), drawn.leads)

    assert set(figures) == set(report.LEADS)
    assert np.median([lead["r"] for lead in figures.values()]) > 0.9
    assert np.median([lead["snr_db"] for lead in figures.values()]) > 5


def test_a_wrong_reading_scores_low():
    image, drawn = render_ecg_with_signals("normal", 1)
    leads = report.read_leads(_png(image))
    shifted = {name: (times + 0.3, millivolts) for name, (times, millivolts) in drawn.leads.items()}

    figures = report.against_truth(leads, shifted)

    assert np.median([lead["snr_db"] for lead in figures.values()]) < 3


def test_the_physiology_checks_hold_on_a_page_whose_leads_obey_them():
    leads = report.read_leads(_png(render_ecg("normal", 5)))

    checks = report.physiology(leads)

    assert set(checks) == {"einthoven", "goldberger", "panel_vs_rhythm"}
    assert checks["panel_vs_rhythm"] > 0.9  # both are lead II at the same instants


def test_the_document_has_every_section_the_anchors_and_the_cost_ratio():
    real = [_png(render_ecg("abnormal", 7))]
    findings = report.measure(real, synthetic=2)

    text = report.build_document(
        findings, generated=dt.date(2026, 12, 3), command="python -m ml.digitiser_report"
    )

    assert text.startswith("# The digitiser")
    assert "## Physiology on 1 real pages" in text and "Einthoven" in text and "Goldberger" in text
    assert "## Against ground truth on 2 synthetic pages" in text
    assert all(f"| {lead} |" in text for lead in report.LEADS)
    assert "12.15 dB" in text and "19.65 dB" in text and "0.91" in text
    assert f"**{findings.cost['ratio']:.2f}x**" in text
