"""Read the printed traces of a 12-lead page as time-aligned inputs for the hybrid model.

Numpy and Pillow only. The page's x axis is time: the four 2.5 s columns (I/II/III,
aVR/aVL/aVF, V1-V3, V4-V6) follow each other, and the rhythm strip (lead II) spans the same
10 s below them. So one 10 s time axis carries all four trace rows, and a sequence model
can read them left to right.

Two arrays per page (``leads_inputs``):

- ``trace_image``: the trace area between the first and last column edge (10 s), red
  channel (the pink grid vanishes), ink thickened, box-resized to ``TRACE_IMAGE_SHAPE``,
  scaled to [-1, 1]. The spatial input of the MobileNet branch.
- ``signals``: the traces digitised to millivolts, ``SIGNAL_SAMPLES`` samples over the 10 s,
  two channels per row (the top and the bottom of the ink in each pixel column, so a steep
  QRS stroke keeps its full height), rows in page order: ``SIGNAL_CHANNELS`` = 8.

Geometry comes from ``ml.layout`` and is scaled to the page size, so any resolution of
the khan-ecg layout works; a photographed or skewed page is not located first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ml import layout
from ml.preprocess import _thicken_ink

SIGNAL_SAMPLES = 1024  # 10 s: about 102 samples per second, one per page pixel column
ROWS = len(layout.ROW_BASELINES)
SIGNAL_CHANNELS = 2 * ROWS
TRACE_IMAGE_SHAPE: tuple[int, int] = (128, 512)  # (height, width): 4 rows, 10 s
INK_LEVEL = 128  # red-channel value below which a pixel is ink (grid and paper are > 170)
# Columns this close to a panel border hold the printed separator line, not a trace.
SEPARATOR_HALF_WIDTH_PX = 3
MAX_ABS_MV = 5.0


def _trace_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the 10 s trace area on a ``width`` x ``height`` page."""
    return (
        round(layout.scale_x(layout.COLUMN_EDGES[0], width)),
        round(layout.scale_y(layout.GRID_TOP, height)),
        round(layout.scale_x(layout.COLUMN_EDGES[-1], width)),
        round(layout.scale_y(layout.GRID_BOTTOM, height)),
    )


def trace_image(red: Image.Image) -> np.ndarray:
    """The float32 (H, W, 1) trace-area image of a full page's red channel."""
    crop = red.crop(_trace_box(red.width, red.height))
    height, width = TRACE_IMAGE_SHAPE
    if crop.width > 2 * width:
        crop = Image.fromarray(_thicken_ink(np.asarray(crop)))
    crop = crop.resize((width, height), Image.Resampling.BOX)
    return (np.asarray(crop, dtype=np.float32) / 127.5 - 1.0)[:, :, np.newaxis]


