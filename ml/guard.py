"""Out-of-distribution guard: cheap checks that an image looks like a printed 12-lead ECG.

Numpy and Pillow only (no TensorFlow), a few milliseconds per page, so the web process can
run it at upload time. It does not judge the diagnosis, only whether the classifier's
input contract (``ml/README.md``: a khan-ecg-like page) plausibly holds. Checks, in order,
each with a typed ``Rejection`` and a message for the user:

1. ``shape``: the page's aspect ratio is that of a landscape printout (about 1.41).
2. ``not_paper``: most of the trace area is light paper (photos, noise, dark screenshots
   fail); measured on the red channel, in which the pink grid is light too.
3. ``blank``: there is some dark ink in the trace area (and not a page of solid ink).
4. ``no_grid``: a pink grid is present: pinkish pixels (red well above green), and the
   column profile of pinkness is periodic at the printed 5 mm pitch (1200 / 56 px of the
   page width), measured as the spectral power at that frequency over the median power.
5. ``no_traces``: ink crosses the page in the four trace rows (three lead rows and the
   rhythm strip): in each band around a baseline, most columns hold a dark pixel, and
   ink is denser near the four baselines than between them (text is spread evenly).

Thresholds were set on synthetic pages and the khan-ecg dev scans (see ``ml/README.md``
for the measured false rejections); ``measure_page`` returns the raw features for tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from ml import layout
from ml.preprocess import _thicken_ink, crop_trace_area, decode_image

RejectionCode = Literal["shape", "not_paper", "blank", "no_grid", "no_traces"]

ASPECT_RANGE = (1.2, 1.7)  # reference page 1200 / 852 = 1.41
PAPER_LEVEL = 170  # red-channel value above which a pixel counts as paper or grid
INK_LEVEL = 110  # red-channel value below which a pixel counts as ink
MIN_PAPER_FRACTION = 0.75
INK_FRACTION_RANGE = (0.003, 0.25)
PINK_MARGIN = 12  # red minus green above which a light pixel counts as grid-pink
MIN_PINK_FRACTION = 0.005  # real scans: 0.016-0.02 (faint grid); synthetic pages: ~0.5
MIN_GRID_PERIODICITY = 6.0  # peak / median power; real scans 9-28 (min, median), noise ~4
MIN_TRACE_COVERAGE = 0.6  # columns with ink per trace band; real scans min 0.72
MIN_BASELINE_CONCENTRATION = 2.0  # real scans min 3.65, synthetic >= 6; text pages ~0.9
WORK_WIDTH = 600  # pages are measured at this width (draft decoding gives about this)
MAJOR_GRID_PX = 5 * layout.PIXELS_PER_MM  # 5 mm pitch on the 1200 px reference page


@dataclass(frozen=True)
class Rejection:
    """Why an image is not accepted as a 12-lead ECG printout."""

    code: RejectionCode
    message: str  # for the user


@dataclass(frozen=True)
class PageFeatures:
    """The measurements the guard decides on (useful to tune thresholds)."""

    aspect: float
    paper_fraction: float
    ink_fraction: float
    pink_fraction: float
    grid_periodicity: float
    trace_coverage: tuple[float, ...]  # per trace band, top to bottom
    baseline_concentration: float  # ink density near the 4 baselines / density elsewhere


def _grid_periodicity(pinkness: np.ndarray, page_width: int) -> float:
    """Spectral power of the column profile at the 5 mm grid pitch over the median power."""
    profile = pinkness.mean(axis=0)
    profile = profile - profile.mean()
    power = np.abs(np.fft.rfft(profile * np.hanning(len(profile)))) ** 2
    period = MAJOR_GRID_PX * page_width / layout.REFERENCE_WIDTH
    frequency = len(profile) / period  # cycles across the crop
    index = round(frequency)
    if index < 2 or index + 2 >= len(power):
        return 0.0
    peak = power[index - 1 : index + 2].max()
    return float(peak / max(np.median(power[1:]), 1e-12))


def measure_page(image: Image.Image) -> PageFeatures:
    """Measure ``image`` (a decoded page, any size) for the guard's checks."""
    width, height = image.size
    image = image.convert("RGB")
    # Trace coverage reads ink from a copy thickened first (3x3 minimum per channel, as in
    # ``ml.preprocess``) so 1 px traces survive the downscale; the fractions and the grid
    # use the plain downscale. Draft-decoded JPEGs are already about WORK_WIDTH wide.
    thick = image
    if width > WORK_WIDTH:
        size = (WORK_WIDTH, max(1, round(height * WORK_WIDTH / width)))
        pixels = np.asarray(image)
        thickened = np.stack([_thicken_ink(np.ascontiguousarray(pixels[:, :, c])) for c in range(3)], axis=2)
        thick = Image.fromarray(thickened).resize(size, Image.Resampling.BOX)
        image = image.resize(size, Image.Resampling.BOX)
    page_width, page_height = image.size
    rgb = np.asarray(crop_trace_area(image), dtype=np.int16)
    trace_ink = np.asarray(crop_trace_area(thick).getchannel("R")) < INK_LEVEL
    red, green = rgb[:, :, 0], rgb[:, :, 1]
    paper = red >= PAPER_LEVEL
    ink = red < INK_LEVEL
    pinkness = np.where(paper, np.clip(red - green, 0, None), 0).astype(np.float64)
    pink = pinkness > PINK_MARGIN
    # Trace bands: +-0.45 of the baseline spacing around each baseline, within the panels.
    top = layout.TRACE_BOX_FRACTIONS[1] * layout.REFERENCE_HEIGHT
    left = layout.TRACE_BOX_FRACTIONS[0] * layout.REFERENCE_WIDTH
    sy = rgb.shape[0] / (
        (layout.TRACE_BOX_FRACTIONS[3] - layout.TRACE_BOX_FRACTIONS[1]) * layout.REFERENCE_HEIGHT
    )
    sx = rgb.shape[1] / (
        (layout.TRACE_BOX_FRACTIONS[2] - layout.TRACE_BOX_FRACTIONS[0]) * layout.REFERENCE_WIDTH
    )
    half = 0.45 * (layout.ROW_BASELINES[1] - layout.ROW_BASELINES[0])
    x0 = round((layout.COLUMN_EDGES[0] - left) * sx)
    x1 = round((layout.COLUMN_EDGES[-1] - left) * sx)
    near_baselines = np.zeros(rgb.shape[0], dtype=bool)
    for baseline in layout.ROW_BASELINES:
        centre = (baseline - top) * sy
        low, high = max(0, round(centre - 0.15 * half * 2 * sy)), round(centre + 0.15 * half * 2 * sy)
        near_baselines[low:high] = True
    trace_rows = trace_ink[:, x0:x1]
    inside = trace_rows[near_baselines].mean() if near_baselines.any() else 0.0
    outside = trace_rows[~near_baselines].mean() if (~near_baselines).any() else 0.0
    coverage = []
    for baseline in layout.ROW_BASELINES:
        y0 = max(0, round((baseline - half - top) * sy))
        y1 = min(rgb.shape[0], round((baseline + half - top) * sy))
        band = trace_ink[y0:y1, x0:x1]
        coverage.append(float(band.any(axis=0).mean()) if band.size else 0.0)
    return PageFeatures(
        aspect=page_width / page_height,
        paper_fraction=float(paper.mean()),
        ink_fraction=float(ink.mean()),
        pink_fraction=float(pink.mean()),
        grid_periodicity=_grid_periodicity(pinkness, page_width),
        trace_coverage=tuple(coverage),
        baseline_concentration=float(inside / max(outside, 1e-6)),
    )


