"""Train a classifier on a folder of labelled ECG pages and write it with its model card.

Usage::

    python -m ml.train --data DIR --out DIR [--arch {cnn,densenet,hybrid,mobilenet}]
                       [--epochs N] [--seed S] [--name NAME] [--val-fraction F]
                       [--batch-size B] [--learning-rate LR] [--weights {none,imagenet}]
                       [--synthetic-per-class N] [--synthetic-epochs E]
                       [--mi-weight W] [--ensemble N] [--photo-augment N]
                       [--crossval-report PATH] [--mi-operating-point]

The fit loop is ``fit_model`` (shared with ``ml.crossval``). Each architecture reads its
representation (``ml.representations``). With ``--crossval-report`` (a report of the same
configuration on the same data) the card carries its cross-validation figures and
temperature, and after saving the model is run through ``ml.evaluate`` on ``DIR``: the card
records that output with its command, so anyone can check it is reproduced.
``--photo-augment N`` adds N phone photos (``ml.photos``) of each training page, read as an
upload is read, so the model learns what a straightened photo looks like.

``DIR`` holds one sub-folder per class key of ``ml.labels.CLASSES`` with JPEG/PNG pages.
Writes ``<out>/<name>.keras`` and ``<out>/<name>.json`` (the model card).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml import representations
from ml.crossval_card import DEFAULT_LEAD_OFFSET_MV, card_section
from ml.device import configure_tensorflow
from ml.evaluate import evaluate_folder
from ml.labels import CLASSES
from ml.metrics import classification_metrics
from ml.photos import PHOTO_KINDS, page_seed, photograph_bytes
from ml.preprocess import IMAGE_SUFFIXES, decode_image
from ml.representations import ARCHITECTURE_REPRESENTATION, Inputs
from ml.synthetic import render_ecg
from ml.timing import card_timing, model_input

# The names ``ml.network.ARCHITECTURES`` registers (a test keeps them equal); here so that
# parsing arguments does not import TensorFlow.
ARCHITECTURE_NAMES: tuple[str, ...] = ("cnn", "densenet", "hybrid", "hybrid_measured", "mobilenet")


def augmentation_description(representation: str, lead_offset_mv: float = DEFAULT_LEAD_OFFSET_MV) -> str:
    """What ``build_augmentation`` does to a representation's inputs, in words (cards, reports)."""
    if representation == "page":
        return "translate 3%, zoom 5%, brightness 0.1, contrast 0.2; no flips"
    offset = f"{lead_offset_mv:g}"
    leads = (
        f"signals: amplitude x U(0.9, 1.1), per-channel offset U(-{offset}, {offset}) mV, noise 0.02 mV; "
        "trace image: contrast x U(0.85, 1.15), brightness U(-0.1, 0.1); no flips, no time warps"
    )
    return leads + ("; measurements unchanged" if representation == "leads_measured" else "")


CREDIT = (
    "Khan & Hussain 2021, ECG Images dataset of Cardiac Patients, Mendeley Data V2, "
    "doi:10.17632/gwbz3fsgp8.2, CC BY 4.0"
)


@dataclass(frozen=True)
class Dataset:
    """Preprocessed images of a data folder, with what the model card needs about it."""

    inputs: Inputs  # named float32 arrays, n samples each (``ml.representations``)
    labels: np.ndarray  # int64 (n,), indexes into CLASSES
    files: tuple[Path, ...]
    file_sha256: tuple[str, ...]  # per file, in ``files`` order
    sha256: str  # over the sorted per-file sha256 digests, one per line
    counts: dict[str, int]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(data_dir: Path, representation: str = "page") -> Dataset:
    """Read every image under ``data_dir/<label>/``, in sorted order, as ``representation``."""
    missing = [label for label in CLASSES if not (data_dir / label).is_dir()]
    if missing:
        raise SystemExit(f"{data_dir} lacks class folders: {', '.join(missing)}")
    samples, labels, files, digests = [], [], [], []
    for index, label in enumerate(CLASSES):
        paths = sorted(p for p in (data_dir / label).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"{data_dir / label} holds no images")
        for path in paths:
            data = path.read_bytes()
            digests.append(hashlib.sha256(data).hexdigest())
            samples.append(representations.inputs_from_bytes(data, representation))
            labels.append(index)
            files.append(path)
    dataset_hash = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()
    label_array = np.asarray(labels, dtype=np.int64)
    return Dataset(
        inputs=representations.stack(samples),
        labels=label_array,
        files=tuple(files),
        file_sha256=tuple(digests),
        sha256=dataset_hash,
        counts={c: int((label_array == i).sum()) for i, c in enumerate(CLASSES)},
    )


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``val_fraction`` of each class, at least one, at random."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for index in range(len(CLASSES)):
        members = rng.permutation(np.flatnonzero(labels == index))
        n_val = max(1, round(len(members) * val_fraction)) if val_fraction > 0 else 0
        val.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


