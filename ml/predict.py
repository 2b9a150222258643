"""Classify ECG page images from the command line and print JSON.

Usage::

    python -m ml.predict IMAGE... [--model NAME_OR_PATH] [--no-guard]

Prints a JSON list with one object per image, in argument order: ``{"image", "label",
"probabilities", "inference_ms", "photographed"}`` (``photographed``: the page was found in a
photo and straightened, and labelled by the model's photo rule, ``ml.decision``), or
``{"image", "rejected": true, "reason"}`` and no label for a file that cannot be read, is not a
usable image, or is refused by the upload guard (``ml.guard``), which checks each page first as
the service does; ``--no-guard`` skips that check. ``--model`` is a shipped model's name
(``ml/models``) or a ``.keras`` path; default: the default model. The exit code is 1 when any
image was rejected, 2 when the model cannot be loaded or fails its self-test (the reason on
stderr), else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml import representations
from ml.guard import check_decoded
from ml.inference import Classifier, ModelLoadError
from ml.models import read_card, resolve_model
from ml.preprocess import InvalidImageError, decode_page


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.predict``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml.predict", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="JPEG or PNG pages")
    parser.add_argument("--model", default=None, help="a shipped model's name or a .keras file")
    parser.add_argument("--no-guard", action="store_true", help="classify even what the guard refuses")
    args = parser.parse_args(argv)
    model_file = resolve_model(args.model)

    results: list[dict[str, Any]] = [{"image": str(path)} for path in args.images]
    # The card (plain JSON) says how the model reads a page, before TensorFlow loads.
    card = read_card(model_file)
    spec = representations.get(card.get("input", {}).get("representation", "page"))
    samples, preprocess_ms, photographed, good = [], [], [], []
    for index, path in enumerate(args.images):
        try:
            data = path.read_bytes()
        except OSError as error:
            results[index].update(rejected=True, reason=f"Cannot read the file: {error.strerror or error}.")
            continue
        start = time.perf_counter()
        try:
            # Decoded once, at the size the model reads: the guard reads that same page.
            decoded = decode_page(data, min_trace_width=spec.min_trace_width)
        except InvalidImageError as error:
            results[index].update(rejected=True, reason=str(error))
            continue
        decode_ms = (time.perf_counter() - start) * 1000
        image = decoded.image
        rejection = None if args.no_guard else check_decoded(decoded)
        if rejection is not None:
            results[index].update(rejected=True, reason=rejection.message)
            continue
        start = time.perf_counter()
        samples.append(spec.build(image))
        preprocess_ms.append(decode_ms + (time.perf_counter() - start) * 1000)
        photographed.append(decoded.page_corners is not None)
        good.append(index)

    if good:
        # TensorFlow loads here, so argument errors and bad files answer without it.
        try:
            classifier = Classifier.load(model_file)
        except ModelLoadError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        predictions = classifier.predict_inputs(representations.stack(samples), preprocess_ms, photographed)
        for index, prediction, photo in zip(good, predictions, photographed, strict=True):
            results[index].update(
                label=prediction.label,
                probabilities=prediction.probabilities,
                inference_ms=prediction.inference_ms,
                photographed=photo,
            )
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0 if len(good) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
