"""Stratified k-fold cross-validation with the same folds for every architecture.

Usage::

    python -m ml.crossval --arch {cnn,densenet,hybrid,mobilenet} --data DIR --folds 5 --seed S
                          --out DIR [--epochs N] [--folds-file PATH] [--input-size S]
                          [--batch-size B] [--learning-rate LR] [--weights {none,imagenet}]
                          [--synthetic-per-class N] [--synthetic-epochs E]
                          [--mi-weight W] [--ensemble N] [--bootstrap-resamples R]
                          [--photos] [--photo-augment N] [--name NAME]

1. Read and preprocess ``DIR/<label>/*`` (``ml.train.load_dataset``).
2. Assign folds (``assign_folds``) or reuse them: the assignment is stored as JSON keyed by
   each file's sha256 (default ``<out>/folds-k<K>-seed<S>.json``), so every architecture
   and every later run sees the same folds, whatever the file names or order.
3. For each fold: train on the other folds with ``ml.train.fit_ensemble`` (each member
   seeded afresh; one member unless ``--ensemble``), predict the held-out fold, time it.
4. Temperature scaling (``ml.crossval_card.add_calibration``): one temperature fitted on all out-of-fold
   probabilities (what a shipped model trained on all the data uses), and, to measure the
   calibrated ECE honestly, each fold calibrated by a temperature fitted on the other folds.
5. Write ``<out>/crossval-<name>.json`` (``--name``, default the architecture): per-fold
   and pooled out-of-fold metrics (``ml.metrics.evaluation_report``: accuracy, per-class
   precision/recall/F1, macro-F1 with a bootstrap interval, confusion matrix, ECE), the
   same after calibration, the temperature, ms per image, every image's out-of-fold
   probabilities and, for an ensemble, each member's pooled figures.

Photos of printouts (issue 15), by page, so no page is in training and evaluation at once:
``--photos`` also classifies a desk photo and a screen photo (``ml.photos``) of each held-out
page, read as every face reads an upload (``ml.preprocess.decode_page`` straightens them), and
stores their out-of-fold probabilities beside the scan's (``photo_probabilities``) with pooled
figures per kind; ``--photo-augment N`` adds N photos of each training page, alternately desk and
screen and never the evaluation photos, to its training folds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml import representations
from ml.crossval_card import add_calibration
from ml.device import configure_tensorflow, machine_description
from ml.labels import CLASSES
from ml.metrics import DEFAULT_BOOTSTRAP_RESAMPLES, evaluation_report, macro_f1
from ml.photos import PHOTO_KINDS
from ml.preprocess import INPUT_SIZE
from ml.representations import ARCHITECTURE_REPRESENTATION
from ml.timing import measure_ms_per_image
from ml.train import (
    ARCHITECTURE_NAMES,
    CREDIT,
    TrainingConfig,
    add_fit_arguments,
    add_weights_argument,
    augmentation_description,
    augmentation_photos,
    check_fit_arguments,
    ensemble_description,
    fit_ensemble,
    load_dataset,
    photo_augmentation_description,
    photo_inputs,
    synthetic_dataset,
    with_photos,
)

FOLDS_FORMAT_VERSION = 1
FOLDS_METHOD = (
    "stratified: within each class, files sorted by sha256 are permuted with "
    "numpy.random.default_rng(seed) and dealt round-robin to the folds, continuing the "
    "deal from class to class so fold sizes differ by at most one"
)


class FoldsMismatchError(ValueError):
    """A stored fold assignment does not fit the data or the requested number of folds."""


def assign_folds(sha256s: Sequence[str], labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0 .. n_folds - 1) of each sample, stratified by ``labels``.

    Deterministic in (the set of ``sha256s`` with their labels, ``n_folds``, ``seed``):
    the input order does not matter. Every class needs at least ``n_folds`` samples.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(sha256s) != len(labels):
        raise ValueError(f"{len(sha256s)} sha256 digests for {len(labels)} labels.")
    if len(set(sha256s)) != len(sha256s):
        raise ValueError("Duplicate files (equal sha256): remove copies before cross-validating.")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"'n_folds' must be an integer >= 2. Received: n_folds={n_folds!r}")
    rng = np.random.default_rng(seed)
    folds = np.full(len(labels), -1, dtype=np.int64)
    dealt = 0
    for index in np.unique(labels):
        members = np.flatnonzero(labels == index)
        if len(members) < n_folds:
            raise ValueError(
                f"Class {int(index)} has {len(members)} samples, fewer than the {n_folds} folds."
            )
        members = members[np.argsort([sha256s[i] for i in members], kind="stable")]
        members = rng.permutation(members)
        folds[members] = (dealt + np.arange(len(members))) % n_folds
        dealt += len(members)
    return folds


def load_or_create_folds(
    path: Path, sha256s: Sequence[str], labels: np.ndarray, n_folds: int, seed: int
) -> np.ndarray:
    """The fold of each sample from ``path``, or assign folds and write ``path`` first.

    Raises ``FoldsMismatchError`` when the stored file has another number of folds, lacks
    some of the files, or gives one of them another label: then the data changed, and
    mixing folds would leak; delete the file (or pass another) to start over.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("version") != FOLDS_FORMAT_VERSION or stored.get("n_folds") != n_folds:
            raise FoldsMismatchError(
                f"{path} holds {stored.get('n_folds')} folds (format {stored.get('version')}); "
                f"asked for {n_folds}. Delete it or pass another --folds-file."
            )
        assignments = stored["assignments"]
        missing = [digest for digest in sha256s if digest not in assignments]
        if missing:
            raise FoldsMismatchError(
                f"{path} has no fold for {len(missing)} of {len(sha256s)} files (e.g. {missing[0]}): "
                "the data changed. Delete it or pass another --folds-file."
            )
        relabelled = [
            digest
            for digest, label in zip(sha256s, labels, strict=True)
            if assignments[digest]["label"] != CLASSES[int(label)]
        ]
        if relabelled:
            raise FoldsMismatchError(
                f"{path} labels {len(relabelled)} files differently (e.g. {relabelled[0]})."
            )
        return np.asarray([assignments[digest]["fold"] for digest in sha256s], dtype=np.int64)
    folds = assign_folds(sha256s, labels, n_folds, seed)
    document = {
        "version": FOLDS_FORMAT_VERSION,
        "n_folds": n_folds,
        "seed": seed,
        "method": FOLDS_METHOD,
        "fold_sizes": np.bincount(folds, minlength=n_folds).tolist(),
        "assignments": {
            digest: {"fold": int(fold), "label": CLASSES[int(label)]}
            for digest, fold, label in sorted(zip(sha256s, folds, labels, strict=True))
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return folds


# The photo seed stream of the evaluation photos (``ml.photos.page_seed``); augmentation uses
# streams from ``ml.train.PHOTO_AUGMENT_SEED`` on, so no evaluation photo is trained on.
PHOTO_EVAL_SEED = 1


def resize_arrays(arrays: np.ndarray, size: int) -> np.ndarray:
    """Area-resize preprocessed (n, S, S, 3) arrays to (n, size, size, 3); a no-op at S."""
    if arrays.shape[1] == size:
        return arrays
    import tensorflow as tf  # lazy: TensorFlow loads only when inputs are resized (tests)

    return tf.image.resize(arrays, (size, size), method="area").numpy().astype(np.float32)


def member_reports(
    labels: np.ndarray,
    member_probabilities: Sequence[np.ndarray],
    config: TrainingConfig,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Each ensemble member's pooled out-of-fold figures: what one seed alone would score,
    beside the ensemble's (the gain of averaging, and the seed-to-seed spread)."""
    members = []
    for seed, probabilities in zip(config.member_seeds, member_probabilities, strict=True):
        report = evaluation_report(
            labels, probabilities, CLASSES, n_resamples=args.bootstrap_resamples, seed=args.seed
        )
        members.append(
            {
                "seed": seed,
                "accuracy": report["accuracy"],
                "macro_f1": report["macro_f1"],
                "recall": {name: scores["recall"] for name, scores in report["per_class"].items()},
                "ece": report["ece"]["value"],
            }
        )
    return members


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.crossval", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", required=True, choices=ARCHITECTURE_NAMES)
    parser.add_argument("--data", type=Path, required=True, help="folder of <label>/ folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the folds and the report")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42, help="seeds the folds and the training")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds-file", type=Path, default=None, help="default <out>/folds-k<K>-seed<S>.json")
    parser.add_argument("--input-size", type=int, default=INPUT_SIZE, help="area-resize inputs (tests)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--synthetic-per-class", type=int, default=0)
    parser.add_argument("--synthetic-epochs", type=int, default=4)
    parser.add_argument("--bootstrap-resamples", type=int, default=DEFAULT_BOOTSTRAP_RESAMPLES)
    parser.add_argument(
        "--photos",
        action="store_true",
        help="also classify a desk and a screen photo of each held-out page (ml.photos)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="the report is crossval-<name>.json (default: the architecture); name another "
        "configuration of an architecture so its report sits beside the first",
    )
    add_weights_argument(parser)
    add_fit_arguments(parser)
    args = parser.parse_args(argv)
    check_fit_arguments(parser, args)
    args.name = args.name or args.arch
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", args.name):
        parser.error("--name may hold lower-case letters, digits, '.', '_' and '-'")
    if args.folds < 2:
        parser.error("--folds must be >= 2")
    if args.epochs < 1 or args.batch_size < 1 or args.bootstrap_resamples < 1:
        parser.error("--epochs, --batch-size and --bootstrap-resamples must be >= 1")
    if not 32 <= args.input_size <= INPUT_SIZE:
        parser.error(f"--input-size must be in [32, {INPUT_SIZE}]")
    if args.synthetic_per_class < 0 or args.synthetic_epochs < 1:
        parser.error("--synthetic-per-class must be >= 0 and --synthetic-epochs >= 1")
    args.weights = None if args.weights == "none" else args.weights
    args.folds_file = args.folds_file or args.out / f"folds-k{args.folds}-seed{args.seed}.json"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.crossval``; returns the exit code."""
    args = parse_args(argv)
    started = time.perf_counter()
    device = configure_tensorflow()
    # TensorFlow loads only once the arguments are good (importing this module stays cheap).
    import tensorflow as tf

    representation = ARCHITECTURE_REPRESENTATION[args.arch]
    print(f"device: {device}; reading {args.data} as {representation!r} inputs", flush=True)
    dataset = load_dataset(args.data, representation)
    try:
        folds = load_or_create_folds(
            args.folds_file, dataset.file_sha256, dataset.labels, args.folds, args.seed
        )
    except (FoldsMismatchError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def resized(inputs: representations.Inputs) -> representations.Inputs:
        # --input-size shrinks page images (fast tests); other inputs have fixed shapes.
        return {k: resize_arrays(v, args.input_size) if k == "image" else v for k, v in inputs.items()}

    inputs = resized(dataset.inputs)
    synthetic = None
    if args.synthetic_per_class:
        x_synthetic, y_synthetic = synthetic_dataset(args.synthetic_per_class, args.seed, representation)
        synthetic = (resized(x_synthetic), y_synthetic)
    photos = {
        kind: resized(photo_inputs(dataset.files, representation, kind, PHOTO_EVAL_SEED))
        for kind in (PHOTO_KINDS if args.photos else ())
    }
    augment = [resized(x) for x in augmentation_photos(dataset.files, representation, args.photo_augment)]
    config = TrainingConfig.from_args(args)
    probabilities = np.zeros((len(dataset.labels), len(CLASSES)), dtype=np.float64)
    photo_probabilities = {kind: np.zeros_like(probabilities) for kind in photos}
    # With --ensemble, each member's own out-of-fold probabilities: what one seed alone scores.
    member_probabilities = [np.zeros_like(probabilities) for _ in config.member_seeds if config.ensemble > 1]
    per_fold: list[dict[str, Any]] = []
    parameters = 0
    for fold in range(args.folds):
        fold_started = time.perf_counter()
        train_index, test_index = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        photos_too = f" (+{len(augment) * len(train_index)} photos)" if augment else ""
        print(
            f"fold {fold + 1}/{args.folds}: train {len(train_index)}{photos_too}, test {len(test_index)}",
            flush=True,
        )
        # Each fold reproducible on its own: fit_ensemble seeds every member.
        fitted = fit_ensemble(
            config,
            *with_photos(inputs, dataset.labels, augment, train_index),
            synthetic=synthetic,
            started=started,
            log=lambda line, fold=fold: print(f"  fold {fold + 1} {line}", flush=True),
        )
        parameters = int(fitted.model.count_params())
        held_out = representations.take(inputs, test_index)
        probabilities[test_index] = fitted.predict_probabilities(held_out)
        for kind, photo_set in photos.items():
            photo_probabilities[kind][test_index] = fitted.predict_probabilities(
                representations.take(photo_set, test_index)
            )
        for member, member_fit in zip(member_probabilities, fitted.members, strict=True):
            member[test_index] = member_fit.predict_probabilities(held_out)
        timing = measure_ms_per_image(
            fitted.model, [dataset.files[i].read_bytes() for i in test_index[:5]], representation, repeats=10
        )
        report = evaluation_report(
            dataset.labels[test_index],
            probabilities[test_index],
            CLASSES,
            n_resamples=args.bootstrap_resamples,
            seed=args.seed,
        )
        per_fold.append(
            {
                "fold": fold,
                "n_train": len(train_index),
                **report,
                "ms_per_image": round(timing["preprocess"] + timing["forward_batch_1"], 2),
                "ms_per_image_detail": timing,
                "training_seconds": round(time.perf_counter() - fold_started, 1),
            }
        )
        truth = dataset.labels[test_index]
        photo_f1 = "".join(
            f" {kind} photos {macro_f1(truth, kind_probabilities[test_index].argmax(1), len(CLASSES)):.4f}"
            for kind, kind_probabilities in photo_probabilities.items()
        )
        print(
            f"fold {fold + 1}: accuracy {report['accuracy']} macro-F1 {report['macro_f1']['value']}"
            f"{photo_f1} ECE {report['ece']['value']} ({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
        del fitted
        tf.keras.backend.clear_session()

    pooled = evaluation_report(
        dataset.labels, probabilities, CLASSES, n_resamples=args.bootstrap_resamples, seed=args.seed
    )
    fold_f1 = np.asarray([fold["macro_f1"]["value"] for fold in per_fold])
    document = {
        "architecture": args.arch,
        "parameters": parameters,
        "command": shlex.join(sys.orig_argv),
        "seed": args.seed,
        "n_folds": args.folds,
        "folds_file": str(args.folds_file),
        "input_size": args.input_size,
        "representation": representation,
        "data": {
            "path_name": args.data.name,
            "images_per_class": dataset.counts,
            "sha256": dataset.sha256,
        },
        "training": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "schedule": "cosine decay to 0",
            "optimizer": "Adam",
            "class_weights": "inverse frequency within each training fold"
            + (f", MI's multiplied by {args.mi_weight}" if args.mi_weight != 1 else ""),
            "mi_weight": args.mi_weight,
            "augmentation": augmentation_description(representation, args.lead_offset_mv),
            "lead_offset_mv": args.lead_offset_mv,
            "synthetic_per_class": args.synthetic_per_class,
            "synthetic_epochs": args.synthetic_epochs if args.synthetic_per_class else 0,
            "pretrained_weights": args.weights,
            "photo_augment": args.photo_augment,
            "photo_augmentation": photo_augmentation_description(args.photo_augment),
        },
        **({"ensemble": ensemble_description(config)} if config.ensemble > 1 else {}),
        "pooled": pooled,
        **(
            {"members": member_reports(dataset.labels, member_probabilities, config, args)}
            if member_probabilities
            else {}
        ),
        "fold_macro_f1": {"mean": round(float(fold_f1.mean()), 4), "std": round(float(fold_f1.std()), 4)},
        **(
            {
                "photos": {
                    "kinds": list(photos),
                    "generator": f"ml.photos, seeds ml.photos.page_seed({PHOTO_EVAL_SEED}, page index)",
                    "read_as": "as an upload is: ml.preprocess.decode_page, where ml.rectify straightens it",
                    "pooled": {
                        kind: evaluation_report(
                            dataset.labels,
                            kind_probabilities,
                            CLASSES,
                            n_resamples=args.bootstrap_resamples,
                            seed=args.seed,
                        )
                        for kind, kind_probabilities in photo_probabilities.items()
                    },
                }
            }
            if photos
            else {}
        ),
        "ms_per_image": round(float(np.median([fold["ms_per_image"] for fold in per_fold])), 2),
        "per_fold": per_fold,
        "out_of_fold": [
            {
                "file": path.name,
                "sha256": digest,
                "label": CLASSES[int(label)],
                "fold": int(fold),
                "probabilities": [round(float(p), 6) for p in row],
                **(
                    {
                        "photo_probabilities": {
                            kind: [round(float(p), 6) for p in kind_probabilities[index]]
                            for kind, kind_probabilities in photo_probabilities.items()
                        }
                    }
                    if photos
                    else {}
                ),
            }
            for index, (path, digest, label, fold, row) in enumerate(
                zip(dataset.files, dataset.file_sha256, dataset.labels, folds, probabilities, strict=True)
            )
        ],
        "created": dt.date.today().isoformat(),
        "runtime": f"tensorflow-cpu {tf.__version__} tf.function",
        "device": device,
        "machine": machine_description(),
        "seconds": round(time.perf_counter() - started, 1),
        "credit": CREDIT,
    }
    add_calibration(document, n_resamples=args.bootstrap_resamples)
    args.out.mkdir(parents=True, exist_ok=True)
    report_file = args.out / f"crossval-{args.name}.json"
    report_file.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    interval = pooled["macro_f1"]
    print(
        f"wrote {report_file}: pooled accuracy {pooled['accuracy']} macro-F1 {interval['value']} "
        f"[{interval['low']}, {interval['high']}] ECE {pooled['ece']['value']} (calibrated "
        f"{document['pooled_calibrated']['ece']['value']}, T {document['temperature']['value']}); "
        "fold macro-F1 "
        f"{document['fold_macro_f1']['mean']} +/- {document['fold_macro_f1']['std']}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
