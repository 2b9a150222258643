"""Synthetic printed 12-lead ECG pages, so tests and demos never need the real scans.

``render_ecg(label, seed)`` draws a page with the layout of the khan-ecg scans (see
``ml.layout``): header, pink grid, 3x4 lead panels of 2.5 s, a 10 s rhythm strip of lead II,
calibration pulses and a footer. Beats are class-conditioned so a model can learn them:

- ``normal``: regular sinus rhythm, 55-95 bpm, P before every narrow QRS, upright T.
- ``mi``: acute infarction: ST elevation with tall T in one territory (inferior, anterior
  or lateral leads) and reciprocal ST depression elsewhere.
- ``history_mi``: old infarction: deep wide Q waves, small R and inverted T in a territory.
- ``abnormal``: an arrhythmia: atrial fibrillation (no P, irregular RR), bundle branch
  block (wide QRS) or premature ventricular beats.

Header text is drawn from a random stream that does not depend on the label, as on the
real pages. Command line::

    python -m ml.synthetic --out DIR --per-class N [--seed S] [--format png|jpg]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ml import layout
from ml.labels import CLASSES, class_index

PAPER = (255, 255, 255)
GRID_MINOR = (250, 218, 218)  # 1 mm squares
GRID_MAJOR = (240, 170, 170)  # 5 mm squares
GRID_BORDER = (230, 140, 140)
INK = (20, 20, 20)

# Typical amplitudes (mV) of P, R, S and T per lead, roughly after textbook normals.
LEAD_AMPLITUDES: dict[str, tuple[float, float, float, float]] = {
    "I": (0.10, 0.80, -0.10, 0.25),
    "II": (0.15, 1.20, -0.20, 0.35),
    "III": (0.06, 0.50, -0.25, 0.10),
    "aVR": (-0.10, -0.90, 0.10, -0.25),
    "aVL": (0.05, 0.40, -0.15, 0.10),
    "aVF": (0.10, 0.80, -0.20, 0.22),
    "V1": (0.05, 0.30, -1.00, 0.10),
    "V2": (0.06, 0.60, -1.20, 0.40),
    "V3": (0.07, 1.00, -0.80, 0.45),
    "V4": (0.08, 1.50, -0.50, 0.40),
    "V5": (0.08, 1.40, -0.30, 0.35),
    "V6": (0.08, 1.10, -0.20, 0.30),
}
TERRITORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (affected leads, reciprocal leads)
    "inferior": (("II", "III", "aVF"), ("I", "aVL")),
    "anterior": (("V1", "V2", "V3", "V4"), ("II", "III", "aVF")),
    "lateral": (("I", "aVL", "V5", "V6"), ("III", "aVF")),
}
DURATION_S = 10.0
PANEL_S = 2.5


@dataclass
class _Rhythm:
    """Beat times (s) and per-beat shape flags shared by all leads."""

    beats: np.ndarray
    has_p: np.ndarray
    qrs_sigma: np.ndarray  # seconds
    ectopic: np.ndarray
    heart_rate: int


@dataclass
class _Morphology:
    """Per-lead changes on top of the normal amplitudes (mV)."""

    st_shift: dict[str, float] = field(default_factory=dict)
    t_scale: dict[str, float] = field(default_factory=dict)
    q_depth: dict[str, float] = field(default_factory=dict)
    r_scale: dict[str, float] = field(default_factory=dict)


def _rhythm(label: str, rng: np.random.Generator) -> tuple[_Rhythm, str]:
    subtype = ""
    if label == "abnormal":
        subtype = str(rng.choice(["atrial_fibrillation", "bundle_branch_block", "pvc"]))
    rate = rng.uniform(55, 95) if label != "mi" else rng.uniform(65, 110)
    if subtype == "atrial_fibrillation":
        rate = rng.uniform(80, 130)
    mean_rr = 60.0 / rate
    beats = [rng.uniform(0.05, mean_rr)]
    while beats[-1] < DURATION_S + 1:
        if subtype == "atrial_fibrillation":
            rr = mean_rr * rng.uniform(0.6, 1.4)  # irregularly irregular
        else:
            rr = mean_rr * (1 + rng.normal(0, 0.02))
        beats.append(beats[-1] + rr)
    times = np.asarray(beats)
    count = len(times)
    ectopic = np.zeros(count, dtype=bool)
    if subtype == "pvc":
        # Every 3rd-5th beat comes early and wide, followed by a compensatory pause.
        step = int(rng.integers(3, 6))
        for index in range(int(rng.integers(1, step)), count, step):
            ectopic[index] = True
            times[index] -= 0.3 * mean_rr
            times[index + 1 :] += 0.3 * mean_rr
    qrs = np.full(count, rng.uniform(0.010, 0.014))
    if subtype == "bundle_branch_block":
        qrs[:] = rng.uniform(0.030, 0.040)
    qrs[ectopic] = rng.uniform(0.035, 0.045)
    has_p = ~ectopic & (subtype != "atrial_fibrillation")
    heart_rate = round(60.0 * (np.sum(times < DURATION_S) / DURATION_S))
    return _Rhythm(times, has_p, qrs, ectopic, heart_rate), subtype


def _morphology(label: str, rng: np.random.Generator) -> _Morphology:
    morph = _Morphology()
    if label not in ("mi", "history_mi"):
        return morph
    territory = str(rng.choice(sorted(TERRITORIES)))
    affected, reciprocal = TERRITORIES[territory]
    for lead in affected:
        if label == "mi":
            morph.st_shift[lead] = rng.uniform(0.2, 0.45)
            morph.t_scale[lead] = rng.uniform(1.5, 2.2)
        else:
            morph.q_depth[lead] = rng.uniform(0.3, 0.6)
            morph.r_scale[lead] = rng.uniform(0.2, 0.5)
            morph.t_scale[lead] = -rng.uniform(0.8, 1.2)
    if label == "mi":
        for lead in reciprocal:
            morph.st_shift[lead] = -rng.uniform(0.08, 0.18)
    return morph


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # logistic without exp overflow


def _gauss(tau: np.ndarray, centre: float, sigma: np.ndarray | float) -> np.ndarray:
    return np.exp(-0.5 * ((tau - centre) / sigma) ** 2)


def _signal(
    lead: str,
    t: np.ndarray,
    rhythm: _Rhythm,
    morph: _Morphology,
    gain: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Millivolts of ``lead`` at times ``t`` (s): a sum of Gaussian waves per beat."""
    p, r, s, t_wave = np.asarray(LEAD_AMPLITUDES[lead]) * gain
    r *= morph.r_scale.get(lead, 1.0)
    t_wave *= morph.t_scale.get(lead, 1.0)
    q = -morph.q_depth.get(lead, 0.0)
    st = morph.st_shift.get(lead, 0.0)
    tau = t[:, None] - rhythm.beats[None, :]  # time since each R peak
    sigma = rhythm.qrs_sigma[None, :]
    ectopic = rhythm.ectopic[None, :]
    wave = rhythm.has_p[None, :] * p * _gauss(tau, -0.16, 0.025)
    wave = wave + np.where(q != 0, q * _gauss(tau, -0.035, 0.014), -0.05 * abs(r) * _gauss(tau, -0.03, 0.008))
    r_amp = np.where(ectopic, 1.3 * abs(r) * np.sign(-s if abs(s) > abs(r) else r), r)
    wave = wave + r_amp * _gauss(tau, 0.0, sigma)
    wave = wave + s * _gauss(tau, 0.03 + 1.5 * sigma, sigma)
    # ST segment: a plateau from the J point into the T wave.
    wave = wave + st * _sigmoid((tau - 0.05) / 0.01) * _sigmoid((0.30 - tau) / 0.03)
    t_amp = np.where(ectopic, -1.2 * abs(t_wave) * np.sign(r_amp), t_wave)
    wave = wave + t_amp * _gauss(tau, 0.28, 0.05)
    signal = wave.sum(axis=1)
    wander = 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))
    return signal + wander + rng.normal(0, 0.008, size=t.shape)


