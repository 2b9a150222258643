"""Out-of-distribution guard: cheap checks that an image looks like a printed 12-lead ECG.

Numpy and Pillow only (no TensorFlow), about 10 ms per page including the decode, so the
web process can run it at upload time. It does not judge the diagnosis, only whether the
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
5. Otherwise the page is rejected as ``no_grid`` if the ECG grid is missing too, else as
   ``no_traces``. The grid counts as present when the light lines a little darker than the
   paper are periodic at the printed 5 mm pitch (+-12 %) along both axes (spectral power at
   the pitch's harmonics over the median power; spectra are averaged over narrow strips so
   a slightly turned page keeps its peaks). The grid only chooses the message: the faint
   grey grid of the khan-ecg scans vanishes in an overexposed scan or copy, whose traces
   the classifier can still read.

Thresholds keep a margin on the khan-ecg dev scans, on those scans after mild photo-like
changes (``ml.nonecg.degrade_page``) and on generated non-ECG images; the figures and the
command are in ``ml/README.md``. ``measure_page`` returns the raw features. Command line::

    python -m ml.guard IMAGE...   # one JSON line per image: {"image", "accepted", "code", "message"}
    python -m ml.guard --measure --ecg-data DIR [--non-ecg-per-kind N] [--json] [--out PATH]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from ml import layout
from ml.preprocess import InvalidImageError, _thicken_ink, crop_trace_area, decode_image

RejectionCode = Literal["shape", "not_paper", "blank", "no_grid", "no_traces"]

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
REASONS: dict[str, str] = {
    "not_paper": "too little of it is light paper where the traces should be (photos and screenshots "
    "are not supported; send a scan of the printout)",
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
        return f"{LEAD_SENTENCE}: {self.reason}."


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
        return (
            min(self.trace_coverage) >= MIN_TRACE_COVERAGE
            and self.baseline_concentration >= MIN_BASELINE_CONCENTRATION
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
    best = 0.0
    for candidate in np.linspace(period * (1 - PITCH_TOLERANCE), period * (1 + PITCH_TOLERANCE), 25):
        bins = [length * k / candidate for k in range(1, GRID_HARMONICS + 1)]
        bins = [int(b) for b in bins if b < len(power) - 2]
        if not bins or bins[0] < 2:
            continue
        best = max(best, float(np.mean([power[b : b + 2].max() for b in bins])))
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

    def covered(centres: np.ndarray, half: float) -> float:
        count = 0
        for index, (a, b) in enumerate(panels):
            y0, y1 = (int(np.clip(round(centres[index] + d), 0, height)) for d in (-half, half))
            count += int(ink[y0:y1, a:b].any(axis=0).sum()) if y1 > y0 and b > a else 0
        return count / trace_width

    coverage = tuple(covered(comb[:, row], BAND_HALF * spacing) for row in range(rows_count))
    gaps = [covered((comb[:, row] + comb[:, row + 1]) / 2, near) for row in range(rows_count - 1)]
    band = BAND_HALF * spacing
    above = below = 0
    for index, (a, b) in enumerate(panels):
        top_edge = int(np.clip(round(comb[index, 0] - band), 0, height))
        bottom_edge = int(np.clip(round(comb[index, -1] + band), 0, height))
        above += int(ink[:top_edge, a:b].any(axis=0).sum()) if top_edge > 0 and b > a else 0
        below += int(ink[bottom_edge:, a:b].any(axis=0).sum()) if bottom_edge < height and b > a else 0
    return coverage, float(ratio[best]), max(gaps), max(above, below) / trace_width


def measure_page(image: Image.Image) -> PageFeatures:
    """Measure ``image`` (a decoded page, any size) for the guard's checks."""
    width, height = image.size
    image = image.convert("RGB")
    # Ink is read from a red channel thickened first (3x3 minimum, as in
    # ``ml.preprocess``) so 1 px traces survive the downscale. Draft-decoded JPEGs are
    # already about WORK_WIDTH wide.
    thick_red = image.getchannel("R")
    if width > WORK_WIDTH:
        size = (WORK_WIDTH, max(1, round(height * WORK_WIDTH / width)))
        thick_red = Image.fromarray(_thicken_ink(np.asarray(thick_red))).resize(size, Image.Resampling.BOX)
        image = image.resize(size, Image.Resampling.BOX)
    page_width, page_height = image.size
    rgb = np.asarray(crop_trace_area(image), dtype=np.float32)
    paper_colour = np.percentile(rgb[::3, ::3].reshape(-1, 3), PAPER_PERCENTILE, axis=0)
    balance = 255.0 / np.maximum(paper_colour, 1.0)
    red = np.minimum(rgb[:, :, 0] * balance[0], 255.0)
    light = np.minimum(rgb @ (balance / 3.0), 255.0)
    ink_red = np.minimum(np.asarray(crop_trace_area(thick_red), dtype=np.float32) * balance[0], 255.0)
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
    return _check(image)[0]