def synthetic_dataset(per_class: int, seed: int, representation: str = "page") -> tuple[Inputs, np.ndarray]:
    """Preprocessed synthetic pages (``ml.synthetic``), JPEG-encoded at quality 75 like the
    scans, ``per_class`` of each class; seeds are offset so they never repeat test pages."""
    samples, labels = [], []
    for index, label in enumerate(CLASSES):
        for number in range(per_class):
            buffer = io.BytesIO()
            render_ecg(label, 10_000_000 + seed * 100_000 + number).save(buffer, "JPEG", quality=75)
            samples.append(representations.inputs_from_bytes(buffer.getvalue(), representation))
            labels.append(index)
    return representations.stack(samples), np.asarray(labels, dtype=np.int64)


# Photo seed streams (``ml.photos.page_seed``): augmentation photo j of every page uses stream
# PHOTO_AUGMENT_SEED + j; ``ml.crossval`` evaluates on stream 1, which training never sees.
PHOTO_AUGMENT_SEED = 2


def photo_inputs(
    files: Sequence[Path], representation: str, kind: str, seed: int, *, log: Callable[..., None] = print
) -> Inputs:
    """The inputs of one ``kind`` photo of each page file (photo seed ``page_seed(seed, i)``),
    decoded as an upload is: found, straightened and evenly lit by ``ml.rectify``."""
    samples = []
    for index, path in enumerate(files):
        page = decode_image(path.read_bytes(), min_trace_width=None)  # photographed whole
        photo = photograph_bytes(page, page_seed(seed, index), kind)
        samples.append(representations.inputs_from_bytes(photo, representation))
        if (index + 1) % 50 == 0 or index + 1 == len(files):
            log(f"  {kind} photos (seed {seed}): {index + 1}/{len(files)}", flush=True)
    return representations.stack(samples)


def augmentation_photos(
    files: Sequence[Path], representation: str, count: int, *, log: Callable[..., None] = print
) -> list[Inputs]:
    """``count`` photos of every page, in ``files`` order: desk and screen in turn, each its own
    seed stream, so photo j of a page is the same whichever fold trains on it."""
    photos = []
    for j in range(count):
        kind = PHOTO_KINDS[j % len(PHOTO_KINDS)]
        photos.append(photo_inputs(files, representation, kind, PHOTO_AUGMENT_SEED + j, log=log))
    return photos


def with_photos(
    inputs: Inputs, labels: np.ndarray, photos: Sequence[Inputs], index: np.ndarray
) -> tuple[Inputs, np.ndarray]:
    """The pages at ``index`` and their photos (none of any other page), with their labels."""
    taken = [representations.take(x, index) for x in [inputs, *photos]]
    return representations.concatenate(*taken), np.tile(labels[index], len(taken))


def photo_augmentation_description(count: int) -> str | None:
    if not count:
        return None
    return (
        f"{count} photo(s) of each training page (ml.photos, desk and screen in turn), read "
        "through ml.preprocess.decode_page"
    )


def class_weights(labels: np.ndarray, mi_weight: float = 1.0) -> dict[int, float]:
    """Inverse-frequency weights (``n / (k * n_class)``), so each class weighs the same, with
    the MI class's weight multiplied by ``mi_weight``: a missed acute MI costs more than a
    false alarm, and MI is the rarest class."""
    counts = np.bincount(labels, minlength=len(CLASSES))
    weights = {i: float(len(labels) / (len(CLASSES) * max(c, 1))) for i, c in enumerate(counts)}
    weights[CLASSES.index("mi")] *= mi_weight
    return weights


