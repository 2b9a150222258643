"""Evaluate a shipped model on any folder laid out as ``<class>/<image>``.

Usage::

    python -m ml.evaluate --data DIR [--model NAME_OR_PATH] [--json]
                          [--bootstrap-resamples R] [--seed S]

``DIR`` holds sub-folders named by class keys (``ml.labels.CLASSES``; any subset) with
JPEG/PNG pages. ``--model`` is a shipped model's name (``ml/models/<name>.keras``) or a
path to a ``.keras`` file; default: the default model. Each image is classified alone
(batch size 1, as a worker serves one upload), so ``ms_per_image`` is the median of
preprocessing plus forward pass per image, comparable with the model card's figure.

With ``--json`` prints one JSON object: ``accuracy``, ``macro_f1`` (``value``, ``low``,
``high`` of a 95% stratified bootstrap), ``per_class``, ``confusion_matrix``, ``ece``,
``ms_per_image``, ``n``, plus ``model``, ``file_sha256``, ``data`` and ``skipped`` (images
that could not be decoded, with the reason). Exit code 2 when the folder is unusable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.inference import Classifier, ModelLoadError
from ml.labels import CLASSES
from ml.metrics import DEFAULT_BOOTSTRAP_RESAMPLES, evaluation_report
from ml.models import resolve_model
from ml.preprocess import IMAGE_SUFFIXES, InvalidImageError


def labelled_files(data_dir: Path) -> list[tuple[Path, int]]:
    """``(file, class index)`` of every image under ``data_dir/<class>/``, sorted.

    Raises ``ValueError`` for a sub-folder that is not a class key, or no images at all.
    """
    if not data_dir.is_dir():
        raise ValueError(f"{data_dir} is not a folder.")
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir())
    unknown = [p.name for p in folders if p.name not in CLASSES]
    if unknown:
        raise ValueError(f"{data_dir} has folders that are not classes: {', '.join(unknown)} ({CLASSES=}).")
    files = [
        (path, CLASSES.index(folder.name))
        for folder in folders
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise ValueError(f"{data_dir} holds no <class>/<image> files.")
    return files


def evaluate_folder(
    data_dir: Path,
    model: str | None = None,
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the model on every image of ``data_dir`` and return the evaluation JSON object.

    1. List ``<class>/<image>`` files; load the model with ``Classifier.load``.
    2. Classify each image alone; an image that cannot be decoded is listed in ``skipped``.
    3. Metrics (``ml.metrics.evaluation_report``) of the labels the model gave (its card's
       decision rule, as served) over the classified images, and the median
       ``inference_ms`` as ``ms_per_image``.
    """
    files = labelled_files(data_dir)
    classifier = Classifier.load(resolve_model(model))
    labels, decided, probabilities, timings, digests = [], [], [], [], []
    skipped = []
    for path, label in files:
        data = path.read_bytes()
        try:
            [prediction] = classifier.predict([data])
        except InvalidImageError as error:
            skipped.append({"file": str(path.relative_to(data_dir)), "reason": str(error)})
            continue
        labels.append(label)
        decided.append(CLASSES.index(prediction.label))
        probabilities.append([prediction.probabilities[c] for c in CLASSES])
        timings.append(prediction.inference_ms)
        digests.append(hashlib.sha256(data).hexdigest())
    if not labels:
        raise ValueError(f"No image of {data_dir} could be decoded.")
    report = evaluation_report(
        np.asarray(labels, dtype=np.int64),
        np.asarray(probabilities),
        CLASSES,
        n_resamples=n_resamples,
        seed=seed,
        predictions=np.asarray(decided, dtype=np.int64),
    )
    return {
        **report,
        "ms_per_image": round(float(np.median(timings)), 2),
        "model": classifier.name,
        "file_sha256": classifier.file_sha256,
        "data": {
            "path_name": data_dir.name,
            "sha256": hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest(),
            "sha256_definition": "sha256 of the sorted per-file sha256 hex digests, one per line",
        },
        "skipped": skipped,
        "device": classifier.device,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.evaluate``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <class>/<image> files")
    parser.add_argument("--model", default=None, help="shipped model name or .keras path")
    parser.add_argument("--json", action="store_true", help="print the JSON object only")
    parser.add_argument("--bootstrap-resamples", type=int, default=DEFAULT_BOOTSTRAP_RESAMPLES)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    if args.bootstrap_resamples < 1:
        parser.error("--bootstrap-resamples must be >= 1")
    try:
        result = evaluate_folder(args.data, args.model, n_resamples=args.bootstrap_resamples, seed=args.seed)
    except (ValueError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    interval = result["macro_f1"]
    print(
        f"{result['model']} on {args.data} (n={result['n']}): accuracy {result['accuracy']}, macro-F1 "
        f"{interval['value']} [{interval['low']}, {interval['high']}], ECE {result['ece']['value']}, "
        f"{result['ms_per_image']} ms/image"
    )
    for label, scores in result["per_class"].items():
        print(
            f"  {label:<11} precision {scores['precision']:.3f} "
            f"recall {scores['recall']:.3f} f1 {scores['f1']:.3f}"
        )
    if result["skipped"]:
        print(f"  skipped {len(result['skipped'])} undecodable images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
