"""Out-of-distribution guard: cheap checks that an image looks like a printed 12-lead ECG.

Numpy and Pillow (OpenCV only in the decode; no TensorFlow), about 10 ms per page with the
decode, so the web process can run it at upload time. It does not judge the diagnosis, only whether the
classifier's input contract (``ml/README.md``: a khan-ecg-like page) plausibly holds.
Checks, in order, each with a typed ``Rejection`` whose message is for the user:

1. ``shape``: the page's aspect ratio is that of a landscape printout (about 1.41).
2. ``not_paper``: the trace area is mostly light paper. The paper's colour (a high
   percentile per channel) must be light, and after dividing each channel by it (white
   balance: a colour cast or a dim scan then changes nothing) most pixels must be light.
   Photos, noise and dark screenshots fail here.
3. ``blank``: there is some dark ink in the trace area (and it is not a page of solid ink).
4. Trace rows: ink crosses the page in the four rows of a 12-lead report (three lead rows
   and the rhythm strip). The four baselines are searched for as a comb (a shift, a scale
   and a slight tilt around the expected rows, see ``_find_rows``). At the best comb, ink
   must be denser near the baselines than elsewhere (text is spread evenly), most columns
   must hold ink in every row's band, and few midway between two rows or beyond the first
   and last row (text, tables and pages with other layouts fill those). A page that passes
   is accepted.
5. Otherwise, when ink lies along all four baselines but too faint or broken to follow (a
   blurred photo), the page is an ECG that cannot be read: ``unreadable``, with its own
   sentence ("This looks like a 12-lead ECG, but it cannot be read"), not "not an ECG". So is
   a photo whose page runs off the frame through the traces (``ml.rectify``), when what is left
   shows trace rows, or the ECG grid with ink along the baselines (``examine_decoded``).
6. Otherwise the page is rejected as ``no_grid`` if the ECG grid is missing too, else as
   ``no_traces``. The grid counts as present when the light lines a little darker than the
   paper are periodic at the printed 5 mm pitch (+-12 %) along both axes (spectral power at
   the pitch's harmonics over the median power; spectra are averaged over narrow strips so
   a slightly turned page keeps its peaks). The grid only chooses the message: the faint
   grey grid of the khan-ecg scans vanishes in an overexposed scan or copy, whose traces
   the classifier can still read.

Thresholds keep a margin on the khan-ecg dev scans, on those scans after mild photo-like
changes (``ml.nonecg.degrade_page``) and on generated non-ECG images; the figures and the
command are in ``ml/README.md``, measured by ``ml.guard_report`` (kept out of this module, which
the web process loads). ``measure_page`` returns the raw features. Command line::

    python -m ml.guard IMAGE...   # one JSON line per image: {"image", "accepted", "code", "message"}
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from ml import layout
from ml.preprocess import DecodedImage, InvalidImageError, _thicken_ink, crop_trace_area, decode_page

RejectionCode = Literal["shape", "not_paper", "blank", "unreadable", "no_grid", "no_traces"]

ASPECT_RANGE = (1.2, 1.7)  # reference page 1200 / 852 = 1.41
WORK_WIDTH = 600  # pages are measured at this width (draft decoding gives about this)
PAPER_PERCENTILE = 90  # per channel over the trace area: the paper's colour
MIN_PAPER_LEVEL = 110  # mean of the paper's colour (0-255); dimmer is not a lit page
PAPER_LEVEL = 170  # balanced red at or above which a pixel counts as paper or grid
# Balanced red below which a pixel counts as ink (is there any; the grid's signal leaves it
# out): thin traces are grey after a downscale; the grid stays above it (red hides pink).
INK_LEVEL = 170
# For the trace rows, ink is what lies below this fraction of the way from the page's darkest
# ink (1st percentile) to the paper, within this range: so traces count on a low-contrast or
# bright scan, and grey grid lines of a black-and-white copy do not.
TRACE_INK_SPAN = 0.55
TRACE_INK_LEVEL_RANGE = (110.0, 185.0)
MIN_PAPER_FRACTION = 0.75
INK_FRACTION_RANGE = (0.003, 0.25)
MIN_TRACE_COVERAGE = 0.7  # of the columns, with ink in each row's band
MIN_BASELINE_CONCENTRATION = 3.0  # ink density near the 4 baselines / density elsewhere
MAX_GAP_COVERAGE = 0.25  # of the columns, with ink midway between two rows
MAX_OUTER_COVERAGE = 0.8  # of the columns, with ink above the first row or below the last
# Ink along every baseline, in at least this share of the columns, and this much denser there
# than elsewhere, where the trace rows are not found: traces too faint or blurred to follow (a
# blurred photo: 5.7 and more), not a chart or a texture (3.7 at most on the generated images).
MIN_FAINT_COVERAGE = 0.05
MIN_FAINT_CONCENTRATION = 5.0
BAND_HALF = 0.45  # a row's band: +- this fraction of the baseline spacing
NEAR_HALF = 0.135  # "near a baseline": +- this fraction of the baseline spacing
SEARCH_SHIFT = 0.08  # the comb moves up to this fraction of the trace area's height
SEARCH_SCALES = (0.92, 0.95, 0.98, 1.0, 1.02)  # a white margin shrinks the page's content
SEARCH_TILT_DEGREES = (-2.5, -1.25, 0.0, 1.25, 2.5)
GRID_PITCH_MM = 5.0
PITCH_TOLERANCE = 0.12
GRID_HARMONICS = 5  # 5 mm lines and the 1 mm lines between them
STRIP_PX = 48  # at WORK_WIDTH: a 2 degree tilt moves a line under 2 px within a strip
MIN_GRID_PERIODICITY = 6.0  # along each axis

LEAD_SENTENCE = "This does not look like a 12-lead ECG printout"
UNREADABLE_SENTENCE = "This looks like a 12-lead ECG, but it cannot be read"
RETAKE = "take the photo again, flat, in focus and with the whole page in the frame, or send a scan"
REASONS: dict[str, str] = {
    "faint": f"its traces are too faint or blurred to follow ({RETAKE})",
    "not_paper": "too little of it is light paper where the traces should be (a photo must show the "
    "whole printed page, evenly lit; screenshots are not supported)",
    "blank": "no ECG traces were found; the page looks blank",
    "dark": "the area where the traces should be is mostly dark",
    "no_grid": "no ECG grid was found, and no rows of traces where a 12-lead report has them",
    "no_traces": "the traces were not found in the expected rows (three rows of four leads and a rhythm "
    "strip below them, as on a standard 12-lead report)",
}


@dataclass(frozen=True)
class Rejection:
    """Why an image is not accepted as a 12-lead ECG printout."""

    code: RejectionCode
    reason: str  # a clause for the user, e.g. "no ECG grid was found"

    @property
    def message(self) -> str:
        """The whole sentence for the user."""
        lead = UNREADABLE_SENTENCE if self.code == "unreadable" else LEAD_SENTENCE
        return f"{lead}: {self.reason}."

    @property
    def after_name(self) -> str:
        """The sentence as it reads after a file's name: "scan.jpg: does not look like ..."."""
        return self.message.removeprefix("This ")