def seed_everything(seed: int) -> None:
    """Seed python, numpy and TF, and ask TF for deterministic kernels."""
    # TensorFlow is imported in the functions that use it, so importing this module (and
    # parsing ``ml.train``'s or ``ml.crossval``'s arguments) stays cheap.
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class TrainingConfig:
    """How ``fit_model`` trains: architecture, schedule and optional synthetic pretraining."""

    arch: str
    epochs: int
    seed: int
    batch_size: int = 16
    learning_rate: float = 1e-3
    synthetic_per_class: int = 0
    synthetic_epochs: int = 4
    weights: str | None = None  # None or "imagenet" (backbone initialisation)
    mi_weight: float = 1.0  # multiplies the MI class's inverse-frequency loss weight
    ensemble: int = 1  # members trained with seeds seed, seed + 1, ...; probabilities averaged
    photo_augment: int = 0  # photos of each training page added to it (``augmentation_photos``)
    lead_offset_mv: float = DEFAULT_LEAD_OFFSET_MV  # the digitised leads' baseline-shift augmentation

    @property
    def member_seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + member for member in range(self.ensemble))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainingConfig:
        """The configuration named by the shared command-line options of train and crossval."""
        return cls(
            arch=args.arch,
            epochs=args.epochs,
            seed=args.seed,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            synthetic_per_class=args.synthetic_per_class,
            synthetic_epochs=args.synthetic_epochs,
            weights=args.weights,
            mi_weight=args.mi_weight,
            ensemble=args.ensemble,
            photo_augment=args.photo_augment,
            lead_offset_mv=args.lead_offset_mv,
        )


@dataclass(frozen=True)
class FittedModel:
    """A trained Keras model, the class weights it was trained with, and a batched predictor;
    for an ensemble, its members too (each a ``FittedModel``)."""

    model: Any
    class_weights: dict[int, float]
    predict_probabilities: Callable[[Inputs], np.ndarray]
    members: tuple[FittedModel, ...] = ()


def build_augmentation(
    seed: int, representation: str = "page", lead_offset_mv: float = DEFAULT_LEAD_OFFSET_MV
) -> Callable[[Inputs], Inputs]:
    """Augmentation that keeps the ECG's meaning (``augmentation_description``): page
    placement and scanner changes; no flips or time warps (time runs left to right)."""
    import keras  # lazy TensorFlow, as in ``seed_everything``
    import tensorflow as tf

    if representation in ("leads", "leads_measured"):
        generator = tf.random.Generator.from_seed(seed)

        def augment_leads(inputs: Inputs) -> Inputs:
            signals, image = inputs["signals"], inputs["trace_image"]
            n = tf.shape(signals)[0]
            signals = (
                signals * generator.uniform((n, 1, 1), 0.9, 1.1)
                + generator.uniform((n, 1, signals.shape[-1]), -lead_offset_mv, lead_offset_mv)
                + generator.normal(tf.shape(signals), stddev=0.02)
            )
            image = image * generator.uniform((n, 1, 1, 1), 0.85, 1.15) + generator.uniform(
                (n, 1, 1, 1), -0.1, 0.1
            )
            return {**inputs, "trace_image": image, "signals": signals}

        return augment_leads

    layers = keras.Sequential(
        [
            keras.layers.RandomTranslation(0.03, 0.03, fill_mode="constant", fill_value=1.0, seed=seed),
            keras.layers.RandomZoom((-0.05, 0.05), fill_mode="constant", fill_value=1.0, seed=seed + 1),
            keras.layers.RandomBrightness(0.1, value_range=(-1.0, 1.0), seed=seed + 2),
            keras.layers.RandomContrast(0.2, value_range=(-1.0, 1.0), seed=seed + 3),
        ],
        name="augment",
    )
    return lambda inputs: {name: layers(array, training=True) for name, array in inputs.items()}


