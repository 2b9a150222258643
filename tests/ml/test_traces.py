"""Digitising the printed traces, on pages drawn with known waveforms (never the real scans)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml import layout, representations
from ml.synthetic import render_ecg
from ml.traces import SIGNAL_CHANNELS, SIGNAL_SAMPLES, TRACE_IMAGE_SHAPE, digitise, leads_inputs
from tests.ml.helpers import encode

PULSE_MV = 1.0
PULSE_START_S, PULSE_END_S = 3.0, 4.0  # inside the second column, away from its borders


def page_with_pulse(row: int, scale: float = 1.0) -> Image.Image:
    """A white 1200x852 page (times ``scale``) whose trace ``row`` is flat except for a 1 mV
    rectangular pulse from 3 s to 4 s; the other rows are flat lines; panel separators drawn."""
    width, height = round(layout.REFERENCE_WIDTH * scale), round(layout.REFERENCE_HEIGHT * scale)
    page = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    x0, x1 = layout.COLUMN_EDGES[0] * scale, layout.COLUMN_EDGES[-1] * scale
    per_s = layout.PIXELS_PER_SECOND * scale
    for index, baseline in enumerate(layout.ROW_BASELINES):
        y = baseline * scale
        if index != row:
            draw.line([(x0, y), (x1, y)], fill=(0, 0, 0), width=2)
            continue
        top = y - PULSE_MV * layout.PIXELS_PER_MV * scale
        start, end = x0 + PULSE_START_S * per_s, x0 + PULSE_END_S * per_s
        draw.line([(x0, y), (start, y), (start, top), (end, top), (end, y), (x1, y)], fill=(0, 0, 0), width=2)
    for edge in layout.COLUMN_EDGES[1:-1]:
        draw.line(
            [(edge * scale, layout.GRID_TOP * scale), (edge * scale, layout.GRID_BOTTOM * scale)], fill=0
        )
    return page


def seconds(s: float) -> int:
    return round(s / 10.0 * SIGNAL_SAMPLES)


@pytest.mark.parametrize("row", range(4))
def test_a_pulse_is_read_in_millivolts_at_its_time_and_row(row: int) -> None:
    signals = digitise(page_with_pulse(row).getchannel("R"))
    assert signals.shape == (SIGNAL_SAMPLES, SIGNAL_CHANNELS)
    inside = signals[seconds(3.2) : seconds(3.8)]
    outside = np.concatenate([signals[seconds(0.5) : seconds(2.0)], signals[seconds(5.0) : seconds(9.5)]])
    # Top and bottom of the ink (a 2 px line) sit within 0.05 mV of the drawn level.
    np.testing.assert_allclose(inside[:, 2 * row : 2 * row + 2], PULSE_MV, atol=0.06)
    np.testing.assert_allclose(outside, 0.0, atol=0.06)
    others = [c for c in range(SIGNAL_CHANNELS) if c // 2 != row]
    np.testing.assert_allclose(signals[:, others], 0.0, atol=0.06)


def test_the_printed_panel_separators_are_not_read_as_waves() -> None:
    signals = digitise(page_with_pulse(0).getchannel("R"))
    for edge in layout.COLUMN_EDGES[1:-1]:
        t = (edge - layout.COLUMN_EDGES[0]) / layout.PIXELS_PER_SECOND
        around = signals[max(0, seconds(t) - 3) : seconds(t) + 4, 2:]
        np.testing.assert_allclose(around, 0.0, atol=0.06)


def test_millivolts_do_not_depend_on_the_page_resolution() -> None:
    full = digitise(page_with_pulse(1).getchannel("R"))
    half = digitise(page_with_pulse(1, scale=0.75).getchannel("R"))
    assert np.abs(full - half)[:, 2:4].mean() < 0.05


def test_leads_inputs_of_a_rendered_page_have_the_models_shapes_and_ranges() -> None:
    inputs = leads_inputs(render_ecg("abnormal", seed=3))
    assert inputs["trace_image"].shape == (*TRACE_IMAGE_SHAPE, 1)
    assert inputs["signals"].shape == (SIGNAL_SAMPLES, SIGNAL_CHANNELS)
    assert inputs["trace_image"].min() >= -1.0 and inputs["trace_image"].max() <= 1.0
    # A rendered ECG has QRS complexes: every row swings by more than half a millivolt.
    swings = inputs["signals"].max(axis=0) - inputs["signals"].min(axis=0)
    assert (swings > 0.5).all()


def test_representations_decode_bytes_into_named_batches() -> None:
    data = encode(render_ecg("normal", seed=5), "JPEG", quality=80)
    leads = representations.inputs_from_bytes(data, "leads")
    page = representations.inputs_from_bytes(data, "page")
    measured = representations.inputs_from_bytes(data, "leads_measured")
    assert {k: v.shape for k, v in leads.items()} == representations.get("leads").shapes
    assert {k: v.shape for k, v in page.items()} == representations.get("page").shapes
    assert {k: v.shape for k, v in measured.items()} == representations.get("leads_measured").shapes
    np.testing.assert_array_equal(measured["signals"], leads["signals"])  # the same reading, plus
    assert measured["measurements"].any()
    batch = representations.stack([leads, leads])
    assert representations.batch_size(batch) == 2
    assert representations.take(batch, slice(0, 1))["signals"].shape == (1, SIGNAL_SAMPLES, SIGNAL_CHANNELS)
    known = "known: leads, leads_measured, page"
    with pytest.raises(ValueError, match=f"Unknown input representation 'words'; {known}"):
        representations.inputs_from_bytes(data, "words")


def _follow_trace_column_by_column(band: np.ndarray, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """The tracker as first written, one numpy search per column: the reference the
    whole-band version must match exactly (the shipped models were trained on its output)."""

    def runs(indices: np.ndarray) -> list[tuple[int, int]]:
        breaks = np.flatnonzero(np.diff(indices) > 1)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(indices) - 1]))
        return [(int(indices[s]), int(indices[e])) for s, e in zip(starts, ends, strict=True)]

    top = np.empty(band.shape[1], dtype=np.float32)
    bottom = np.empty(band.shape[1], dtype=np.float32)
    position = float(baseline)
    for x in range(band.shape[1]):
        rows = np.flatnonzero(band[:, x])
        if len(rows):
            first, last = min(runs(rows), key=lambda run: abs((run[0] + run[1]) / 2 - position))
            position = (first + last) / 2
            top[x], bottom[x] = first, last
        else:
            top[x] = bottom[x] = position
    return top, bottom


@pytest.mark.parametrize("seed", range(5))
def test_the_whole_band_tracker_matches_the_column_by_column_one_on_random_ink(seed: int) -> None:
    from ml.traces import _follow_trace

    rng = np.random.default_rng(seed)
    band = rng.random((60, 300)) < rng.uniform(0.02, 0.4)
    band[:, rng.integers(0, 300, 30)] = False  # columns without ink keep the previous position
    band[0, :50] = band[-1, 50:100] = True  # runs touching the band's edges

    for baseline in (0, 30, 59):
        new, old = _follow_trace(band, baseline), _follow_trace_column_by_column(band, baseline)
        np.testing.assert_array_equal(new[0], old[0])
        np.testing.assert_array_equal(new[1], old[1])


@pytest.mark.parametrize("label", ["normal", "mi", "abnormal"])
def test_the_whole_band_tracker_digitises_a_page_exactly_as_before(label: str, monkeypatch) -> None:
    from ml import traces

    red = render_ecg(label, 3).getchannel("R")
    now = digitise(red)
    monkeypatch.setattr(traces, "_follow_trace", _follow_trace_column_by_column)

    np.testing.assert_array_equal(now, digitise(red))