def _font(size: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(6, round(size)))


def _draw_grid(width: int, height: int) -> np.ndarray:
    sx, sy = width / layout.REFERENCE_WIDTH, height / layout.REFERENCE_HEIGHT
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = PAPER
    left, right = round(layout.GRID_LEFT * sx), round(layout.GRID_RIGHT * sx)
    top, bottom = round(layout.GRID_TOP * sy), round(layout.GRID_BOTTOM * sy)
    mm_x = layout.PIXELS_PER_MM * sx
    mm_y = layout.PIXELS_PER_MV / 10 * sy  # 10 mm per mV
    for colour, step in ((GRID_MINOR, 1), (GRID_MAJOR, 5)):
        xs = np.round(np.arange(left, right, mm_x * step)).astype(int)
        ys = np.round(np.arange(top, bottom, mm_y * step)).astype(int)
        pixels[top:bottom, xs] = colour
        pixels[ys, left:right] = colour
    for edge in (top, bottom):
        pixels[edge, left : right + 1] = GRID_BORDER
    for edge in (left, right):
        pixels[top : bottom + 1, edge] = GRID_BORDER
    return pixels


def _draw_text(
    draw: ImageDraw.ImageDraw, width: int, height: int, heart_rate: int, rng: np.random.Generator
) -> None:
    sx, sy = width / layout.REFERENCE_WIDTH, height / layout.REFERENCE_HEIGHT
    title = _font(24 * sy)
    small = _font(13 * sy)
    draw.text((width / 2, 22 * sy), "ECG REPORT", fill=INK, font=title, anchor="mm")
    patient = (
        f"ID : {int(rng.integers(100000, 999999))}      {int(rng.integers(18, 90))} Years"
        f"      {rng.choice(['Male', 'Female'])}      cm      kg      /      mmHg"
        "      Race:Unknown      Room No.:      Department:"
    )
    draw.text((36 * sx, 45 * sy), patient, fill=INK, font=small, anchor="lm")
    draw.text((36 * sx, 63 * sy), "Exam.Room:        Medication:", fill=INK, font=small, anchor="lm")
    for y in (74, 77):
        draw.line([(36 * sx, y * sy), (1168 * sx, y * sy)], fill=INK, width=max(1, round(sy)))
    draw.text((36 * sx, 88 * sy), "Diagnosis Information:", fill=INK, font=small, anchor="lm")
    technician = str(rng.choice(["A. Rahman", "S. Khan", "M. Ali", "N. Ahmed", "R. Iqbal"]))
    for index, text in enumerate((f"Technician : {technician}", "Ref-Phys. :", "Report Confirmed by:")):
        draw.text((843 * sx, (106 + 18 * index) * sy), text, fill=INK, font=small, anchor="lm")
    footer = f"0.67~25Hz  AC50  25mm/s  10mm/mV  4*2.5s+1r  HR {heart_rate} bpm  SEMIP V1.7"
    draw.text((36 * sx, 836 * sy), footer, fill=INK, font=small, anchor="lm")
    recorded = dt.datetime(2020, 1, 1) + dt.timedelta(minutes=int(rng.integers(0, 525_600)))
    draw.text((1115 * sx, 836 * sy), f"{recorded:%Y-%m-%d   %I:%M:%S %p}", fill=INK, font=small, anchor="rm")