def fit_model(
    config: TrainingConfig,
    x_train: Inputs,
    y_train: np.ndarray,
    *,
    x_val: Inputs | None = None,
    y_val: np.ndarray | None = None,
    synthetic: tuple[Inputs, np.ndarray] | None = None,
    started: float | None = None,
    log: Callable[[str], None] | None = None,
) -> FittedModel:
    """Build ``config.arch`` for the inputs ``x_train`` and train it; the fit loop of
    ``python -m ml.train`` and ``python -m ml.crossval``. The caller seeds (``seed_everything``).

    1. Class weights by inverse frequency of ``y_train``; augmented, shuffled batches.
    2. With ``config.synthetic_per_class`` (or ready ``synthetic`` inputs), pretrain for
       ``config.synthetic_epochs`` on synthetic pages at the constant learning rate.
    3. Train ``config.epochs`` on the real images with a fresh Adam and cosine decay to 0.
       A model with several heads (the hybrid) is trained with every head supervised.
    4. One progress line per epoch (to ``log``), with validation macro-F1 and MI recall
       when ``x_val``/``y_val`` are given. The weights of the last epoch are returned.
    """
    import keras  # lazy TensorFlow, as in ``seed_everything``; ``ml.network`` imports Keras
    import tensorflow as tf

    from ml.network import build_model, training_model

    started = time.perf_counter() if started is None else started
    emit = log or (lambda line: print(line, flush=True))
    representation = ARCHITECTURE_REPRESENTATION[config.arch]
    y_val = y_val if y_val is not None else np.zeros(0, np.int64)
    weights = class_weights(y_train, config.mi_weight)
    augment = build_augmentation(config.seed, representation, config.lead_offset_mv)

    size = {"input_size": int(x_train["image"].shape[1])} if "image" in x_train else {}
    model = build_model(config.arch, seed=config.seed, weights=config.weights, **size)
    trainable = training_model(model)
    heads = len(trainable.outputs)
    forward = tf.function(lambda x: model(x, training=False))

    def predict_probabilities(x: Inputs) -> np.ndarray:
        n = representations.batch_size(x)
        return np.concatenate(
            [np.zeros((0, len(CLASSES)), np.float32)]
            + [
                forward(model_input(representations.take(x, slice(i, i + 64)))).numpy()
                for i in range(0, n, 64)
            ]
        )

    def batches(x: Inputs, y: np.ndarray, sample_weight: np.ndarray | None) -> Any:
        """Shuffled, augmented batches; labels (and weights) repeated once per head."""
        columns = (x, y) if sample_weight is None else (x, y, sample_weight)

        def prepare(x: Inputs, *targets: Any) -> tuple[Any, ...]:
            x = model_input(augment(x))
            return (x, *(t if heads == 1 else (t,) * heads for t in targets))

        return (
            tf.data.Dataset.from_tensor_slices(columns)
            .shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size)
            .map(prepare)
            .prefetch(2)
        )

    class Progress(keras.callbacks.Callback):
        """One line per epoch, with validation macro-F1 and MI recall on the real split."""

        def __init__(self, phase: str, epochs: int) -> None:
            super().__init__()
            self.phase, self.epochs = phase, epochs

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            line = f"{self.phase} {epoch + 1}/{self.epochs} loss {logs.get('loss', 0):.4f}"
            if "accuracy" in logs:
                line += f" acc {logs['accuracy']:.3f}"
            if len(y_val) and x_val is not None:
                val = classification_metrics(y_val, predict_probabilities(x_val).argmax(axis=1), CLASSES)
                recall = val["per_class_recall"]
                assert isinstance(recall, dict)
                line += (
                    f" | val acc {val['accuracy']:.3f} macro-F1 {val['macro_f1']:.3f} "
                    f"MI recall {recall['mi']:.2f}"
                )
            emit(f"{line} ({time.perf_counter() - started:.0f}s)")

    def compile_for(learning_rate: Any, metrics_key: str) -> None:
        trainable.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=["sparse_categorical_crossentropy"] * heads
            if heads > 1
            else "sparse_categorical_crossentropy",
            # Accuracy of a single head only: with several heads the loss line says enough.
            **({metrics_key: ["accuracy"]} if heads == 1 else {}),
        )

    if synthetic is None and config.synthetic_per_class:
        synthetic = synthetic_dataset(config.synthetic_per_class, config.seed, representation)
    if synthetic is not None:
        # Pretraining on the project's synthetic pages teaches the network what traces,
        # ST shifts, Q waves and irregular rhythms look like before it sees 294 real pages.
        x_synthetic, y_synthetic = synthetic
        emit(f"pretraining on {len(y_synthetic)} synthetic pages")
        compile_for(config.learning_rate, "metrics")
        trainable.fit(
            batches(x_synthetic, y_synthetic, None),
            epochs=config.synthetic_epochs,
            verbose=0,
            callbacks=[Progress("synthetic epoch", config.synthetic_epochs)],
        )

    sample_weight = np.asarray([weights[int(label)] for label in y_train], dtype=np.float32)
    steps = config.epochs * int(np.ceil(len(y_train) / config.batch_size))
    compile_for(
        keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps), "weighted_metrics"
    )
    trainable.fit(
        batches(x_train, y_train, sample_weight),
        epochs=config.epochs,
        verbose=0,
        callbacks=[Progress("epoch", config.epochs)],
    )
    return FittedModel(model=model, class_weights=weights, predict_probabilities=predict_probabilities)


