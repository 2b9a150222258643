"""A page's twelve leads in millivolts and their measurements, as one JSON-ready dict.

The one builder of the "page signal": ``python -m ml.digitise`` prints it, and the worker
stores it with each prediction (``classifier.ecg_signal``), so both read a page alike. A
serving module: numpy and Pillow only, no TensorFlow.

``page_signal(image)`` gives::

    {"fs": HZ, "leads": {"I": [mV, ...], ..., "V6": [...]},
     "start_s": {"I": 0.0, "aVR": 2.5, "V1": 5.0, "V4": 7.5, ...}, "rhythm": {"II": [mV over 10 s]},
     "measurements": ml.measurements.Measurements.as_dict()}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ml.measurements import measure
from ml.preprocess import red_channel
from ml.traces import SAMPLING_HZ, SIGNAL_SAMPLES, digitise, twelve_leads

DECIMALS = 4  # 0.1 µV: far below what a printed trace resolves
# Decode pages for the digitiser at least this wide along the trace area (``decode_image``'s
# ``min_trace_width``): about one pixel column per sample, so a 1200 px scan is read in full,
# as the hybrid model reads it.
MIN_TRACE_WIDTH = SIGNAL_SAMPLES


def _millivolts(values: np.ndarray) -> list[float]:
    # numpy's rounding, ten times faster than round() per value; they agreed on 2 million samples.
    return np.round(np.asarray(values, dtype=np.float64), DECIMALS).tolist()


def page_signal(image: Image.Image, signals: np.ndarray | None = None) -> dict[str, Any]:
    """The leads of a decoded page (``ml.preprocess.decode_image`` with ``MIN_TRACE_WIDTH``) and
    their measurements.

    ``signals``: ``ml.traces.digitise``'s output for this very image when the caller has it
    already (the hybrid model's ``signals`` input), so the page is not digitised twice. The
    measurements are read from the unrounded leads, the traces are rounded for storage.
    """
    if signals is None:
        signals = digitise(red_channel(image))
    leads = twelve_leads(signals)
    return {
        "fs": SAMPLING_HZ,
        "leads": {name: _millivolts(values) for name, values in leads.leads.items()},
        "start_s": {name: float(start) for name, start in leads.start_s.items()},
        "rhythm": {name: _millivolts(values) for name, values in leads.rhythm.items()},
        "measurements": measure(leads).as_dict(),
    }
