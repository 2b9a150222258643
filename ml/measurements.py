"""The measurements a cardiologist reads first, from a page's digitised leads (``ml.traces``).

Numpy only, cheap to import (a serving module). ``measure(twelve_leads(digitise(red)))`` gives:

- heart rate: R peaks on the 10 s lead II rhythm strip (the hump of its slope, smoothed over
  50 ms, taller than 30% of the typical hump, 250 ms apart at least), 60 / the median RR;
- a median beat per lead from the dominant beats inside its 2.5 s panel (the beats on the
  rhythm strip whose QRS correlates >= 0.8 with the strip's median QRS: premature ventricular
  beats are left out), aligned on the R peaks found on the strip, which shares the panels' time
  axis; the rhythm strip's own median beat (all its dominant beats) for the P wave;
- QRS onset and offset (the J point) on all the median beats at once: where the mean absolute
  slope over the leads falls below ``QRS_SLOPE_FRACTION`` of its QRS peak above the beat's floor;
- P onset on the rhythm strip's median beat and T end on the lead with the tallest T wave, each
  by the tangent method (the tangent at the wave's steepest edge meets the isoelectric level,
  taken just before the QRS onset); no P wave (under ``P_MIN_MV``, or unlike from beat to beat,
  as in atrial fibrillation) gives no PR;
- PR (P onset to QRS onset), QRS (onset to J), QT (QRS onset to T end), QTc by Bazett
  (QT / sqrt(RR in s));
- ST deviation per lead at J + 60 ms from the isoelectric level, in mV;
- pathological Q waves per lead: an initial negative deflection of the QRS at least 0.1 mV deep
  and either >= 40 ms long or >= 25% of the following R wave's height (a QS complex counts).
  aVR is not assessed (its complex is negative in health): None.

A field that cannot be measured (no beats, no P wave, a lead without a dominant beat) is None.
At 102.4 Hz one sample is 9.8 ms: intervals are read to about that resolution.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml import layout
from ml.traces import SAMPLING_HZ, TwelveLeads

LEADS = layout.LEAD_NAMES
FS = SAMPLING_HZ
MIN_SWING_MV = 0.3  # a strip that never swings this much has no beats to read
SLOPE_SMOOTH_S = 0.05
PEAK_FRACTION = 0.3  # of the typical QRS's slope energy; a T wave's is 16-100 times smaller
TYPICAL_PERCENTILE = 80
REFRACTORY_S = 0.25
CENTROID_HALF_S = 0.08
QRS_TEMPLATE_S = (-0.12, 0.16)
DOMINANT_CORRELATION = 0.8
BEAT_S = (-0.40, 0.60)  # the median beat's window around the R peak
EDGE_SAMPLES = 4  # the panel separators are blanked there: the trace holds its last position
QRS_SLOPE_FRACTION = 0.2
QRS_GAP_S = 0.04
ISOELECTRIC_S = (-0.05, -0.01)  # before the QRS onset: the PR segment
P_SEARCH_S = (-0.30, -0.04)  # before the QRS onset
P_MIN_MV = 0.05
P_MIN_CONSISTENCY = 0.5  # median correlation of each beat's P segment with the median beat's
T_START_AFTER_J_S = 0.06
T_SEARCH_S = 0.40  # after the J point, for the T wave's peak
TANGENT_REACH_S = 0.15  # from a wave's peak to its steepest edge
ST_AFTER_J_S = 0.06
Q_MIN_DEPTH_MV = 0.1  # 1 mm: shallower dips are within the printed trace's noise
Q_MIN_DURATION_S = 0.04
Q_R_RATIO = 0.25
Q_NOT_ASSESSED = ("aVR",)
DECIMALS = 3


@dataclass(frozen=True)
class Measurements:
    """Intervals in ms, heart rate in bpm, ST in mV; None where it could not be measured."""

    heart_rate_bpm: float | None
    rr_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_ms: float | None  # Bazett: QT / sqrt(RR in s)
    st_mv: dict[str, float | None]  # at J + 60 ms, against the PR segment
    q_waves: dict[str, bool | None]  # pathological Q wave; aVR not assessed
    beats: int  # R peaks found on the rhythm strip

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded; None stays None (null)."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, DECIMALS)

        return {
            "heart_rate_bpm": rounded(self.heart_rate_bpm),
            "rr_ms": rounded(self.rr_ms),
            "pr_ms": rounded(self.pr_ms),
            "qrs_ms": rounded(self.qrs_ms),
            "qt_ms": rounded(self.qt_ms),
            "qtc_ms": rounded(self.qtc_ms),
            "qtc_formula": "Bazett",
            "st_mv": {lead: rounded(value) for lead, value in self.st_mv.items()},
            "st_point": "J+60ms",
            "q_waves": dict(self.q_waves),
            "beats": self.beats,
        }


# ``features``: each interval over a typical value, so the inputs are near 1; ST in mV.
FEATURE_SCALES = {"heart_rate_bpm": 100.0, "pr_ms": 200.0, "qrs_ms": 100.0, "qt_ms": 400.0, "qtc_ms": 400.0}
ST_CLIP_MV = 1.0  # a misread trace can give a wild ST value; no real one is beyond this
FEATURE_NAMES: tuple[str, ...] = (
    *FEATURE_SCALES,
    *(f"{name}_measured" for name in FEATURE_SCALES),
    *(f"st_{lead}" for lead in LEADS),
    *(f"st_{lead}_measured" for lead in LEADS),
    *(f"q_{lead}" for lead in LEADS if lead not in Q_NOT_ASSESSED),
)


def features(measurements: Measurements) -> np.ndarray:
    """The measurements as a fixed-length float32 vector (``FEATURE_NAMES``), for a model.

    A value that could not be measured is 0 with its ``_measured`` flag 0, so a model can tell
    "not measured" from "zero"; a Q wave not found or not measured is 0.
    """
    intervals = [(getattr(measurements, name), scale) for name, scale in FEATURE_SCALES.items()]
    st = [measurements.st_mv.get(lead) for lead in LEADS]
    q_leads = [lead for lead in LEADS if lead not in Q_NOT_ASSESSED]
    vector = [
        *(0.0 if value is None else value / scale for value, scale in intervals),
        *(float(value is not None) for value, _ in intervals),
        *(0.0 if value is None else float(np.clip(value, -ST_CLIP_MV, ST_CLIP_MV)) for value in st),
        *(float(value is not None) for value in st),
        *(float(bool(measurements.q_waves.get(lead))) for lead in q_leads),
    ]
    return np.asarray(vector, dtype=np.float32)


def _nothing(beats: int = 0, heart_rate: float | None = None, rr: float | None = None) -> Measurements:
    return Measurements(
        heart_rate_bpm=heart_rate,
        rr_ms=rr,
        pr_ms=None,
        qrs_ms=None,
        qt_ms=None,
        qtc_ms=None,
        st_mv=dict.fromkeys(LEADS),
        q_waves=dict.fromkeys(LEADS),
        beats=beats,
    )


def _smooth(values: np.ndarray, seconds: float) -> np.ndarray:
    width = max(1, round(seconds * FS))
    return np.convolve(values, np.ones(width) / width, mode="same")


def r_peaks(strip: np.ndarray) -> np.ndarray:
    """The R peaks of a rhythm strip, as fractional sample positions (the top of each QRS's
    slope hump: a fiducial that is the same for beats of the same shape)."""
    strip = np.asarray(strip, dtype=np.float64)
    if strip.size < 3 or not np.isfinite(strip).all() or np.ptp(strip) < MIN_SWING_MV:
        return np.empty(0)
    hump = _smooth((np.gradient(strip) * FS) ** 2, SLOPE_SMOOTH_S)  # squared: QRS over T
    local = np.flatnonzero((hump[1:-1] >= hump[:-2]) & (hump[1:-1] > hump[2:])) + 1
    if local.size == 0:
        return np.empty(0)
    # The tallest first, each claiming REFRACTORY_S around it: one peak per QRS.
    reach = math.ceil(REFRACTORY_S * FS) - 1  # the farthest sample closer than REFRACTORY_S
    claimed = np.zeros(hump.size, dtype=bool)
    chosen: list[int] = []
    for index in local[np.argsort(-hump[local], kind="stable")].tolist():
        if not claimed[index]:
            chosen.append(index)
            claimed[max(0, index - reach) : index + reach + 1] = True
    peaks = np.sort(np.asarray(chosen))
    heights = hump[peaks]
    # The typical QRS: the QRS humps claim 250 ms each, so the taller part of what was chosen
    # is QRS, whatever one artefact (the digitiser jumping to a neighbouring trace) does.
    typical = np.percentile(heights, TYPICAL_PERCENTILE)
    peaks = peaks[heights >= PEAK_FRACTION * typical]
    # The centre of mass of the slope energy around each peak: the two lobes of a QRS (its up-
    # and its downstroke) swap which is taller from beat to beat, their centre does not.
    half = round(CENTROID_HALF_S * FS)
    energy = (np.gradient(strip) * FS) ** 2
    positions = np.empty(peaks.size)
    for index, peak in enumerate(peaks):
        lo, hi = max(0, peak - half), min(energy.size, peak + half + 1)
        weights = energy[lo:hi]
        positions[index] = np.sum(np.arange(lo, hi) * weights) / weights.sum()
    return positions


def _windows(signal: np.ndarray, start: float, beats: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(beats, offsets) samples of ``signal`` (which begins at sample ``start`` of the 10 s axis)
    around each beat; NaN outside the signal and near its blanked edges."""
    positions = beats[:, None] + offsets[None, :] - start
    valid = (positions >= EDGE_SAMPLES) & (positions <= signal.size - 1 - EDGE_SAMPLES)
    values = np.interp(positions, np.arange(signal.size), signal)
    return np.where(valid, values, np.nan)


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """The median over axis -2 (the beats) of ``values``, ignoring NaN; NaN where all are NaN.

    np.nanmedian's own way for small arrays goes through masked arrays, which made it most of
    a page's measuring time; NaN sorts last, so the middle of each column's finite values is
    found by counting them. The result is np.nanmedian's, to the bit.
    """
    ordered = np.sort(values, axis=-2)
    count = np.sum(~np.isnan(values), axis=-2, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=-2)
    high = np.take_along_axis(ordered, count // 2, axis=-2)
    middle = np.where(count % 2 == 1, low, (low + high) / 2)
    return np.where(count > 0, middle, np.nan).squeeze(-2)


def _correlations(rows: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Pearson's correlation of each row of ``rows`` with ``template`` (NaN for a flat row)."""
    rows = rows - rows.mean(axis=-1, keepdims=True)
    template = template - template.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rows @ template) / (np.linalg.norm(rows, axis=-1) * np.linalg.norm(template))


def _dominant(strip: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Which beats have the strip's usual QRS (premature ventricular beats do not)."""
    offsets = np.arange(round(QRS_TEMPLATE_S[0] * FS), round(QRS_TEMPLATE_S[1] * FS) + 1)
    windows = _windows(strip, 0, beats, offsets)
    whole = ~np.isnan(windows).any(axis=1)
    if whole.sum() < 2:
        return np.ones(beats.size, dtype=bool)
    windows = windows - np.nanmean(windows, axis=1, keepdims=True)
    template = np.median(windows[whole], axis=0)
    dominant = np.ones(beats.size, dtype=bool)
    dominant[whole] = _correlations(windows[whole], template) >= DOMINANT_CORRELATION
    return dominant if dominant.any() else np.ones(beats.size, dtype=bool)


def _crossing(values: np.ndarray, start: int, step: int, level: float) -> float | None:
    """From index ``start``, walking by ``step``, the fractional index where ``values`` first
    drops below ``level`` (linear between samples); None if it never does."""
    index = start
    while 0 <= index + step < values.size:
        here, there = values[index], values[index + step]
        if np.isnan(there):
            return None
        if there < level:
            return index + step * (here - level) / (here - there)
        index += step
    return None


def _edge(values: np.ndarray, start: int, step: int, level: float) -> float | None:
    """From the peak at ``start``, walking by ``step``, where ``values`` falls below ``level`` for
    good: dips shorter than ``QRS_GAP_S`` (between the R and the S wave's slopes) are bridged.
    The fractional index of the last crossing; None if the values end first."""
    gap = max(1, round(QRS_GAP_S * FS))
    last_above, index = start, start
    while 0 <= index + step < values.size:
        index += step
        if np.isnan(values[index]):
            return None
        if values[index] >= level:
            last_above = index
        elif abs(index - last_above) >= gap:
            here, there = values[last_above], values[last_above + step]
            return last_above + step * (here - level) / (here - there)
    return None


def _at(values: np.ndarray, index: float) -> float | None:
    if not 0 <= index <= values.size - 1:
        return None
    value = float(np.interp(index, np.arange(values.size), values))
    return None if np.isnan(value) else value


def _levels(beats: np.ndarray, onset: float) -> list[float | None]:
    """The isoelectric level of each median beat (a row of ``beats``): its PR segment, just
    before the QRS onset. None for a beat whose segment is all NaN."""
    lo = round(onset + ISOELECTRIC_S[0] * FS)
    hi = round(onset + ISOELECTRIC_S[1] * FS)
    segments = beats[:, max(0, lo) : max(0, hi + 1)]
    if not segments.shape[1]:
        return [None] * beats.shape[0]
    return [None if np.isnan(level) else float(level) for level in _nanmedian(segments[..., None])[:, 0]]


def _wave_peak(segment: np.ndarray, *, upright: bool, last_above: float | None = None) -> int | None:
    """The index of a wave's peak in ``segment`` (mV from the isoelectric level): a local
    extremum inside it (upright only, or of either sign), not a slope running off its ends.
    The tallest, or the last one at least ``last_above`` high (the P wave is the last wave before
    the QRS; the previous beat's T wave can be taller). None without one."""
    values = segment if upright else np.abs(segment)
    inner = np.flatnonzero((values[1:-1] >= values[:-2]) & (values[1:-1] > values[2:])) + 1
    if last_above is not None:
        inner = inner[values[inner] >= last_above]
        return int(inner[-1]) if inner.size else None
    return int(inner[np.argmax(values[inner])]) if inner.size else None


def _tangent_end(beat: np.ndarray, level: float, lo: int, peak: int, *, before_peak: bool) -> float:
    """The tangent method on the wave peaking at sample ``lo + peak``: where the tangent at its
    steepest edge (before or after the peak) meets ``level``. NaN when that edge is flat."""
    sign = np.sign(beat[lo + peak] - level) or 1.0
    slope = np.gradient(beat)[lo:]
    # Only the wave's own edge: the next wave (a P after the T, a T before the P) is as steep.
    reach = round(TANGENT_REACH_S * FS)
    if before_peak:
        first = max(0, peak - reach)
        steepest = first + int(np.nanargmax(slope[first : peak + 1] * sign))
    else:
        steepest = peak + int(np.nanargmax(-slope[peak : peak + reach + 1] * sign))
    gradient = slope[steepest]
    if not np.isfinite(gradient) or gradient * sign * (1 if before_peak else -1) <= 0:
        return float("nan")
    return lo + steepest - (beat[lo + steepest] - level) / gradient


def _q_wave(beat: np.ndarray, level: float, onset: float, offset: float) -> bool | None:
    qrs = beat[int(np.ceil(onset)) : int(np.floor(offset)) + 1] - level
    if qrs.size < 2 or np.isnan(qrs).any():
        return None
    r_index = int(np.argmax(qrs))
    r_height = max(0.0, float(qrs[r_index]))
    before = qrs[: r_index + 1]
    q_index = int(np.argmin(before))
    depth = -float(before[q_index])
    if depth < Q_MIN_DEPTH_MV:
        return False
    # The Q wave lasts while the trace is below the isoelectric level around its deepest point.
    start = _crossing(-before, q_index, -1, 0.0)
    end = _crossing(-before, q_index, 1, 0.0)
    start = 0.0 if start is None else start
    end = float(before.size - 1) if end is None else end
    duration = (end - start) / FS
    # A Python bool: numpy's would not survive json.dumps or the stored shape's check.
    return bool(duration >= Q_MIN_DURATION_S or depth >= Q_R_RATIO * r_height)


def measure(leads: TwelveLeads) -> Measurements:
    """The measurements of one page's digitised leads (see the module's docstring)."""
    strip = leads.rhythm.get(layout.RHYTHM_LEAD)
    if strip is None:
        return _nothing()
    strip = np.asarray(strip, dtype=np.float64)
    beats = r_peaks(strip)
    if beats.size < 2:
        return _nothing(int(beats.size))
    rr = float(np.median(np.diff(beats))) / FS
    heart_rate = 60.0 / rr
    dominant = beats[_dominant(strip, beats)]

    offsets = np.arange(round(BEAT_S[0] * FS), round(BEAT_S[1] * FS) + 1)
    zero = int(np.flatnonzero(offsets == 0)[0])
    present = [lead for lead in LEADS if lead in leads.leads]
    windows = [
        _windows(
            np.asarray(leads.leads[lead], dtype=np.float64),
            round(leads.start_s.get(lead, 0.0) * FS),
            dominant,
            offsets,
        )
        for lead in present
    ]
    # Every lead's median beat at once: one sort of a (leads, beats, samples) stack.
    everything = _nanmedian(np.stack([*windows, _windows(strip, 0, dominant, offsets)]))
    medians = dict(zip(present, everything[:-1], strict=True))
    rhythm_beat = everything[-1]

    # QRS onset and offset: the mean absolute slope over the leads, against its floor.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        velocity = np.nanmean(np.abs(np.gradient(everything, axis=1)), axis=0)
    if np.isnan(velocity[zero]):
        return _nothing(int(beats.size), heart_rate, 1000 * rr)
    near = slice(max(0, zero - round(0.1 * FS)), zero + round(0.1 * FS) + 1)
    peak = near.start + int(np.nanargmax(velocity[near]))
    floor = float(np.nanpercentile(velocity, 10))
    threshold = floor + QRS_SLOPE_FRACTION * (velocity[peak] - floor)
    onset = _edge(velocity, peak, -1, threshold)
    offset = _edge(velocity, peak, 1, threshold)
    if onset is None or offset is None:
        return _nothing(int(beats.size), heart_rate, 1000 * rr)

    # One level per row of `everything`: the leads' median beats, then the rhythm strip's.
    levels = _levels(everything, onset)
    pr = _pr(strip, dominant, rhythm_beat, levels[-1], zero, onset)
    qt = _qt(everything, levels, zero, onset, offset, rr)
    lead_levels = dict(zip(present, levels[:-1], strict=True))
    st: dict[str, float | None] = {}
    q_waves: dict[str, bool | None] = {}
    for lead in LEADS:
        beat = medians.get(lead)
        level = lead_levels.get(lead)
        if beat is None or level is None:
            st[lead] = q_waves[lead] = None
            continue
        value = _at(beat, offset + ST_AFTER_J_S * FS)
        st[lead] = None if value is None else value - level
        q_waves[lead] = None if lead in Q_NOT_ASSESSED else _q_wave(beat, level, onset, offset)
    return Measurements(
        heart_rate_bpm=heart_rate,
        rr_ms=1000 * rr,
        pr_ms=pr,
        qrs_ms=1000 * (offset - onset) / FS,
        qt_ms=qt,
        qtc_ms=None if qt is None else float(qt / np.sqrt(rr)),
        st_mv=st,
        q_waves=q_waves,
        beats=int(beats.size),
    )


def _pr(
    strip: np.ndarray, dominant: np.ndarray, beat: np.ndarray, level: float | None, zero: int, onset: float
) -> float | None:
    """P onset to QRS onset on the rhythm strip's median beat (isoelectric at ``level``), if it
    has a steady P wave."""
    lo, hi = round(onset + P_SEARCH_S[0] * FS), round(onset + P_SEARCH_S[1] * FS)
    if level is None or lo < 0 or np.isnan(beat[lo:hi]).any():
        return None
    wave = beat[lo:hi] - level
    peak = _wave_peak(wave, upright=True, last_above=P_MIN_MV)
    if peak is None:
        return None
    # A P wave looks the same before every beat; atrial fibrillation's baseline does not.
    offsets = np.arange(lo, hi) - zero
    segments = _windows(strip, 0, dominant, offsets.astype(np.float64))
    segments = segments[~np.isnan(segments).any(axis=1)]
    if segments.shape[0] >= 2:
        correlations = _correlations(segments[np.ptp(segments, axis=1) > 0], wave)
        if not correlations.size or np.median(correlations) < P_MIN_CONSISTENCY:
            return None
    p_onset = _tangent_end(beat, level, lo, peak, before_peak=True)
    if not np.isfinite(p_onset) or not lo - TANGENT_REACH_S * FS <= p_onset < onset:
        return None
    return 1000 * (onset - p_onset) / FS


def _qt(
    beats: np.ndarray, levels: list[float | None], zero: int, onset: float, offset: float, rr: float
) -> float | None:
    """QRS onset to the T wave's end (tangent method) on the median beat (a row of ``beats``,
    isoelectric at its ``levels``) with the tallest T wave."""
    lo = round(offset + T_START_AFTER_J_S * FS)
    # The T wave's peak comes before the next beat's P wave.
    hi = min(beats.shape[1], round(offset + T_SEARCH_S * FS), round(zero + (rr - 0.1) * FS))
    if hi - lo < 5:
        return None
    best: tuple[float, float] | None = None
    for beat, level in zip(beats, levels, strict=True):
        if level is None or np.isnan(beat[lo:hi]).any():
            continue
        peak = _wave_peak(beat[lo:hi] - level, upright=False)
        if peak is None:
            continue
        end = _tangent_end(beat, level, lo, peak, before_peak=False)
        height = abs(beat[lo + peak] - level)
        if np.isfinite(end) and (best is None or height > best[1]):
            best = (end, height)
    if best is None or not offset < best[0] <= hi + TANGENT_REACH_S * FS:
        return None
    return 1000 * (best[0] - onset) / FS