def _column_runs(band: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """The runs of ink in each column of ``band``: per column, the first and the last row of
    each run, top to bottom. Found for the whole band at once (a run starts where a column
    turns from paper to ink, and ends where it turns back)."""
    edges = np.diff(band.astype(np.int8), axis=0, prepend=0, append=0)
    start_rows, start_columns = np.nonzero(edges.T == 1)[::-1]
    end_rows, _ = np.nonzero(edges.T == -1)[::-1]
    # np.nonzero on the transposed mask walks column by column, top to bottom.
    columns = band.shape[1]
    firsts: list[list[int]] = [[] for _ in range(columns)]
    lasts: list[list[int]] = [[] for _ in range(columns)]
    for column, first, end in zip(
        start_columns.tolist(), start_rows.tolist(), end_rows.tolist(), strict=True
    ):
        firsts[column].append(first)
        lasts[column].append(end - 1)
    return firsts, lasts


def _follow_trace(band: np.ndarray, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom row of the trace in each column of an ink mask ``band``.

    The trace is followed from the baseline: in each column the run of ink nearest to where
    the trace was in the previous column is taken (neighbouring rows' tall waves and the
    printed lead names are other runs; of two as near, the upper). A column without ink keeps
    the previous position. The runs are found for the whole band at once; only the choice,
    which depends on the previous column, walks the columns.
    """
    firsts, lasts = _column_runs(band)
    columns = band.shape[1]
    top = np.empty(columns, dtype=np.float32)
    bottom = np.empty(columns, dtype=np.float32)
    position = float(baseline)
    for x in range(columns):
        column_firsts = firsts[x]
        if column_firsts:
            column_lasts = lasts[x]
            best = 0
            best_distance = abs((column_firsts[0] + column_lasts[0]) / 2 - position)
            for index in range(1, len(column_firsts)):
                distance = abs((column_firsts[index] + column_lasts[index]) / 2 - position)
                if distance < best_distance:
                    best, best_distance = index, distance
            first, last = column_firsts[best], column_lasts[best]
            position = (first + last) / 2
            top[x], bottom[x] = first, last
        else:
            top[x] = bottom[x] = position
    return top, bottom


def digitise(red: Image.Image) -> np.ndarray:
    """The float32 (SIGNAL_SAMPLES, SIGNAL_CHANNELS) traces of a full page's red channel, in mV."""
    width, height = red.size
    left, _, right, _ = _trace_box(width, height)
    pixels = np.asarray(red)
    ink = pixels < INK_LEVEL
    # Blank out the printed separators at the three inner panel borders.
    half = max(1, round(SEPARATOR_HALF_WIDTH_PX * width / layout.REFERENCE_WIDTH))
    for edge in layout.COLUMN_EDGES[1:-1]:
        x = round(layout.scale_x(edge, width))
        ink[:, x - half : x + half + 1] = False
    spacing = layout.scale_y(layout.ROW_BASELINES[1] - layout.ROW_BASELINES[0], height)
    per_mv = layout.PIXELS_PER_MV * height / layout.REFERENCE_HEIGHT
    sample_x = np.linspace(0, right - left - 1, SIGNAL_SAMPLES)
    signals = np.empty((SIGNAL_SAMPLES, SIGNAL_CHANNELS), dtype=np.float32)
    for row, reference_baseline in enumerate(layout.ROW_BASELINES):
        baseline = layout.scale_y(reference_baseline, height)
        band_top = max(0, round(baseline - spacing / 2))
        band_bottom = min(height, round(baseline + spacing / 2))
        band = ink[band_top:band_bottom, left:right]
        top, bottom = _follow_trace(band, round(baseline) - band_top)
        for channel, edge in enumerate((top, bottom)):
            millivolts = (baseline - band_top - edge) / per_mv
            signals[:, 2 * row + channel] = np.interp(sample_x, np.arange(len(edge)), millivolts)
    return np.clip(signals, -MAX_ABS_MV, MAX_ABS_MV)


SIGNAL_SECONDS = 10.0
SAMPLING_HZ = SIGNAL_SAMPLES / SIGNAL_SECONDS
PANEL_SECONDS = SIGNAL_SECONDS / len(layout.COLUMN_LEADS)


@dataclass(frozen=True)
class TwelveLeads:
    """A page's leads in millivolts at SAMPLING_HZ: each of the twelve over the 2.5 s it was
    printed (from ``start_s``), and the rhythm strip's lead over the whole 10 s."""

    leads: dict[str, np.ndarray]
    start_s: dict[str, float]
    rhythm: dict[str, np.ndarray]


def _panel_samples(column: int) -> slice:
    """The samples of the 10 s axis that the panel column ``column`` covers."""
    edges = layout.COLUMN_EDGES
    span = edges[-1] - edges[0]
    start = round((edges[column] - edges[0]) / span * SIGNAL_SAMPLES)
    stop = round((edges[column + 1] - edges[0]) / span * SIGNAL_SAMPLES)
    return slice(start, stop)


def twelve_leads(signals: np.ndarray) -> TwelveLeads:
    """The named leads of ``digitise``'s output: each row's trace is the middle of its ink (the
    top and the bottom channel), cut into the page's panels (``layout.COLUMN_LEADS``)."""
    middle = (signals[:, 0::2] + signals[:, 1::2]) / 2  # (samples, rows)
    leads: dict[str, np.ndarray] = {}
    start_s: dict[str, float] = {}
    for column, names in enumerate(layout.COLUMN_LEADS):
        samples = _panel_samples(column)
        for row, name in enumerate(names):
            leads[name] = middle[samples, row]
            start_s[name] = column * PANEL_SECONDS
    rhythm_row = len(layout.COLUMN_LEADS[0])  # the strip below the three lead rows
    return TwelveLeads(leads=leads, start_s=start_s, rhythm={layout.RHYTHM_LEAD: middle[:, rhythm_row]})


def leads_inputs(image: Image.Image) -> dict[str, np.ndarray]:
    """The hybrid model's inputs for a decoded full page (``ml.preprocess.decode_image``)."""
    red = image.getchannel("R") if image.mode == "RGB" else image.convert("RGB").getchannel("R")
    return {"trace_image": trace_image(red), "signals": digitise(red)}
