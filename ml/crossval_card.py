"""From a cross-validation report to a model card: its calibration, and the card's sections.

``ml.crossval`` writes a report and completes it here (``add_calibration``); ``ml.train`` reads
one here into the card of a model of the same configuration (``card_section``). It sits below
both, so the dependency runs one way: ``ml.crossval`` imports ``ml.train``, never the reverse.
Plain numpy; no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ml.calibration import fit_temperature, logits_from_probabilities, softmax
from ml.decision import operating_point, photo_operating_point
from ml.labels import CLASSES
from ml.metrics import DEFAULT_BOOTSTRAP_RESAMPLES, evaluation_report


def add_calibration(document: dict[str, Any], *, n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES) -> None:
    """Add ``temperature`` and ``pooled_calibrated`` to a cross-validation report, from its
    ``out_of_fold`` probabilities (``ml.crossval``'s docstring, step 4)."""
    rows = document["out_of_fold"]
    labels = np.asarray([CLASSES.index(row["label"]) for row in rows], dtype=np.int64)
    folds = np.asarray([row["fold"] for row in rows], dtype=np.int64)
    logits = logits_from_probabilities(np.asarray([row["probabilities"] for row in rows]))
    calibrated = np.zeros_like(logits)
    per_fold = []
    for fold in np.unique(folds):
        held_out = folds == fold
        temperature = fit_temperature(logits[~held_out], labels[~held_out])
        calibrated[held_out] = softmax(logits[held_out], temperature)
        per_fold.append(round(temperature, 4))
    document["temperature"] = {
        "value": round(fit_temperature(logits, labels), 4),
        "method": "temperature scaling of log-probabilities, NLL minimised on all out-of-fold outputs",
        "cross_fitted_per_fold": per_fold,
        "cross_fitted_note": (
            "pooled_calibrated applies to each fold the temperature fitted on the other folds' "
            "out-of-fold outputs, so its ECE is measured on outputs the temperature never saw"
        ),
    }
    document["pooled_calibrated"] = evaluation_report(
        labels, calibrated, CLASSES, n_resamples=n_resamples, seed=document.get("seed", 0)
    )


# The digitised leads' per-channel baseline shift (mV) that training adds by default
# (``ml.train.build_augmentation``): a scan's baseline sits within it; a photo's, read through
# perspective and uneven light, can sit further off.
DEFAULT_LEAD_OFFSET_MV = 0.05


def report_configuration(document: dict[str, Any]) -> dict[str, Any]:
    """What a report's training configuration is, in ``TrainingConfig`` terms (reports written
    before ``--mi-weight``, ``--ensemble``, ``--photo-augment`` and ``--lead-offset-mv`` existed
    used 1, 1, 0 and DEFAULT_LEAD_OFFSET_MV)."""
    training = document.get("training", {})
    return {
        "epochs": training.get("epochs"),
        "batch_size": training.get("batch_size"),
        "learning_rate": training.get("learning_rate"),
        "mi_weight": training.get("mi_weight", 1.0),
        "ensemble": document.get("ensemble", {}).get("members", 1),
        "photo_augment": training.get("photo_augment", 0),
        "lead_offset_mv": training.get("lead_offset_mv", DEFAULT_LEAD_OFFSET_MV),
    }


def card_section(
    report_file: Path,
    *,
    arch: str,
    data_sha256: str,
    config: Any | None = None,
    mi_operating_point: bool = False,
) -> dict[str, Any]:
    """The ``crossval`` and ``calibration`` entries of a model card, from a report of ``arch``
    on the same data, and with ``mi_operating_point`` its ``decision`` (``ml.decision``);
    ``ValueError`` when the report is of another architecture or data, (given the
    ``TrainingConfig`` being trained) of another configuration, or lacks out-of-fold rows
    for a decision."""
    document = json.loads(Path(report_file).read_text(encoding="utf-8"))
    if document.get("architecture") != arch:
        raise ValueError(f"{report_file} cross-validates {document.get('architecture')!r}, not {arch!r}.")
    if document.get("data", {}).get("sha256") != data_sha256:
        raise ValueError(f"{report_file} was measured on other data (its sha256 differs from this folder's).")
    if config is not None:
        reported = report_configuration(document)
        differing = [
            f"{key} {value!r} (training: {getattr(config, key)!r})"
            for key, value in reported.items()
            if value != getattr(config, key)
        ]
        if differing:
            raise ValueError(f"{report_file} cross-validates another configuration: {', '.join(differing)}.")
    decision = operating_point(document) if mi_operating_point else None
    if mi_operating_point and decision is None:
        raise ValueError(f"{report_file} has no complete out-of-fold rows to choose an MI threshold on.")
    # A report with photos of the held-out pages (--photos) chooses photos' threshold too.
    decision_photos = photo_operating_point(document) if mi_operating_point else None
    if "temperature" not in document:
        add_calibration(document)
    return {
        "crossval": {
            "report": str(report_file),
            "command": document["command"],
            "n_folds": document["n_folds"],
            "seed": document["seed"],
            "training": document["training"],
            "pooled": document["pooled"],
            "pooled_calibrated": document["pooled_calibrated"],
            "fold_macro_f1": document["fold_macro_f1"],
            "ms_per_image": document["ms_per_image"],
            **{key: document[key] for key in ("ensemble", "members") if key in document},
        },
        "calibration": {
            "method": "temperature scaling",
            "temperature": document["temperature"]["value"],
            "fitted_on": f"the out-of-fold probabilities of {report_file}",
        },
        **({"decision": decision} if decision else {}),
        **({"decision_photos": decision_photos} if decision_photos else {}),
    }
