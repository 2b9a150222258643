"""A page's twelve leads in millivolts, as the service stores them with a prediction and serves them.

The worker digitises the page it classifies once (``page_signal``, from ``ml.traces``) and
stores the result on the prediction (``Prediction.signal``); the API, the CSV and the batch
page's drawing all read that record, so no request digitises anything. The shape is the one
``python -m ml.digitise`` prints (which the web process may not import: it is a command):
``{"fs", "leads", "start_s", "rhythm"}``.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

import numpy as np
from PIL import Image

from ml import layout
from ml.traces import SAMPLING_HZ, digitise, twelve_leads

# 0.1 µV: far below what a printed trace resolves (as ml.digitise rounds).
DECIMALS = 4
# The printout's order: I, II, III, aVR, aVL, aVF, V1 ... V6 (column by column).
LEAD_NAMES: tuple[str, ...] = tuple(name for column in layout.COLUMN_LEADS for name in column)
# The printout's rows: (I, aVR, V1, V4), (II, aVL, V2, V5), (III, aVF, V3, V6).
LEAD_ROWS: tuple[tuple[str, ...], ...] = tuple(zip(*layout.COLUMN_LEADS, strict=True))
RHYTHM_LEAD = layout.RHYTHM_LEAD


class PageSignal(TypedDict):
    fs: float
    leads: dict[str, list[float]]
    start_s: dict[str, float]
    rhythm: dict[str, list[float]]


def _millivolts(values: np.ndarray) -> list[float]:
    return [round(float(value), DECIMALS) for value in values]


def page_signal(image: Image.Image) -> PageSignal:
    """The leads of a decoded page (``ml.preprocess.decode_image``), ready to store as JSON."""
    red = image.getchannel("R") if image.mode == "RGB" else image.convert("RGB").getchannel("R")
    leads = twelve_leads(digitise(red))
    return {
        "fs": SAMPLING_HZ,
        "leads": {name: _millivolts(values) for name, values in leads.leads.items()},
        "start_s": {name: float(start) for name, start in leads.start_s.items()},
        "rhythm": {name: _millivolts(values) for name, values in leads.rhythm.items()},
    }


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
        if not isinstance(trace, list) or not all(
            isinstance(value, int | float) and math.isfinite(value) for value in trace
        ):
            raise ValueError("a signal's traces must be lists of finite numbers")


def start_sample(signal: PageSignal, lead: str) -> int:
    """The index on the page's time axis (rhythm strip samples) where ``lead`` begins."""
    return round(signal["start_s"][lead] * signal["fs"])
