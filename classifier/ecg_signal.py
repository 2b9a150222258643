"""A page's twelve leads in millivolts and their measurements, as the service stores them with a
prediction and serves them.

The worker reads the page it classifies once (``page_reading``, built by ``ml.leads``, as
``python -m ml.digitise`` prints it) and stores both parts on the prediction: the leads as
``Prediction.signal`` (``{"fs", "leads", "start_s", "rhythm"}``, tens of kB) and the measurements
as ``Prediction.measurements`` (``ml.measurements``, under a kB). They are stored apart because
the pages and events show the measurements and must not read the leads to do so. The API, the
CSV and the batch page's drawing and table all read those records, so no request digitises
anything.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple, TypedDict, cast

import numpy as np
from PIL import Image

from ml import layout
from ml.leads import page_signal

LEAD_NAMES = layout.LEAD_NAMES
# The printout's rows: (I, aVR, V1, V4), (II, aVL, V2, V5), (III, aVF, V3, V6).
LEAD_ROWS: tuple[tuple[str, ...], ...] = tuple(zip(*layout.COLUMN_LEADS, strict=True))
RHYTHM_LEAD = layout.RHYTHM_LEAD


class PageSignal(TypedDict):
    fs: float
    leads: dict[str, list[float]]
    start_s: dict[str, float]
    rhythm: dict[str, list[float]]


class PageMeasurements(TypedDict):
    """``ml.measurements.Measurements.as_dict()``: ms, bpm and mV, None where not measurable."""

    heart_rate_bpm: float | None
    rr_ms: float | None
    pr_ms: float | None
    qrs_ms: float | None
    qt_ms: float | None
    qtc_ms: float | None
    qtc_formula: Literal["Bazett"]
    st_mv: dict[str, float | None]
    st_point: Literal["J+60ms"]
    q_waves: dict[str, bool | None]
    beats: int


class PageReading(NamedTuple):
    """What the worker stores with a prediction: the leads and what was measured on them."""

    signal: PageSignal
    measurements: PageMeasurements


def page_reading(image: Image.Image, signals: np.ndarray | None = None) -> PageReading:
    """The leads of a decoded page (``ml.preprocess.decode_image``) and their measurements,
    ready to store as JSON (split from the one dict ``ml.leads.page_signal`` builds, which takes
    the page's digitised ``signals`` when the caller has them)."""
    built = page_signal(image, signals)
    measurements = built.pop("measurements")
    return PageReading(signal=cast(PageSignal, built), measurements=cast(PageMeasurements, measurements))


def signal_check(signal: Any) -> None:
    """Raise ValueError unless ``signal`` has the stored shape: every lead, finite numbers."""
    if not isinstance(signal, dict) or set(signal) != set(PageSignal.__annotations__):
        raise ValueError(f"a signal must have exactly the keys {sorted(PageSignal.__annotations__)}")
    fs = signal["fs"]
    if not isinstance(fs, int | float) or not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"a signal's fs must be a positive number; got {fs!r}")
    if set(signal["leads"]) != set(LEAD_NAMES) or set(signal["start_s"]) != set(LEAD_NAMES):
        raise ValueError(f"a signal's leads and start_s must name exactly the leads {LEAD_NAMES}")
    if set(signal["rhythm"]) != {RHYTHM_LEAD}:
        raise ValueError(f"a signal's rhythm must hold exactly the lead {RHYTHM_LEAD}")
    for trace in (*signal["leads"].values(), *signal["rhythm"].values()):
        # One array per trace, not a check per value: a page has about 4,000 of them.
        values = np.asarray(trace) if isinstance(trace, list) else np.empty((0, 0))
        if values.ndim != 1 or values.dtype.kind not in "biuf" or not np.isfinite(values).all():
            raise ValueError("a signal's traces must be lists of finite numbers")


_INTERVALS = ("heart_rate_bpm", "rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")


def _number_or_none(value: Any) -> bool:
    # bool is an int: a flag where a number belongs is a bug, not a measurement.
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def measurements_check(measurements: Any) -> None:
    """Raise ValueError unless ``measurements`` is None (none were stored) or has the stored
    shape (``PageMeasurements``): finite numbers or None, per lead for ST and Q waves."""
    if measurements is None:
        return
    if not isinstance(measurements, dict) or set(measurements) != set(PageMeasurements.__annotations__):
        raise ValueError(
            f"measurements must be a dict with exactly the keys {sorted(PageMeasurements.__annotations__)}"
        )
    if not all(_number_or_none(measurements[key]) for key in _INTERVALS):
        raise ValueError(f"measurements' {', '.join(_INTERVALS)} must be finite numbers or None")
    st_mv, q_waves = measurements["st_mv"], measurements["q_waves"]
    if not isinstance(st_mv, dict) or set(st_mv) != set(LEAD_NAMES):
        raise ValueError(f"measurements' st_mv must name exactly the leads {LEAD_NAMES}")
    if not all(_number_or_none(value) for value in st_mv.values()):
        raise ValueError("measurements' st_mv values must be finite numbers or None")
    if not isinstance(q_waves, dict) or set(q_waves) != set(LEAD_NAMES):
        raise ValueError(f"measurements' q_waves must name exactly the leads {LEAD_NAMES}")
    if not all(value is None or isinstance(value, bool) for value in q_waves.values()):
        raise ValueError("measurements' q_waves values must be true, false or None")
    beats = measurements["beats"]
    if not isinstance(beats, int) or isinstance(beats, bool) or beats < 0:
        raise ValueError(f"measurements' beats must be a count; got {beats!r}")


def start_sample(signal: PageSignal, lead: str) -> int:
    """The index on the page's time axis (rhythm strip samples) where ``lead`` begins."""
    return round(signal["start_s"][lead] * signal["fs"])
