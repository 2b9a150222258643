"""Measurements from the digitised leads, on synthetic pages with known intervals (never the real scans).

The known values come from the waves the generator drew (``ml.synthetic.KnownMeasurements``): each
Gaussian wave lasts its centre +- 2 sigma, the QRS from the earliest to the latest of its visible
(>= 0.1 mV) q, R and S waves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml import digitise as cli
from ml.labels import CLASSES
from ml.measurements import FEATURE_NAMES, LEADS, Measurements, _nanmedian, features, measure
from ml.synthetic import KnownMeasurements, render_ecg_with_signals
from ml.traces import SIGNAL_SAMPLES, TwelveLeads, digitise, twelve_leads
from tests.ml.helpers import encode

SEEDS = range(4)


@cache
def page(label: str, seed: int) -> tuple[Measurements, KnownMeasurements]:
    image, drawn = render_ecg_with_signals(label, seed)
    return measure(twelve_leads(digitise(image.getchannel("R")))), drawn.known


@pytest.mark.parametrize("label", CLASSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_heart_rate_and_qrs_duration_match_the_drawn_beats(label: str, seed: int) -> None:
    measured, known = page(label, seed)
    assert measured.heart_rate_bpm == pytest.approx(known.heart_rate_bpm, abs=5)
    assert measured.qrs_ms == pytest.approx(known.qrs_ms, abs=30)
    assert measured.qt_ms == pytest.approx(known.qt_ms, abs=40)
    assert measured.qtc_ms == pytest.approx(measured.qt_ms / np.sqrt(measured.rr_ms / 1000))  # Bazett


@pytest.mark.parametrize("seed", SEEDS)
def test_pr_is_read_where_p_waves_were_drawn_and_not_in_atrial_fibrillation(seed: int) -> None:
    measured, known = page("normal", seed)
    assert measured.pr_ms == pytest.approx(known.pr_ms, abs=40)
    fibrillation = next(s for s in range(50) if page("abnormal", s)[1].subtype == "atrial_fibrillation")
    assert page("abnormal", fibrillation)[0].pr_ms is None


@pytest.mark.parametrize("seed", SEEDS)
def test_st_at_j_plus_60_ms_follows_the_acute_infarction_territory(seed: int) -> None:
    measured, known = page("mi", seed)
    raised = [lead for lead, shift in known.st_mv.items() if shift >= 0.2]
    lowered = [lead for lead, shift in known.st_mv.items() if shift <= -0.1]
    assert raised
    for lead in raised:
        assert measured.st_mv[lead] > 0.1, lead
        assert measured.st_mv[lead] == pytest.approx(known.st_mv[lead], abs=0.1), lead
    for lead in lowered:
        assert measured.st_mv[lead] < 0, lead
    for lead in set(LEADS) - set(raised) - set(lowered) - {lead for lead, s in known.st_mv.items() if s}:
        assert abs(measured.st_mv[lead]) < 0.1, lead


@pytest.mark.parametrize("seed", SEEDS)
def test_pathological_q_waves_are_flagged_in_the_old_infarctions_territory_only(seed: int) -> None:
    measured, known = page("history_mi", seed)
    flagged = {lead for lead, q in measured.q_waves.items() if q}
    assert flagged == set(known.q_depth_mv)
    assert measured.q_waves["aVR"] is None  # not assessed


@pytest.mark.parametrize("seed", SEEDS)
def test_the_measurements_are_plain_json_values(seed: int) -> None:
    """numpy's bools and floats break json.dumps and the stored shape's check (seed 1 had both)."""
    measured, _ = page("history_mi", seed)
    as_dict = measured.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert all(value is None or type(value) is bool for value in as_dict["q_waves"].values())


@pytest.mark.parametrize("label", ["normal", "mi"])
def test_no_q_waves_on_pages_without_an_old_infarction(label: str) -> None:
    for seed in SEEDS:
        measured, _ = page(label, seed)
        assert not any(measured.q_waves.values())


def _all_none(measured: Measurements) -> bool:
    intervals = (measured.pr_ms, measured.qrs_ms, measured.qt_ms, measured.qtc_ms)
    return all(value is None for value in intervals) and not any(
        value is not None for value in (*measured.st_mv.values(), *measured.q_waves.values())
    )


def test_a_flat_signal_gives_none_fields_not_an_exception() -> None:
    flat = np.zeros(SIGNAL_SAMPLES, dtype=np.float32)
    leads = twelve_leads(np.zeros((SIGNAL_SAMPLES, 8), dtype=np.float32))
    for measured in (
        measure(leads),
        measure(TwelveLeads({}, {}, {"II": flat})),
        measure(TwelveLeads({}, {}, {})),
    ):
        assert measured.heart_rate_bpm is None and measured.beats == 0
        assert _all_none(measured)
        assert set(measured.st_mv) == set(LEADS) == set(measured.q_waves)


def test_short_or_broken_signals_give_none_fields() -> None:
    for strip in (np.array([]), np.array([0.0, 1.0]), np.full(SIGNAL_SAMPLES, np.nan)):
        measured = measure(TwelveLeads({}, {}, {"II": strip}))
        assert measured.heart_rate_bpm is None and _all_none(measured)
    # Beats on the strip but no lead panels: a heart rate, nothing per lead.
    image, _ = render_ecg_with_signals("normal", 0)
    strip = twelve_leads(digitise(image.getchannel("R"))).rhythm
    measured = measure(TwelveLeads({}, {}, strip))
    assert measured.heart_rate_bpm is not None
    assert not any(value is not None for value in (*measured.st_mv.values(), *measured.q_waves.values()))


def test_features_give_a_model_the_measurements_with_what_was_not_measured_flagged() -> None:
    measured, known = page("history_mi", 0)
    vector = dict(zip(FEATURE_NAMES, features(measured), strict=True))
    assert vector["heart_rate_bpm"] == pytest.approx(measured.heart_rate_bpm / 100, rel=1e-5)
    assert vector["qrs_ms_measured"] == 1.0
    assert {lead for lead in LEADS if vector.get(f"q_{lead}") == 1.0} == set(known.q_depth_mv)
    nothing = features(measure(TwelveLeads({}, {}, {})))
    assert nothing.shape == (len(FEATURE_NAMES),) and nothing.dtype == np.float32
    assert not nothing.any()  # no value and every "_measured" flag 0: not "measured as zero"
    wild = Measurements(60.0, 1000.0, 160.0, 90.0, 400.0, 400.0, dict.fromkeys(LEADS, 9.0), {}, 10)
    assert max(features(wild)) <= 1.0  # a misread trace's ST is clipped


def test_the_digitise_command_adds_the_measurements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, drawn = render_ecg_with_signals("normal", 1)
    path = tmp_path / "page.png"
    path.write_bytes(encode(image, "PNG"))
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode(Image.new("RGB", (1200, 852), (255, 255, 255)), "PNG"))

    cli.main([str(path), str(blank), "--no-guard"])
    result, empty = json.loads(capsys.readouterr().out)

    values = result["measurements"]
    assert values["heart_rate_bpm"] == pytest.approx(drawn.known.heart_rate_bpm, abs=5)
    assert values["qtc_formula"] == "Bazett" and values["st_point"] == "J+60ms"
    assert set(values["st_mv"]) == set(LEADS) == set(values["q_waves"])
    blank_values = empty["measurements"]
    assert blank_values["heart_rate_bpm"] is None and blank_values["qrs_ms"] is None
    assert set(blank_values["st_mv"].values()) == {None}


def test_importing_measurements_is_cheap() -> None:
    heavy = "{'tensorflow', 'keras', 'scipy', 'pandas'}"
    code = f"import sys, ml.measurements\nprint(sorted({heavy} & set(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"


def test_median_beats_ignore_gaps_exactly_as_numpys_nanmedian() -> None:
    # The median beat is the middle of each sample's finite values over the beats; a sample no
    # beat reaches (all NaN) stays NaN. Odd and even counts, gaps at the edges and inside.
    rng = np.random.default_rng(7)
    for beats in (1, 2, 5, 8):
        windows = rng.normal(size=(13, beats, 40))
        windows[rng.random(windows.shape) < 0.3] = np.nan
        windows[:, :, :3] = np.nan
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            expected = np.nanmedian(windows, axis=1)
        np.testing.assert_array_equal(_nanmedian(windows), expected)