@dataclass(frozen=True)
class PageFeatures:
    """The measurements the guard decides on (useful to tune thresholds)."""

    aspect: float
    paper_level: float  # mean of the per-channel paper colour, 0-255
    paper_fraction: float
    ink_fraction: float
    grid_periodicity: tuple[float, float]  # across columns (vertical lines), across rows
    trace_coverage: tuple[float, ...]  # per trace row, top to bottom
    baseline_concentration: float  # ink density near the 4 baselines / density elsewhere
    gap_coverage: float  # the most columns with ink midway between two rows
    outer_coverage: float  # the most columns with ink above the first row or below the last

    @property
    def has_grid(self) -> bool:
        return min(self.grid_periodicity) >= MIN_GRID_PERIODICITY

    @property
    def has_trace_rows(self) -> bool:
        return self._rows(MIN_TRACE_COVERAGE, MIN_BASELINE_CONCENTRATION)

    @property
    def has_faint_trace_rows(self) -> bool:
        """Ink along all four baselines and little elsewhere, too little to follow."""
        return self._rows(MIN_FAINT_COVERAGE, MIN_FAINT_CONCENTRATION)

    def _rows(self, min_coverage: float, min_concentration: float) -> bool:
        return (
            min(self.trace_coverage) >= min_coverage
            and self.baseline_concentration >= min_concentration
            and self.gap_coverage <= MAX_GAP_COVERAGE
            and self.outer_coverage <= MAX_OUTER_COVERAGE
        )