def _check(image: Image.Image) -> tuple[Rejection | None, PageFeatures | None]:
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


def _verdict(features: PageFeatures) -> Rejection | None:
    if features.paper_level < MIN_PAPER_LEVEL or features.paper_fraction < MIN_PAPER_FRACTION:
        return Rejection("not_paper", REASONS["not_paper"])
    if features.ink_fraction < INK_FRACTION_RANGE[0]:
        return Rejection("blank", REASONS["blank"])
    if features.ink_fraction > INK_FRACTION_RANGE[1]:
        return Rejection("blank", REASONS["dark"])
    if features.has_trace_rows:
        return None
    if not features.has_grid:
        return Rejection("no_grid", REASONS["no_grid"])
    return Rejection("no_traces", REASONS["no_traces"])


def check_bytes(data: bytes) -> Rejection | None:
    """Decode ``data`` as the classifier does and ``check_page`` it.

    Raises ``ml.preprocess.InvalidImageError`` for data the classifier cannot use at all.
    """
    return check_page(decode_image(data))


# Measurement (``--measure``): how often the guard rejects what it should and should not.


def _encode(image: Image.Image, image_format: str, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **({"quality": quality} if image_format == "JPEG" else {}))
    return out.getvalue()


@dataclass
class _Tally:
    """Outcomes of checking a set of images."""

    total: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejected_names: list[str] = field(default_factory=list)
    milliseconds: list[float] = field(default_factory=list)
    features: list[PageFeatures] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejected_names)

    def add(self, name: str, data: bytes) -> None:
        started = time.perf_counter()
        try:
            rejection, features = _check(decode_image(data))
            code = rejection.code if rejection else None
        except InvalidImageError:
            code, features = "undecodable", None
        self.milliseconds.append(1000 * (time.perf_counter() - started))
        self.total += 1
        if features is not None:
            self.features.append(features)
        if code is not None:
            self.reasons[code] += 1
            self.rejected_names.append(name)

    def margins(self) -> dict[str, Any]:
        """The features of these pages closest to each threshold (how much room is left)."""
        if not self.features:
            return {}
        features = self.features
        return {
            "min_paper_level": round(min(f.paper_level for f in features), 1),
            "min_paper_fraction": round(min(f.paper_fraction for f in features), 4),
            "ink_fraction_range": [
                round(min(f.ink_fraction for f in features), 4),
                round(max(f.ink_fraction for f in features), 4),
            ],
            "min_trace_coverage": round(min(min(f.trace_coverage) for f in features), 4),
            "min_baseline_concentration": round(min(f.baseline_concentration for f in features), 3),
            "max_gap_coverage": round(max(f.gap_coverage for f in features), 4),
            "max_outer_coverage": round(max(f.outer_coverage for f in features), 4),
            "pages_without_a_visible_grid": sum(not f.has_grid for f in features),
        }

    def summary(self, *, names: bool = False, margins: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "images": self.total,
            "rejected": self.rejected,
            "rejection_rate": round(self.rejected / max(1, self.total), 4),
            "reasons": dict(sorted(self.reasons.items())),
        }
        if names:
            result["rejected_files"] = sorted(self.rejected_names)
        if margins:
            result["closest_to_thresholds"] = self.margins()
        return result