@dataclass(frozen=True)
class PrintedSignals:
    """What ``render_ecg`` drew, in millivolts: the ground truth a digitiser should read back.

    ``leads`` maps each of the twelve leads to (times in s on the page's 10 s axis, mV) over
    its 2.5 s panel; ``rhythm`` the rhythm strip's lead to the same over the whole 10 s;
    ``known`` the intervals, ST shifts and Q waves of the waves drawn (``KnownMeasurements``).
    """

    leads: dict[str, tuple[np.ndarray, np.ndarray]]
    rhythm: dict[str, tuple[np.ndarray, np.ndarray]]
    known: KnownMeasurements


# Each drawn wave is a Gaussian; it lasts its centre +- 2 sigma, where the tangent at its steepest
# point meets its baseline (how the tangent method reads a wave's start and end).
WAVE_HALF_WIDTH_SIGMAS = 2.0
# A wave counts for the intervals when it is at least 1 mm (0.1 mV) tall in some lead, the smallest
# deflection a reader counts: the septal q (5% of R, under 0.1 mV in every lead) does not.
VISIBLE_MV = 0.1


@dataclass(frozen=True)
class KnownMeasurements:
    """The measurements a cardiologist would read off a synthetic page, from the waves the
    generator drew (not from the pixels): the ground truth for ``ml.measurements``.

    Intervals (ms) are read on the dominant (non-ectopic) beats, over all twelve leads: the QRS
    runs from the earliest start to the latest end of its q, R and S waves that are visible
    (``VISIBLE_MV``), each wave lasting its centre +- ``WAVE_HALF_WIDTH_SIGMAS`` sigma; PR from
    the P wave's start to the QRS start (None without P waves: atrial fibrillation); QT from the
    QRS start to the T wave's end. ``heart_rate_bpm`` is 60 / the median RR of the beats drawn in
    the 10 s; ``qtc_ms`` Bazett's QT / sqrt(RR in s) with that RR. ``st_mv`` is the ST plateau the
    generator added per lead (0 where none), ``q_depth_mv`` the pathological Q wave's depth per
    lead (only the old infarction's territory).
    """

    subtype: str
    heart_rate_bpm: float
    pr_ms: float | None
    qrs_ms: float
    qt_ms: float
    qtc_ms: float
    st_mv: dict[str, float]
    q_depth_mv: dict[str, float]