def _periodicity(signal: np.ndarray, period: float) -> float:
    """How periodic ``signal`` is along its rows at ``period`` px (+- PITCH_TOLERANCE).

    1. Average the rows in strips of STRIP_PX into profiles; take each profile's power
       spectrum (Hann window) and average the spectra (phase-free, so lines that drift by
       a pixel or two from strip to strip, as on a turned page, still add up).
    2. For candidate pitches across the tolerance, the mean power at the pitch's first
       GRID_HARMONICS harmonics (those below Nyquist); the best candidate over the median
       power is the score (about 1-3 for text, photos and noise).
    """
    length = signal.shape[1]
    strips = max(1, signal.shape[0] // STRIP_PX)
    usable = signal[: strips * STRIP_PX] if signal.shape[0] >= STRIP_PX else signal
    profiles = usable.reshape(strips, -1, length).mean(axis=1)
    profiles = profiles - profiles.mean(axis=1, keepdims=True)
    power = (np.abs(np.fft.rfft(profiles * np.hanning(length), axis=1)) ** 2).mean(axis=0)
    median = max(float(np.median(power[1:])), 1e-12)
    # For every candidate pitch at once: its harmonics' bins (those below Nyquist), each
    # harmonic's power the larger of the two bins around its frequency, their mean.
    candidates = np.linspace(period * (1 - PITCH_TOLERANCE), period * (1 + PITCH_TOLERANCE), 25)
    harmonics = length * np.arange(1, GRID_HARMONICS + 1)[None, :] / candidates[:, None]
    usable_bins = harmonics < len(power) - 2
    bins = np.where(usable_bins, harmonics, 0).astype(int)
    pair_power = np.maximum(power[:-1], power[1:])
    # Unused harmonics add zeros, so each sum is the sum over the usable ones.
    counts = usable_bins.sum(axis=1)
    means = np.where(usable_bins, pair_power[bins], 0.0).sum(axis=1) / np.maximum(counts, 1)
    scored = (counts > 0) & (bins[:, 0] >= 2)
    best = float(means[scored].max()) if scored.any() else 0.0
    return best / median


def _find_rows(ink: np.ndarray, page_height: int) -> tuple[tuple[float, ...], float, float, float]:
    """(coverage per row, baseline concentration, gap coverage, outer coverage) at the best comb.

    ``ink`` is the trace area's ink mask of a page ``page_height`` px high.

    1. Split the trace columns into the four panel columns; per panel, the fraction of ink
       in each pixel row, summed cumulatively so any window's total costs O(1).
    2. For every shift, scale and tilt of the four expected baselines (a tilt moves each
       panel's baselines by its distance from the centre), the ink density within
       NEAR_HALF of the baselines over the density elsewhere; keep the best comb.
    3. At that comb, per row, the fraction of columns with ink within BAND_HALF of the
       baseline; between rows, the most columns with ink within NEAR_HALF of a midpoint;
       and the most columns with ink above the first row's band or below the last one's
       (a fifth row of traces lands there).
    """
    height, width = ink.shape
    sy = page_height / layout.REFERENCE_HEIGHT
    sx = width / ((layout.TRACE_BOX_FRACTIONS[2] - layout.TRACE_BOX_FRACTIONS[0]) * layout.REFERENCE_WIDTH)
    left = layout.TRACE_BOX_FRACTIONS[0] * layout.REFERENCE_WIDTH
    edges = [min(width, round((edge - left) * sx)) for edge in layout.COLUMN_EDGES]
    panels = list(itertools.pairwise(edges))
    trace_width = max(1, edges[-1] - edges[0])
    spacing = (layout.ROW_BASELINES[1] - layout.ROW_BASELINES[0]) * sy
    baselines = (
        np.asarray(layout.ROW_BASELINES, dtype=np.float64) * sy - layout.TRACE_BOX_FRACTIONS[1] * page_height
    )
    rows_count = len(baselines)
    profiles = np.stack([ink[:, a:b].mean(axis=1) if b > a else np.zeros(height) for a, b in panels])
    cumulative = np.concatenate([np.zeros((len(panels), 1)), np.cumsum(profiles, axis=1)], axis=1)
    total = float(cumulative[:, -1].sum())
    if total <= 0:
        return (0.0,) * rows_count, 0.0, 0.0, 0.0
    centre = height / 2
    offsets = np.array([(a + b) / 2 for a, b in panels]) - width / 2
    shifts = np.arange(-SEARCH_SHIFT * height, SEARCH_SHIFT * height + 1, max(1.0, sy))
    scales = np.asarray(SEARCH_SCALES)
    slopes = np.tan(np.radians(SEARCH_TILT_DEGREES))
    # combs[shift, scale, slope, panel, row]: the baseline's pixel row
    combs = (
        centre
        + (baselines - centre)[None, None, None, None, :] * scales[None, :, None, None, None]
        + shifts[:, None, None, None, None]
        + (slopes[:, None] * offsets[None, :])[None, None, :, :, None]
    )
    near = NEAR_HALF * spacing
    low = np.clip(np.round(combs - near), 0, height).astype(int)
    high = np.clip(np.round(combs + near), 0, height).astype(int)
    panel = np.arange(len(panels))[None, None, None, :, None]
    inside = (cumulative[panel, high] - cumulative[panel, low]).sum(axis=(3, 4))
    inside_rows = (high - low).sum(axis=(3, 4))
    outside_rows = np.maximum(len(panels) * height - inside_rows, 1)
    outside_density = np.maximum((total - inside) / outside_rows, 1e-6)
    ratio = (inside / np.maximum(inside_rows, 1)) / outside_density
    best = np.unravel_index(np.argmax(ratio), ratio.shape)
    comb = combs[best]  # (panel, row)

    def inked_columns(y0: int, y1: int, a: int, b: int) -> int:
        return int(ink[y0:y1, a:b].any(axis=0).sum()) if y1 > y0 and b > a else 0

    def pixel_row(value: float) -> int:
        # min/max, not np.clip: this runs about 40 times a page, and np.clip on a scalar is slow.
        return min(max(round(value), 0), height)

    def covered(centres: np.ndarray, half: float) -> float:
        count = 0
        for index, (a, b) in enumerate(panels):
            y0, y1 = pixel_row(centres[index] - half), pixel_row(centres[index] + half)
            count += inked_columns(y0, y1, a, b)
        return count / trace_width

    coverage = tuple(covered(comb[:, row], BAND_HALF * spacing) for row in range(rows_count))
    gaps = [covered((comb[:, row] + comb[:, row + 1]) / 2, near) for row in range(rows_count - 1)]
    band = BAND_HALF * spacing
    above = below = 0
    for index, (a, b) in enumerate(panels):
        top_edge = pixel_row(comb[index, 0] - band)
        bottom_edge = pixel_row(comb[index, -1] + band)
        above += inked_columns(0, top_edge, a, b)
        below += inked_columns(bottom_edge, height, a, b)
    return coverage, float(ratio[best]), max(gaps), max(above, below) / trace_width


def measure_page(image: Image.Image) -> PageFeatures:
    """Measure ``image`` (a decoded page, any size) for the guard's checks."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    # A page decoded in full (the upload path) is first box-reduced to about what a draft-mode
    # decode gives (DCT scaling averages blocks too): the same verdicts, at about a draft's cost.
    factor = image.width // WORK_WIDTH
    if factor >= 2:
        image = image.reduce(factor)
    width, height = image.size
    # Ink is read from a red channel thickened first (3x3 minimum, as in
    # ``ml.preprocess``) so 1 px traces survive the downscale. Draft-decoded JPEGs are
    # already about WORK_WIDTH wide.
    thick_red = None
    if width > WORK_WIDTH:
        size = (WORK_WIDTH, max(1, round(height * WORK_WIDTH / width)))
        thick_red = Image.fromarray(_thicken_ink(np.asarray(image.getchannel("R")))).resize(
            size, Image.Resampling.BOX
        )
        image = image.resize(size, Image.Resampling.BOX)
    page_width, page_height = image.size
    rgb = np.asarray(crop_trace_area(image), dtype=np.float32)
    # Per channel on a contiguous copy: the same figures as along axis 0 of the pixels, faster.
    paper_colour = np.percentile(
        np.ascontiguousarray(rgb[::3, ::3].reshape(-1, 3).T), PAPER_PERCENTILE, axis=1
    )
    balance = 255.0 / np.maximum(paper_colour, 1.0)
    red = np.minimum(rgb[:, :, 0] * balance[0], 255.0)
    light = np.minimum(rgb @ (balance / 3.0), 255.0)
    # A page not downscaled here has no thickened red: its ink is read from the red itself.
    ink_red = (
        red
        if thick_red is None
        else np.minimum(np.asarray(crop_trace_area(thick_red), dtype=np.float32) * balance[0], 255.0)
    )
    darkest = float(np.percentile(ink_red[::2, ::2], 1))
    ink = ink_red < np.clip(darkest + TRACE_INK_SPAN * (255.0 - darkest), *TRACE_INK_LEVEL_RANGE)
    # The grid: light lines a little darker than the paper; ink counts as paper here.
    grid = np.where(red < INK_LEVEL, 0.0, 255.0 - light)
    period_x = GRID_PITCH_MM * layout.PIXELS_PER_MM * page_width / layout.REFERENCE_WIDTH
    period_y = GRID_PITCH_MM * layout.PIXELS_PER_MV / 10 * page_height / layout.REFERENCE_HEIGHT
    coverage, concentration, gap, outer = _find_rows(ink, page_height)
    return PageFeatures(
        aspect=page_width / page_height,
        paper_level=float(paper_colour.mean()),
        paper_fraction=float((red >= PAPER_LEVEL).mean()),
        ink_fraction=float((red < INK_LEVEL).mean()),
        grid_periodicity=(_periodicity(grid, period_x), _periodicity(grid.T, period_y)),
        trace_coverage=coverage,
        baseline_concentration=concentration,
        gap_coverage=gap,
        outer_coverage=outer,
    )


def check_page(image: Image.Image) -> Rejection | None:
    """``None`` if ``image`` looks like a 12-lead ECG printout, else the first failed check."""
    return examine_page(image)[0]


def examine_page(image: Image.Image) -> tuple[Rejection | None, PageFeatures | None]:
    """The verdict on ``image`` and the features it rests on (None if the shape decided)."""
    aspect = image.width / image.height
    if not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
        reason = (
            f"the image is {image.width}x{image.height} pixels, but a 12-lead printout is a landscape "
            "page about 1.4 times as wide as it is high"
        )
        return Rejection("shape", reason), None
    features = measure_page(image)
    return _verdict(features), features


def examine_decoded(decoded: DecodedImage) -> tuple[Rejection | None, PageFeatures | None]:
    """``examine_page`` for a page as every face decodes it (``ml.preprocess.decode_page``): a
    photo whose page runs off the frame through the traces is an ECG that cannot be read when what
    is left shows trace rows, or the ECG grid with ink along the baselines; else the page's own
    verdict stands."""
    rejection, features = examine_page(decoded.image)
    if decoded.unreadable and features is not None:
        # The grid alone is not enough (some textures are periodic too): ink along the baselines.
        gridded_rows = (
            features.has_grid
            and features.baseline_concentration >= MIN_BASELINE_CONCENTRATION
            and features.ink_fraction >= INK_FRACTION_RANGE[0]
        )
        looks_like_ecg = gridded_rows or features.has_trace_rows or features.has_faint_trace_rows
        if rejection is None or looks_like_ecg:
            return Rejection("unreadable", f"{decoded.unreadable} ({RETAKE})"), features
    return rejection, features


def check_decoded(decoded: DecodedImage) -> Rejection | None:
    """``None`` if the decoded page looks like a 12-lead ECG printout it can read, else why not."""
    return examine_decoded(decoded)[0]


def _verdict(features: PageFeatures) -> Rejection | None:
    if features.paper_level < MIN_PAPER_LEVEL or features.paper_fraction < MIN_PAPER_FRACTION:
        return Rejection("not_paper", REASONS["not_paper"])
    if features.ink_fraction > INK_FRACTION_RANGE[1]:
        return Rejection("blank", REASONS["dark"])
    if features.ink_fraction >= INK_FRACTION_RANGE[0] and features.has_trace_rows:
        return None
    if features.has_faint_trace_rows:
        return Rejection("unreadable", REASONS["faint"])
    if features.ink_fraction < INK_FRACTION_RANGE[0]:
        return Rejection("blank", REASONS["blank"])
    if not features.has_grid:
        return Rejection("no_grid", REASONS["no_grid"])
    return Rejection("no_traces", REASONS["no_traces"])


def check_bytes(data: bytes) -> Rejection | None:
    """Decode ``data`` as the command-line tools do and ``check_decoded`` it (the upload path
    checks the page it has decoded already).

    Raises ``ml.preprocess.InvalidImageError`` for data the classifier cannot use at all.
    """
    return check_decoded(decode_page(data))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.guard``: check image files (``python -m ml.guard_report``
    measures the guard on whole sets)."""
    parser = argparse.ArgumentParser(prog="python -m ml.guard", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="images to check")
    args = parser.parse_args(argv)
    failed = False
    for path in args.images:
        try:
            rejection = check_bytes(path.read_bytes())
        except (OSError, InvalidImageError) as error:
            print(json.dumps({"image": str(path), "error": str(error)}))
            failed = True
            continue
        failed |= rejection is not None
        print(
            json.dumps(
                {
                    "image": str(path),
                    "accepted": rejection is None,
                    "code": rejection.code if rejection else None,
                    "message": rejection.message if rejection else None,
                }
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
