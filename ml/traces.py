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
from ml.preprocess import _thicken_ink, red_channel

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


def _column_runs(band: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of ink in each column of ``band``, found for the whole band at once (a run starts
    where a column turns from paper to ink, and ends where it turns back): the first and the last
    row of every run, column by column and top to bottom, and where each column's runs begin in
    those arrays (``offsets[x]:offsets[x + 1]``)."""
    # Columns as contiguous rows, with paper above and below: where a pixel differs from the one
    # above it a run starts or ends. Flat and boolean, this is a tenth of np.diff + np.nonzero.
    by_column = np.ascontiguousarray(band.T, dtype=bool)
    height = by_column.shape[1] + 1
    above = np.zeros((by_column.shape[0], height), dtype=bool)
    above[:, 1:] = by_column
    here = np.zeros_like(above)
    here[:, :-1] = by_column
    changes = np.flatnonzero(above != here)  # column by column, top to bottom
    columns, rows = np.divmod(changes, height)
    # In every column a run's start is followed by its end (the row after its last).
    start_columns, first_rows, end_rows = columns[0::2], rows[0::2], rows[1::2]
    counts = np.bincount(start_columns, minlength=band.shape[1])
    offsets = np.concatenate(([0], np.cumsum(counts)))
    return first_rows, end_rows - 1, offsets


def _follow_trace(band: np.ndarray, baseline: int) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom row of the trace in each column of an ink mask ``band``.

    The trace is followed from the baseline: in each column the run of ink nearest to where
    the trace was in the previous column is taken (neighbouring rows' tall waves and the
    printed lead names are other runs; of two as near, the upper). A column without ink keeps
    the previous position. Most columns hold one run, which is taken whatever came before: those
    are settled for the whole band at once, and only the columns with several runs walk, in
    order, each from the column before it.
    """
    firsts, lasts, offsets = _column_runs(band)
    columns = band.shape[1]
    counts = np.diff(offsets)
    chosen = offsets[:-1].copy()  # each column's run, as an index into firsts/lasts
    centres = np.full(columns, np.nan)
    single = counts == 1
    centres[single] = (firsts[chosen[single]] + lasts[chosen[single]]) / 2
    # The last column before each one that holds ink (-1: none, the trace starts at the baseline).
    inked = np.where(counts > 0, np.arange(columns), -1)
    before = np.concatenate(([-1], np.maximum.accumulate(inked)[:-1]))
    run_centres = (firsts + lasts) / 2
    for x in np.flatnonzero(counts > 1).tolist():
        previous = before[x]
        position = float(baseline) if previous < 0 else centres[previous]
        runs = slice(offsets[x], offsets[x + 1])
        chosen[x] = offsets[x] + int(np.argmin(np.abs(run_centres[runs] - position)))
        centres[x] = run_centres[chosen[x]]
    has_ink = counts > 0
    top = np.empty(columns, dtype=np.float32)
    bottom = np.empty(columns, dtype=np.float32)
    top[has_ink] = firsts[chosen[has_ink]]
    bottom[has_ink] = lasts[chosen[has_ink]]
    # A column without ink holds the last position (the baseline before any ink).
    held = np.where(before < 0, float(baseline), centres[np.maximum(before, 0)])
    top[~has_ink] = bottom[~has_ink] = held[~has_ink]
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
    red = red_channel(image)
    return {"trace_image": trace_image(red), "signals": digitise(red)}
