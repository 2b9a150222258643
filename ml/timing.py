"""How long a model takes per image, on the machine that measures it.

Usage::

    python -m ml.timing --data DIR MODEL...

Re-measures each shipped model (a name from ``ml/models`` or a ``.keras`` path) on up to 20
images of ``DIR`` and rewrites the timing fields of its card: ``ms_per_image`` (preprocessing
plus one forward pass at batch size 1), ``ms_per_image_detail`` and ``machine`` (CPU model,
the flags that matter, cores, oneDNN on or off). A timing belongs to its machine: the same
model costs several times more on a 2-core AVX2 CPU than on one with AVX-512, so compare only
figures taken in the same run. ``ml.train`` and ``ml.crossval`` record the same fields.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml import representations
from ml.device import configure_tensorflow, machine_description
from ml.evaluate import labelled_files
from ml.models import card_path, read_card, resolve_model

TIMING_IMAGES = 20


def measure_ms_per_image(
    model: Any, samples: Sequence[bytes], representation: str = "page", repeats: int = 20
) -> dict[str, float]:
    """Median milliseconds per image: preprocessing of ``samples`` and the forward pass
    through a ``tf.function`` at batch sizes 1 and 32 (as ``ml.inference`` runs it)."""
    # TensorFlow is imported where it is used, so importing this module stays cheap.
    import tensorflow as tf

    preprocess_ms = []
    for data in samples:
        start = time.perf_counter()
        representations.inputs_from_bytes(data, representation)
        preprocess_ms.append((time.perf_counter() - start) * 1000)
    result = {"preprocess": round(float(np.median(preprocess_ms)), 2)}
    forward = tf.function(lambda x: model(x, training=False))
    for batch_size in (1, 32):
        # Zeros shaped like the model's own inputs (tests shrink page images).
        batch = model_input(
            {t.name.split(":")[0]: np.zeros((batch_size, *t.shape[1:]), np.float32) for t in model.inputs}
        )
        forward(batch)  # trace and warm up
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            forward(batch).numpy()
            timings.append((time.perf_counter() - start) * 1000 / batch_size)
        result[f"forward_batch_{batch_size}"] = round(float(np.median(timings)), 2)
    return result


def model_input(inputs: representations.Inputs) -> Any:
    """What a Keras model is called with: the array itself for a one-input model (whatever
    its input layer is named), else the dict keyed by input name."""
    return next(iter(inputs.values())) if len(inputs) == 1 else inputs


def card_timing(model: Any, samples: Sequence[bytes], representation: str) -> dict[str, Any]:
    """The timing fields of a model card, measured now on this machine."""
    import tensorflow as tf  # lazy TensorFlow, as in ``measure_ms_per_image``

    detail = measure_ms_per_image(model, samples, representation)
    return {
        "runtime": f"tensorflow-cpu {tf.__version__} tf.function",
        "device": configure_tensorflow(),
        # One image end to end (preprocessing + forward pass at batch size 1).
        "ms_per_image": round(detail["preprocess"] + detail["forward_batch_1"], 2),
        "ms_per_image_detail": {
            **detail,
            "note": "medians over repeated runs on the machine below, which other work may have shared",
        },
        "machine": machine_description(),
    }


def timing_samples(data_dir: Path, count: int = TIMING_IMAGES) -> list[bytes]:
    """The bytes of ``count`` images spread evenly over ``data_dir``'s sorted class folders."""
    files = [path for path, _ in labelled_files(data_dir)]
    return [path.read_bytes() for path in files[:: max(1, len(files) // count)][:count]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.timing``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml.timing", description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="shipped model names or .keras paths")
    parser.add_argument("--data", type=Path, required=True, help="folder of <class>/<image> pages")
    args = parser.parse_args(argv)
    configure_tensorflow()
    import keras  # lazy TensorFlow: argument errors answer without loading it

    try:
        samples = timing_samples(args.data)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in args.models:
        path = resolve_model(name)
        card = read_card(path)
        if not card:
            print(f"error: {path} has no model card beside it", file=sys.stderr)
            return 2
        representation = card.get("input", {}).get("representation", "page")
        timing = card_timing(keras.models.load_model(path, compile=False), samples, representation)
        card.update(timing)
        card_path(path).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        detail = timing["ms_per_image_detail"]
        print(f"{card.get('name', path.stem)}: {timing['ms_per_image']} ms/image {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