def _known_measurements(
    subtype: str, rhythm: _Rhythm, morph: _Morphology, gain: np.ndarray
) -> KnownMeasurements:
    """What ``_signal`` draws for ``rhythm`` and ``morph``, as intervals (see KnownMeasurements)."""
    k = WAVE_HALF_WIDTH_SIGMAS
    dominant = ~rhythm.ectopic
    sigma = float(np.median(rhythm.qrs_sigma[dominant]))
    # The (centre, sigma, tallest amplitude over the leads) of each QRS wave, as _signal draws them.
    amplitudes = {lead: np.asarray(values) * gain for lead, values in LEAD_AMPLITUDES.items()}
    tallest_r = max(abs(a[1]) * morph.r_scale.get(lead, 1.0) for lead, a in amplitudes.items())
    tallest_s = max(abs(a[2]) for a in amplitudes.values())
    waves = [(0.0, sigma, tallest_r), (0.03 + 1.5 * sigma, sigma, tallest_s)]
    if morph.q_depth:
        waves.append((-0.035, 0.014, max(morph.q_depth.values())))
    septal = [
        0.05 * abs(a[1]) * morph.r_scale.get(lead, 1.0)
        for lead, a in amplitudes.items()
        if lead not in morph.q_depth
    ]
    waves.append((-0.03, 0.008, max(septal, default=0.0)))
    visible = [(centre, width) for centre, width, height in waves if height >= VISIBLE_MV]
    qrs_start = min(centre - k * width for centre, width in visible)
    qrs_end = max(centre + k * width for centre, width in visible)
    p_start = -0.16 - k * 0.025
    t_end = 0.28 + k * 0.05
    drawn = rhythm.beats[rhythm.beats < DURATION_S]
    rr = float(np.median(np.diff(drawn)))
    qt = t_end - qrs_start
    return KnownMeasurements(
        subtype=subtype,
        heart_rate_bpm=60.0 / rr,
        pr_ms=1000 * (qrs_start - p_start) if rhythm.has_p[dominant].any() else None,
        qrs_ms=1000 * (qrs_end - qrs_start),
        qt_ms=1000 * qt,
        qtc_ms=float(1000 * qt / np.sqrt(rr)),
        st_mv={lead: float(morph.st_shift.get(lead, 0.0)) for lead in LEAD_AMPLITUDES},
        q_depth_mv={lead: float(depth) for lead, depth in morph.q_depth.items()},
    )


def render_ecg(label: str, seed: int, *, width: int = 1200, height: int = 852) -> Image.Image:
    """Draw a synthetic 12-lead report of class ``label``; the same arguments, same pixels.
    (``render_ecg_with_signals`` also returns the millivolts drawn.)"""
    return render_ecg_with_signals(label, seed, width=width, height=height)[0]


