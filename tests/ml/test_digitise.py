"""``python -m ml.digitise``: the twelve leads of a printout in millivolts, as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml import digitise as cli
from ml.guard import UNREADABLE_SENTENCE
from ml.traces import SAMPLING_HZ
from tests.conftest import render_ecg_bytes, render_photo_bytes
from tests.ml.helpers import encode

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture
def page_file(tmp_path):
    from ml.synthetic import render_ecg

    path = tmp_path / "page.png"
    path.write_bytes(encode(render_ecg("normal", 4)))
    return path


def test_a_page_gives_twelve_leads_of_two_and_a_half_seconds_and_the_rhythm_strip(page_file, capsys):
    assert cli.main([str(page_file)]) == 0

    [result] = json.loads(capsys.readouterr().out)
    assert result["image"] == str(page_file)
    assert result["fs"] == SAMPLING_HZ
    assert tuple(result["leads"]) == LEADS
    assert {len(values) for values in result["leads"].values()} == {round(2.5 * SAMPLING_HZ)}
    assert result["start_s"] == {
        **dict.fromkeys(("I", "II", "III"), 0.0),
        **dict.fromkeys(("aVR", "aVL", "aVF"), 2.5),
        **dict.fromkeys(("V1", "V2", "V3"), 5.0),
        **dict.fromkeys(("V4", "V5", "V6"), 7.5),
    }
    assert list(result["rhythm"]) == ["II"] and len(result["rhythm"]["II"]) == round(10 * SAMPLING_HZ)


def test_each_page_comes_with_its_measurements(page_file, capsys):
    from ml import leads
    from ml.preprocess import decode_image

    assert cli.main([str(page_file)]) == 0

    [result] = json.loads(capsys.readouterr().out)
    measurements = result["measurements"]
    assert 40 < measurements["heart_rate_bpm"] < 150
    assert all(measurements[key] > 0 for key in ("pr_ms", "qrs_ms", "qt_ms", "qtc_ms"))
    assert (measurements["qtc_formula"], measurements["st_point"]) == ("Bazett", "J+60ms")
    assert tuple(measurements["st_mv"]) == LEADS and tuple(measurements["q_waves"]) == LEADS
    # The one builder the service stores with each prediction (ml.leads), not a copy of it.
    # Decoded as the worker decodes it for the hybrid: at the digitiser's width, the page in full.
    page = decode_image(page_file.read_bytes(), min_trace_width=leads.MIN_TRACE_WIDTH)
    assert {key: value for key, value in result.items() if key != "image"} == leads.page_signal(page)


def test_the_lead_ii_panel_is_the_first_seconds_of_the_lead_ii_rhythm_strip(page_file):
    """Both are lead II, printed over the same instants: the panels are cut at the right times."""
    result = cli.digitise_file(page_file)
    panel = np.array(result["leads"]["II"])
    strip = np.array(result["rhythm"]["II"])[: len(panel)]

    assert np.corrcoef(panel, strip)[0, 1] > 0.9
    # A QRS reaches about a millivolt: the values are millivolts, not pixels.
    assert 0.4 < panel.max() - panel.min() < 4.0


def test_a_page_the_guard_refuses_is_rejected_with_the_reason_and_no_signal(tmp_path, capsys):
    from ml.nonecg import render_non_ecg

    path = tmp_path / "photo.png"
    path.write_bytes(encode(render_non_ecg("photo", 0)))

    assert cli.main([str(path)]) == 1

    [result] = json.loads(capsys.readouterr().out)
    assert result["rejected"] is True and "12-lead ECG" in result["reason"]
    assert "leads" not in result
    assert "leads" in cli.digitise_file(path, guard=False)


def test_a_file_that_is_no_image_is_rejected_with_the_reason(tmp_path):
    path = tmp_path / "notes.png"
    path.write_bytes(b"not an image")

    result = cli.digitise_file(path)

    assert result["rejected"] is True and result["reason"]


def test_a_photo_is_straightened_and_read_like_its_scan(tmp_path):
    scan, photo = tmp_path / "scan.png", tmp_path / "photo.jpg"
    scan.write_bytes(render_ecg_bytes("normal", 6, size=(1200, 852)))
    photo.write_bytes(render_photo_bytes("normal", 6))

    from_scan, from_photo = cli.digitise_file(scan), cli.digitise_file(photo)

    assert "rejected" not in from_photo
    assert from_photo["measurements"]["heart_rate_bpm"] == pytest.approx(
        from_scan["measurements"]["heart_rate_bpm"], rel=0.05
    )


def test_a_photo_cut_through_the_traces_is_rejected_as_an_ecg_that_cannot_be_read(tmp_path):
    photo = tmp_path / "cut.jpg"
    photo.write_bytes(render_photo_bytes("normal", 6, keep=0.7))

    result = cli.digitise_file(photo)

    assert result["rejected"] is True and result["reason"].startswith(UNREADABLE_SENTENCE)