def fit_ensemble(
    config: TrainingConfig,
    x_train: Inputs,
    y_train: np.ndarray,
    *,
    log: Callable[[str], None] | None = None,
    **fit_options: Any,
) -> FittedModel:
    """``fit_model`` once per seed of ``config.member_seeds``, each member seeded afresh
    (``seed_everything``), so member 0 is the model a one-member run trains.

    With several members the model is one Keras model that feeds the same inputs to every
    member and averages their probabilities: averaging seeds damps the run-to-run noise of
    a few hundred training images, and the file stays a plain ``.keras`` model.
    """
    emit = log or (lambda line: print(line, flush=True))
    members = []
    for number, seed in enumerate(config.member_seeds):
        seed_everything(seed)
        member_log = emit if config.ensemble == 1 else (lambda line, n=number: emit(f"member {n + 1} {line}"))
        member_config = dataclasses.replace(config, seed=seed, ensemble=1)
        members.append(fit_model(member_config, x_train, y_train, log=member_log, **fit_options))
    if len(members) == 1:
        return members[0]
    model = average_models([member.model for member in members], arch=config.arch)

    def predict_probabilities(x: Inputs) -> np.ndarray:
        return np.mean([member.predict_probabilities(x) for member in members], axis=0)

    return FittedModel(
        model=model,
        class_weights=members[0].class_weights,
        predict_probabilities=predict_probabilities,
        members=tuple(members),
    )


def average_models(models: Sequence[Any], *, arch: str) -> Any:
    """One Keras model that feeds its inputs to every model of ``models`` and averages their
    probabilities (how an ensemble ships); renames the members, whose layers keep their names."""
    import keras  # lazy TensorFlow, as in ``seed_everything``

    inputs = {
        tensor.name.split(":")[0]: keras.Input(shape=tensor.shape[1:], name=tensor.name.split(":")[0])
        for tensor in models[0].inputs
    }
    outputs = []
    for number, member in enumerate(models):
        # Nested models need distinct names; the layers inside keep theirs.
        member.name = f"member{number + 1}_{member.name}"
        outputs.append(member(model_input(inputs)))
    return keras.Model(
        model_input(inputs),
        keras.layers.Average(name="probabilities")(outputs),
        name=f"ensemble{len(models)}_{arch}",
    )


def ensemble_description(config: TrainingConfig) -> dict[str, Any]:
    """How an ensemble was made, for model cards and cross-validation reports."""
    return {
        "members": config.ensemble,
        "seeds": list(config.member_seeds),
        "combination": "mean of the members' probabilities (one .keras model)",
    }


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``TrainingConfig`` that ``ml.train`` and ``ml.crossval`` share beyond
    the schedule: ``--mi-weight``, ``--ensemble`` and ``--photo-augment``."""
    parser.add_argument(
        "--mi-weight",
        type=float,
        default=1.0,
        help="multiply the MI class's inverse-frequency loss weight by this (default 1)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=1,
        help="train this many members with seeds S, S+1, ... and average their probabilities",
    )
    parser.add_argument(
        "--photo-augment",
        type=int,
        default=0,
        metavar="N",
        help="add N phone photos (ml.photos) of each training page to its training set (default 0)",
    )
    parser.add_argument(
        "--lead-offset-mv",
        type=float,
        default=DEFAULT_LEAD_OFFSET_MV,
        metavar="MV",
        help=f"shift each digitised lead by up to MV in training (default {DEFAULT_LEAD_OFFSET_MV})",
    )


def check_fit_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 < args.mi_weight <= 10:
        parser.error("--mi-weight must be in (0, 10]")
    if not 1 <= args.ensemble <= 10:
        parser.error("--ensemble must be in [1, 10]")
    if not 0 <= args.photo_augment <= 4:
        parser.error("--photo-augment must be in [0, 4]")
    if not 0 <= args.lead_offset_mv <= 1:
        parser.error("--lead-offset-mv must be in [0, 1]")


def reproducible_evaluation(result: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``ml.evaluate``'s output that do not depend on the machine's speed, the
    ECE without its per-bin detail: what a card records and anyone can check again."""
    counts = {key: result[key] for key in ("n", "accuracy", "macro_f1", "per_class", "confusion_matrix")}
    return counts | {"ece": {"value": result["ece"]["value"], "n_bins": result["ece"]["n_bins"]}}