def render_ecg_with_signals(
    label: str, seed: int, *, width: int = 1200, height: int = 852
) -> tuple[Image.Image, PrintedSignals]:
    """Draw a synthetic 12-lead report of class ``label``, and return what it drew.

    1. Pink grid in the grid box (1 mm minor, 5 mm major squares, 25 mm/s, 10 mm/mV).
    2. Header and footer text (random, label-independent; the footer shows the true rate).
    3. A rhythm (beat times, P waves, QRS widths) and per-lead morphology for ``label``.
    4. Each row: a 1 mV calibration pulse, then four 2.5 s panels taken from the same 10 s
       recording (I/II/III, aVR/aVL/aVF, V1-V3, V4-V6) with lead names; then lead II over
       10 s as the rhythm strip.
    """
    class_index(label)  # raises a helpful ValueError for an unknown label
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"'seed' must be a non-negative integer. Received: seed={seed!r}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 200:
            raise ValueError(f"'{name}' must be an integer >= 200. Received: {name}={value!r}")
    # Independent streams: the signal depends on the label, the header text does not.
    signal_rng = np.random.default_rng([seed, class_index(label)])
    text_rng = np.random.default_rng([seed, 1_000_003])
    rhythm, subtype = _rhythm(label, signal_rng)
    morph = _morphology(label, signal_rng)
    gain = signal_rng.uniform(0.8, 1.2, size=4)

    image = Image.fromarray(_draw_grid(width, height))
    draw = ImageDraw.Draw(image)
    _draw_text(draw, width, height, rhythm.heart_rate, text_rng)
    sx, sy = width / layout.REFERENCE_WIDTH, height / layout.REFERENCE_HEIGHT
    pen = max(1, round(1.6 * sx))
    label_font = _font(13 * sy)
    pixels_per_mv = layout.PIXELS_PER_MV * sy

    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def trace(lead: str, x0: float, x1: float, t0: float, baseline: float) -> tuple[np.ndarray, np.ndarray]:
        xs = np.arange(round(x0 * sx), round(x1 * sx) + 1, dtype=np.float64)
        t = t0 + (xs / sx - x0) / layout.PIXELS_PER_SECOND
        millivolts = _signal(lead, t, rhythm, morph, gain, signal_rng)
        ys = baseline * sy - millivolts * pixels_per_mv
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=INK, width=pen)
        return t, millivolts

    for row, baseline in enumerate(layout.ROW_BASELINES):
        base = baseline * sy
        # 1 mV calibration pulse, 0.2 s wide, left of the first panel.
        x_a, x_b, x_c, x_d = (v * sx for v in (48, 54, 70, 76))
        top = base - pixels_per_mv
        draw.line(
            [(x_a, base), (x_b, base), (x_b, top), (x_c, top), (x_c, base), (x_d, base)],
            fill=INK,
            width=pen,
        )
        if row < 3:
            for column, leads in enumerate(layout.COLUMN_LEADS):
                x0, x1 = layout.COLUMN_EDGES[column], layout.COLUMN_EDGES[column + 1]
                drawn[leads[row]] = trace(leads[row], x0, x1, column * PANEL_S, baseline)
                name_xy = (x0 * sx + 3 * sx, base - 14 * sy)
                draw.text(name_xy, leads[row], fill=INK, font=label_font, anchor="lm")
                if column > 0:  # lead change marker, as printed on the scans
                    draw.line([(x0 * sx, base - 25 * sy), (x0 * sx, base + 25 * sy)], fill=INK)
        else:
            rhythm_strip = trace(
                layout.RHYTHM_LEAD, layout.COLUMN_EDGES[0], layout.COLUMN_EDGES[-1], 0.0, baseline
            )
            draw.text(
                (layout.COLUMN_EDGES[0] * sx + 3 * sx, base - 14 * sy),
                layout.RHYTHM_LEAD,
                fill=INK,
                font=label_font,
                anchor="lm",
            )
    known = _known_measurements(subtype, rhythm, morph, gain)
    return image, PrintedSignals(leads=drawn, rhythm={layout.RHYTHM_LEAD: rhythm_strip}, known=known)


def dataset_pages(out: Path, per_class: int, seed: int = 0) -> Iterator[tuple[Path, Image.Image]]:
    """The pages of a synthetic set, ``per_class`` for every class, each with its path without
    a suffix, ``out/<label>/<label>_<i>`` (the folders are made); page i of a class is
    ``render_ecg(label, seed * 1_000_000 + i)``."""
    if per_class < 1:
        raise ValueError(f"'per_class' must be >= 1. Received: per_class={per_class!r}")
    for label in CLASSES:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            yield folder / f"{label}_{index}", render_ecg(label, seed * 1_000_000 + index)


def write_dataset(out: Path, per_class: int, seed: int = 0, image_format: str = "png") -> int:
    """Write ``out/<label>/<label>_<i>.<format>`` for every class; return the file count."""
    if image_format not in ("png", "jpg"):
        raise ValueError(f"'image_format' must be 'png' or 'jpg'. Received: {image_format!r}")
    total = per_class * len(CLASSES)
    written = 0
    for stem, image in dataset_pages(out, per_class, seed):
        path = stem.with_suffix(f".{image_format}")
        if image_format == "jpg":
            image.save(path, quality=90)
        else:
            image.save(path)
        written += 1
        print(f"\r{written}/{total} {path}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.synthetic``."""
    parser = argparse.ArgumentParser(prog="python -m ml.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--per-class", type=int, required=True, help="images per class")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    count = write_dataset(args.out, args.per_class, args.seed, args.format)
    print(f"wrote {count} images under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
