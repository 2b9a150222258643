"""What a network reads from a page: each architecture's named input arrays.

Numpy and Pillow (OpenCV in the decode, ``ml.rectify``). A model card records its
representation (``input.representation``); training, cross-validation, evaluation and the workers
all turn image bytes into inputs through ``inputs_from_bytes``, so a model always sees what it was
trained on.

- ``page``: ``{"image": (224, 224, 3)}``, the whole trace area squeezed to a square
  (``ml.preprocess.preprocess``). The baselines (cnn, mobilenet, densenet) and hybrid-v1.
- ``leads``: ``{"trace_image": (128, 512, 1), "signals": (1024, 8)}``, the 10 s trace
  area with time along the width and its traces digitised to mV (``ml.traces``). The hybrid.
- ``leads_measured``: ``leads`` and ``{"measurements": (45,)}``, the page's heart rate,
  intervals, ST levels and Q waves (``ml.measurements.features``). The hybrid_measured
  experiment: do the measurements, given to the model, lift MI recall?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ml import measurements, traces
from ml.preprocess import INPUT_SIZE, decode_image, preprocess

Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Representation:
    """How a page becomes one sample's named input arrays."""

    name: str
    # JPEGs are decoded at the smallest scale that keeps the trace area this wide.
    min_trace_width: int
    build: Callable[[Image.Image], Inputs]
    shapes: dict[str, tuple[int, ...]]
    description: str


def _page_inputs(image: Image.Image) -> Inputs:
    return {"image": preprocess(image)}


def _measured_leads_inputs(image: Image.Image) -> Inputs:
    inputs = traces.leads_inputs(image)
    reading = measurements.measure(traces.twelve_leads(inputs["signals"]))
    return {**inputs, "measurements": measurements.features(reading)}


_LEADS_DESCRIPTION = (
    "JPEG/PNG, EXIF-transposed, RGB, red channel (grid vanishes); the 10 s trace area "
    "(x 82-1150, y 153-822 of a 1200x852 page, scaled to the page): (a) trace_image: 3x3 "
    "min filter, box-resize to 512x128, x / 127.5 - 1; (b) signals: in each of the four "
    "trace rows the ink run nearest the previous column's is followed from the baseline; "
    "its top and bottom in mV (43.5 px/mV at 852 px height), 1024 samples over 10 s"
)
_LEADS_SHAPES = {
    "trace_image": (*traces.TRACE_IMAGE_SHAPE, 1),
    "signals": (traces.SIGNAL_SAMPLES, traces.SIGNAL_CHANNELS),
}

REPRESENTATIONS: dict[str, Representation] = {
    "page": Representation(
        name="page",
        min_trace_width=2 * INPUT_SIZE,
        build=_page_inputs,
        shapes={"image": (INPUT_SIZE, INPUT_SIZE, 3)},
        description=(
            "JPEG/PNG, EXIF-transposed, RGB; crop the grid box (fractions 0.030, 0.177, 0.985, "
            "0.967 of width/height) to drop header and footer; red channel (grid vanishes); 3x3 "
            "min filter (thicken ink); box-resize to 224x224; x / 127.5 - 1; repeated on 3 channels"
        ),
    ),
    "leads": Representation(
        name="leads",
        # About one pixel column per signal sample: a 1200 px scan is decoded in full.
        min_trace_width=traces.SIGNAL_SAMPLES,
        build=traces.leads_inputs,
        shapes=_LEADS_SHAPES,
        description=_LEADS_DESCRIPTION,
    ),
    "leads_measured": Representation(
        name="leads_measured",
        min_trace_width=traces.SIGNAL_SAMPLES,
        build=_measured_leads_inputs,
        shapes={**_LEADS_SHAPES, "measurements": (len(measurements.FEATURE_NAMES),)},
        description=(
            f"{_LEADS_DESCRIPTION}; (c) measurements: ml.measurements.features of the digitised "
            "leads (heart rate, PR, QRS, QT, QTc over typical values, ST at J+60 ms per lead in "
            "mV clipped to +-1, pathological Q waves per lead, and a measured flag per value)"
        ),
    ),
}
# Which representation each architecture reads (hybrid-v1, a page model, says so in its card).
ARCHITECTURE_REPRESENTATION: dict[str, str] = {
    "cnn": "page",
    "densenet": "page",
    "mobilenet": "page",
    "hybrid": "leads",
    "hybrid_measured": "leads_measured",
}


def get(name: str) -> Representation:
    """The representation called ``name``; ``ValueError`` names the known ones otherwise."""
    try:
        return REPRESENTATIONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown input representation {name!r}; known: {', '.join(sorted(REPRESENTATIONS))}."
        ) from None


def inputs_from_bytes(data: bytes, representation: str = "page") -> Inputs:
    """Decode image ``data`` and build its inputs; raises ``InvalidImageError`` if unusable."""
    spec = get(representation)
    return spec.build(decode_image(data, min_trace_width=spec.min_trace_width))


def stack(samples: Sequence[Inputs]) -> Inputs:
    """One batch from per-sample inputs: each name's arrays stacked as float32."""
    if not samples:
        raise ValueError("Cannot stack an empty list of inputs.")
    return {name: np.stack([sample[name] for sample in samples]).astype(np.float32) for name in samples[0]}


def concatenate(*batches: Inputs) -> Inputs:
    """One batch of every sample of ``batches``, in order (the same input names in each)."""
    return {name: np.concatenate([batch[name] for batch in batches]) for name in batches[0]}


def take(inputs: Inputs, index: np.ndarray | slice) -> Inputs:
    """The samples ``index`` of a batch of inputs."""
    return {name: array[index] for name, array in inputs.items()}


def batch_size(inputs: Inputs) -> int:
    """Number of samples in a batch of inputs."""
    return len(next(iter(inputs.values())))


def zeros(representation: str, n: int) -> Inputs:
    """A batch of ``n`` all-zero inputs (warming up a model, timing it)."""
    return {name: np.zeros((n, *shape), np.float32) for name, shape in get(representation).shapes.items()}