def _timing(tallies: Sequence[_Tally]) -> dict[str, float]:
    values = sorted(ms for tally in tallies for ms in tally.milliseconds)
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 2),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 2),
    }


def measure(
    ecg_data: Path,
    *,
    non_ecg_per_kind: int = 100,
    synthetic: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Rejection rates on generated non-ECG images, false rejections on real, degraded real
    and synthetic ECG pages, and milliseconds per check (decode included).

    1. Non-ECG: ``non_ecg_per_kind`` images of every kind of ``ml.nonecg`` (screenshots,
       charts and tables as PNG, the rest as JPEG quality 90), seeds ``seed * 10**6 + i``.
    2. Real ECG: every ``*.jpg``/``*.png`` under ``ecg_data`` (``<class>/<file>``) as stored.
    3. Degraded real ECG: each page once per change of ``ml.nonecg.degrade_page`` alone and
       once with all of them, strengths drawn from a generator seeded by (seed, page index).
    4. Synthetic ECG: ``synthetic`` pages of ``ml.synthetic`` spread over the classes,
       alternately JPEG quality 75 and PNG; and each once more with all the changes (their
       pink grid, unlike the scans' grey one, turns into darker grey lines in a copy).
    """
    from ml.labels import CLASSES
    from ml.nonecg import DEGRADATIONS, EXPECTED_TO_PASS, HARD_KINDS, KINDS, degrade_page, render_non_ecg
    from ml.synthetic import render_ecg

    png_kinds = {"screenshot", "ecg_in_screenshot", "chart", "table"}
    non_ecg: dict[str, _Tally] = {}
    for kind in KINDS + HARD_KINDS:
        progress(f"non-ECG {kind}")
        tally = non_ecg[kind] = _Tally()
        for index in range(non_ecg_per_kind):
            image = render_non_ecg(kind, seed * 10**6 + index)
            tally.add(f"{kind}_{index}", _encode(image, "PNG" if kind in png_kinds else "JPEG"))
    pages = sorted(path for path in ecg_data.glob("*/*") if path.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not pages:
        raise ValueError(f"No <class>/<image> files under {ecg_data}.")
    real = _Tally()
    degraded = {change: _Tally() for change in (*DEGRADATIONS, "all")}
    for index, path in enumerate(pages):
        if index % 50 == 0:
            progress(f"real ECG {index}/{len(pages)}")
        data = path.read_bytes()
        name = f"{path.parent.name}/{path.name}"
        real.add(name, data)
        page = Image.open(io.BytesIO(data))
        page.load()
        for number, change in enumerate(degraded):
            rng = np.random.default_rng([seed, index, number])
            which = DEGRADATIONS if change == "all" else (change,)
            degraded[change].add(name, degrade_page(page, rng, which))
    progress("synthetic ECG")
    synthetic_tally, synthetic_degraded = _Tally(), _Tally()
    for index in range(synthetic):
        label = CLASSES[index % len(CLASSES)]
        image = render_ecg(label, seed * 10**6 + index)
        synthetic_tally.add(f"{label}_{index}", _encode(image, "JPEG" if index % 2 == 0 else "PNG", 75))
        rng = np.random.default_rng([seed, index, len(DEGRADATIONS) + 1])
        synthetic_degraded.add(f"{label}_{index}", degrade_page(image, rng, DEGRADATIONS))

    def group(kinds: Sequence[str]) -> dict[str, Any]:
        tallies = [non_ecg[kind] for kind in kinds]
        rejected, total = sum(t.rejected for t in tallies), sum(t.total for t in tallies)
        return {
            "per_kind": {kind: non_ecg[kind].summary() for kind in kinds},
            "rejected": rejected,
            "images": total,
            "rejection_rate": round(rejected / max(1, total), 4),
        }

    hard_to_reject = [kind for kind in HARD_KINDS if kind not in EXPECTED_TO_PASS]
    return {
        "command": (
            f"python -m ml.guard --measure --ecg-data {ecg_data} --non-ecg-per-kind {non_ecg_per_kind} "
            f"--synthetic {synthetic} --seed {seed} --json"
        ),
        "non_ecg": group(KINDS),
        "near_misses": {
            **group(hard_to_reject),
            "note": "near-misses that should be rejected: grid without traces, text or charts on grid "
            "paper, ECG strips in another layout, printouts photographed or shown small in a window",
        },
        "lookalikes": {
            **group(EXPECTED_TO_PASS),
            "note": "smooth squiggles in the four trace rows on ECG paper: a layout check cannot tell "
            "them from ECGs, so they pass",
        },
        "thresholds": {
            "aspect_range": list(ASPECT_RANGE),
            "min_paper_level": MIN_PAPER_LEVEL,
            "min_paper_fraction": MIN_PAPER_FRACTION,
            "ink_fraction_range": list(INK_FRACTION_RANGE),
            "min_trace_coverage": MIN_TRACE_COVERAGE,
            "min_baseline_concentration": MIN_BASELINE_CONCENTRATION,
            "max_gap_coverage": MAX_GAP_COVERAGE,
            "max_outer_coverage": MAX_OUTER_COVERAGE,
            "min_grid_periodicity": MIN_GRID_PERIODICITY,
        },
        "real_ecg": real.summary(names=True, margins=True),
        "real_ecg_degraded": {
            change: tally.summary(names=True, margins=True) for change, tally in degraded.items()
        },
        "synthetic_ecg": synthetic_tally.summary(names=True, margins=True),
        "synthetic_ecg_degraded_all_changes": synthetic_degraded.summary(names=True, margins=True),
        "ms_per_check": {
            "real_ecg": _timing([real]),
            "real_ecg_degraded": _timing(list(degraded.values())),
            "non_ecg": _timing(list(non_ecg.values())),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.guard``."""
    parser = argparse.ArgumentParser(prog="python -m ml.guard", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="*", type=Path, help="images to check")
    parser.add_argument("--measure", action="store_true", help="measure rejection rates instead")
    parser.add_argument("--ecg-data", type=Path, help="real ECG pages, <class>/<image> (with --measure)")
    parser.add_argument("--non-ecg-per-kind", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic ECG pages to check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--out", type=Path, help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    if not args.measure:
        if not args.images:
            parser.error("give images to check, or --measure")
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
    if args.ecg_data is None:
        parser.error("--measure needs --ecg-data")
    if args.non_ecg_per_kind < 1 or args.synthetic < 0 or args.seed < 0:
        parser.error("--non-ecg-per-kind must be >= 1, --synthetic and --seed >= 0")
    report = measure(
        args.ecg_data,
        non_ecg_per_kind=args.non_ecg_per_kind,
        synthetic=args.synthetic,
        seed=args.seed,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(_summary_lines(report))
    return 0


def _summary_lines(report: dict[str, Any]) -> str:
    lines = ["non-ECG rejection rate per kind:"]
    for section in ("non_ecg", "near_misses", "lookalikes"):
        for kind, row in report[section]["per_kind"].items():
            lines.append(f"  {kind:18s} {row['rejected']:4d}/{row['images']:<4d} {row['reasons']}")
    lines.append(
        f"real ECG false rejections: {report['real_ecg']['rejected']}/{report['real_ecg']['images']}"
    )
    for change, row in report["real_ecg_degraded"].items():
        lines.append(f"  degraded ({change}): {row['rejected']}/{row['images']} {row['reasons']}")
    for key in ("synthetic_ecg", "synthetic_ecg_degraded_all_changes"):
        row = report[key]
        lines.append(f"{key} false rejections: {row['rejected']}/{row['images']} {row['reasons']}")
    lines.append(f"ms per check: {report['ms_per_check']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
