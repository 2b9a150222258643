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
from ml.traces import SAMPLING_HZ, digitise, twelve_leads

DECIMALS = 4  # 0.1 µV: far below what a printed trace resolves


def _millivolts(values: np.ndarray) -> list[float]:
    return [round(float(value), DECIMALS) for value in values]


def page_signal(image: Image.Image) -> dict[str, Any]:
    """The leads of a decoded page (``ml.preprocess.decode_image``) and their measurements.

    The measurements are read from the unrounded leads, the traces are rounded for storage.
    """
    # The red channel: the pink grid vanishes from it (ml.traces); skip a copy when already RGB.
    red = image.getchannel("R") if image.mode == "RGB" else image.convert("RGB").getchannel("R")
    leads = twelve_leads(digitise(red))
    return {
        "fs": SAMPLING_HZ,
        "leads": {name: _millivolts(values) for name, values in leads.leads.items()},
        "start_s": {name: float(start) for name, start in leads.start_s.items()},
        "rhythm": {name: _millivolts(values) for name, values in leads.rhythm.items()},
        "measurements": measure(leads).as_dict(),
    }