def check_page(image: Image.Image) -> Rejection | None:
    """``None`` if ``image`` looks like a 12-lead ECG printout, else the first failed check."""
    aspect = image.width / image.height
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        return Rejection(
            "shape",
            f"The image is {image.width}x{image.height} pixels; a 12-lead ECG printout is a landscape "
            "page about 1.4 times as wide as it is high.",
        )
    features = measure_page(image)
    if features.paper_fraction < MIN_PAPER_FRACTION:
        return Rejection(
            "not_paper",
            "The image does not look like a scan of ECG paper (too little light paper where the traces "
            "should be); photos, screenshots and scans of other documents are not supported.",
        )
    if not INK_FRACTION_RANGE[0] <= features.ink_fraction <= INK_FRACTION_RANGE[1]:
        return Rejection(
            "blank",
            "The page has no ECG traces where they should be (it looks blank)."
            if features.ink_fraction < INK_FRACTION_RANGE[0]
            else "The page is mostly dark ink where the traces should be.",
        )
    if features.pink_fraction < MIN_PINK_FRACTION or features.grid_periodicity < MIN_GRID_PERIODICITY:
        return Rejection(
            "no_grid",
            "No ECG grid was found: the page should show the printed pink millimetre grid behind the traces.",
        )
    if (
        min(features.trace_coverage) < MIN_TRACE_COVERAGE
        or features.baseline_concentration < MIN_BASELINE_CONCENTRATION
    ):
        return Rejection(
            "no_traces",
            "The traces were not found in the expected rows: the page should show three rows of leads "
            "and a rhythm strip, like a standard 12-lead report.",
        )
    return None


def check_bytes(data: bytes) -> Rejection | None:
    """Decode ``data`` (raises ``ml.preprocess.InvalidImageError``) and ``check_page`` it."""
    return check_page(decode_image(data))