def dev_evaluation(data_dir: Path, model_file: Path) -> dict[str, Any]:
    """What ``python -m ml.evaluate`` says about the saved model on the training folder, with
    the command that reproduces it (through the shipped inference path, calibration included)."""
    return {
        "command": f"python -m ml.evaluate --data {data_dir} --model {model_file.stem} --json",
        "note": (
            "the training images themselves: reproduces this card, but says nothing about new "
            "images (the cross-validation does)"
        ),
        "result": reproducible_evaluation(evaluate_folder(data_dir, str(model_file))),
    }


def add_weights_argument(parser: argparse.ArgumentParser) -> None:
    """``--weights {none,imagenet}``, parsed to None or "imagenet"."""
    parser.add_argument(
        "--weights",
        choices=("none", "imagenet"),
        default="none",
        help="backbone initialisation: none (from scratch) or imagenet (needs the weights "
        "cached in ~/.keras/models or a network)",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <label>/ folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for .keras and .json")
    parser.add_argument(
        "--arch", default="hybrid", choices=ARCHITECTURE_NAMES, help="architecture (ml.network)"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--name", default=None, help="model name (default: <arch>-<date>)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--synthetic-per-class",
        type=int,
        default=0,
        help="pretrain on this many synthetic pages per class first (0: none)",
    )
    parser.add_argument("--synthetic-epochs", type=int, default=4, help="epochs of pretraining")
    parser.add_argument(
        "--crossval-report",
        type=Path,
        default=None,
        help="an ml.crossval report of this configuration on the same data: its metrics and "
        "out-of-fold temperature go into the card (the shipped probabilities are calibrated)",
    )
    parser.add_argument(
        "--mi-operating-point",
        action="store_true",
        help="label MI when its calibrated probability reaches the threshold chosen on the "
        "--crossval-report's out-of-fold outputs, else the argmax (ml.decision); the card "
        "records the rule and its nested cross-validation figures",
    )
    add_weights_argument(parser)
    add_fit_arguments(parser)
    args = parser.parse_args(argv)
    check_fit_arguments(parser, args)
    if args.mi_operating_point and not args.crossval_report:
        parser.error("--mi-operating-point needs --crossval-report (the threshold is chosen on its outputs)")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if not 0 <= args.val_fraction < 0.5:
        parser.error("--val-fraction must be in [0, 0.5)")
    if args.synthetic_per_class < 0 or args.synthetic_epochs < 1:
        parser.error("--synthetic-per-class must be >= 0 and --synthetic-epochs >= 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    args.weights = None if args.weights == "none" else args.weights
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.train``; returns the exit code."""
    args = parse_args(argv)
    started = time.perf_counter()
    name = args.name or f"{args.arch}-{dt.date.today():%Y%m%d}"
    device = configure_tensorflow()
    seed_everything(args.seed)
    import keras  # lazy TensorFlow: argument errors answer without loading it

    representation = ARCHITECTURE_REPRESENTATION[args.arch]
    print(f"device: {device}; reading {args.data} as {representation!r} inputs", flush=True)
    dataset = load_dataset(args.data, representation)
    crossval = None
    if args.crossval_report:
        try:
            crossval = card_section(
                args.crossval_report,
                arch=args.arch,
                data_sha256=dataset.sha256,
                config=TrainingConfig.from_args(args),
                mi_operating_point=args.mi_operating_point,
            )
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    train_index, val_index = stratified_split(dataset.labels, args.val_fraction, args.seed)
    x_train, y_train = representations.take(dataset.inputs, train_index), dataset.labels[train_index]
    x_val, y_val = representations.take(dataset.inputs, val_index), dataset.labels[val_index]
    # Photos of the training pages only: a validation page is never seen, photographed or not.
    photos = augmentation_photos(dataset.files, representation, args.photo_augment)
    x_fit, y_fit = with_photos(dataset.inputs, dataset.labels, photos, train_index)
    weights = class_weights(y_fit, args.mi_weight)  # as fit_model weighs; printed and carded here
    print(
        f"{len(dataset.labels)} images {dataset.counts}; train {len(y_train)}"
        + (f" (+{len(y_fit) - len(y_train)} photos)" if photos else "")
        + f", validation {len(y_val)}; class weights "
        + ", ".join(f"{CLASSES[i]} {w:.2f}" for i, w in weights.items()),
        flush=True,
    )

    config = TrainingConfig.from_args(args)
    fitted = fit_ensemble(config, x_fit, y_fit, x_val=x_val, y_val=y_val, started=started)
    model = fitted.model

    def predict_labels(x: Inputs) -> np.ndarray:
        return fitted.predict_probabilities(x).argmax(axis=1)

    metrics: dict[str, Any] = {
        "split": (
            f"held-out stratified validation split: {args.val_fraction:.0%} of each class "
            f"(seed {args.seed}), never trained on; weights of the last epoch, no early "
            "stopping or model selection on it"
            if args.val_fraction
            else "none: trained on every image, weights of the last epoch; the held-out "
            "figures are the cross-validation's"
        ),
    }
    if len(y_val):
        metrics["validation"] = classification_metrics(y_val, predict_labels(x_val), CLASSES)
    metrics["train_no_augmentation"] = {
        k: v
        for k, v in classification_metrics(y_train, predict_labels(x_train), CLASSES).items()
        if k in ("n", "accuracy", "macro_f1")
    }

    args.out.mkdir(parents=True, exist_ok=True)
    model_file = args.out / f"{name}.keras"
    # Saved uncompiled (a view of the same layers when it was compiled for training): the
    # file holds the weights, not the optimizer's state.
    compiled = getattr(model, "optimizer", None) is not None
    (keras.Model(model.inputs, model.outputs, name=model.name) if compiled else model).save(model_file)
    timing = card_timing(
        keras.models.load_model(model_file, compile=False),
        [path.read_bytes() for path in dataset.files[:: max(1, len(dataset.files) // 20)]],
        representation,
    )
    spec = representations.get(representation)
    card = {
        "name": name,
        "architecture": args.arch,
        "parameters": int(model.count_params()),
        "file_sha256": sha256_file(model_file),
        "file_bytes": model_file.stat().st_size,
        "input": {
            "representation": representation,
            "shapes": {name: list(shape) for name, shape in spec.shapes.items()},
            "preprocessing": spec.description,
        },
        "classes": list(CLASSES),
        "training_data": {
            "path_name": args.data.name,
            "images_per_class": dataset.counts,
            "sha256": dataset.sha256,
            "sha256_definition": "sha256 of the sorted per-file sha256 hex digests, one per line",
            "synthetic_pretraining": (
                {
                    "generator": "ml.synthetic.render_ecg, JPEG quality 75",
                    "pages_per_class": args.synthetic_per_class,
                    "epochs": args.synthetic_epochs,
                }
                if args.synthetic_per_class
                else None
            ),
            "photo_augmentation": photo_augmentation_description(args.photo_augment),
        },
        "command": shlex.join(sys.orig_argv),
        "seed": args.seed,
        "hyperparameters": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "schedule": "cosine decay to 0",
            "optimizer": "Adam",
            "class_weights": {CLASSES[i]: round(w, 4) for i, w in weights.items()},
            **({"mi_weight": args.mi_weight} if args.mi_weight != 1 else {}),
            **({"photo_augment": args.photo_augment} if args.photo_augment else {}),
            **(
                {"lead_offset_mv": args.lead_offset_mv}
                if args.lead_offset_mv != DEFAULT_LEAD_OFFSET_MV
                else {}
            ),
            "augmentation": augmentation_description(representation, args.lead_offset_mv),
            **({"pretrained_weights": args.weights} if args.weights else {}),
        },
        **({"ensemble": ensemble_description(config)} if config.ensemble > 1 else {}),
        "metrics": metrics,
        **(crossval or {}),
        "created": dt.date.today().isoformat(),
        **timing,
        "training_seconds": round(time.perf_counter() - started, 1),
        "credit": CREDIT,
    }
    card_file = args.out / f"{name}.json"
    card_file.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    card["dev_evaluation"] = dev_evaluation(args.data, model_file)
    card_file.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    validation = metrics.get("validation", {})
    print(
        f"wrote {model_file} ({model_file.stat().st_size / 1e6:.1f} MB) and {card_file}; "
        f"validation accuracy {validation.get('accuracy')} macro-F1 "
        f"{validation.get('macro_f1')} in {card['training_seconds']}s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
