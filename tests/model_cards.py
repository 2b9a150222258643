"""Tiny model cards and cross-validation reports for tests, shaped like the real ones.

The metrics come from ml.metrics.evaluation_report on small seeded random arrays, so every
field a real report has is there, with made-up numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.labels import CLASSES
from ml.metrics import evaluation_report

CREDIT = (
    "Khan & Hussain 2021, ECG Images dataset of Cardiac Patients, Mendeley Data V2, "
    "doi:10.17632/gwbz3fsgp8.2, CC BY 4.0"
)


def report(seed: int = 0, n: int = 40, sharpness: float = 3.0) -> dict[str, Any]:
    """An evaluation report of a mediocre classifier on `n` random labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), labels] += rng.uniform(0, sharpness, size=n)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return evaluation_report(labels, probabilities, CLASSES, n_resamples=50, seed=seed)


def crossval_card(name: str = "hybrid-v2", architecture: str = "hybrid", seed: int = 0) -> dict[str, Any]:
    """A card of a cross-validated, temperature-scaled model (the lead's new card schema)."""
    return {
        "name": name,
        "architecture": architecture,
        "parameters": 123456,
        "file_sha256": f"{seed:064x}",
        "file_bytes": 2_500_000,
        "classes": list(CLASSES),
        "training_data": {
            "path_name": "khan-ecg",
            "images_per_class": {"normal": 10, "mi": 10, "history_mi": 10, "abnormal": 10},
            "sha256": "d" * 64,
        },
        "command": f"python -m ml.train --arch {architecture} --name {name}",
        "seed": 42,
        "crossval": {
            "report": f"ml/reports/crossval-{architecture}.json",
            "n_folds": 5,
            "seed": 42,
            "pooled": report(seed),
            "pooled_calibrated": report(seed, sharpness=2.0),
            "fold_macro_f1": {"mean": 0.61, "std": 0.04},
            "ms_per_image": 12.3,
        },
        "calibration": {"method": "temperature scaling", "temperature": 1.7, "fitted_on": "out-of-fold"},
        "dev_evaluation": {"command": "python -m ml.evaluate --data dev", "result": report(seed + 100)},
        "created": "2026-11-29",
        "ms_per_image": 12.3,
        "training_seconds": 600.0,
        "credit": CREDIT,
    }


def validation_card(name: str = "hybrid-v1") -> dict[str, Any]:
    """A card like the shipped hybrid-v1: only flat metrics of a held-out validation split."""
    return {
        "name": name,
        "architecture": "hybrid",
        "parameters": 525444,
        "file_sha256": "e" * 64,
        "metrics": {
            "validation": {
                "n": 8,
                "accuracy": 0.75,
                "macro_f1": 0.5925,
                "per_class_recall": {"normal": 1.0, "mi": 0.25, "history_mi": 0.5, "abnormal": 1.0},
                "per_class_precision": {"normal": 0.5, "mi": 1.0, "history_mi": 1.0, "abnormal": 1.0},
                "per_class_f1": {"normal": 0.6667, "mi": 0.4, "history_mi": 0.6667, "abnormal": 1.0},
                "confusion_matrix": {
                    "rows_true_columns_predicted": list(CLASSES),
                    "counts": [[2, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 2]],
                },
            }
        },
        "created": "2026-11-25",
        "ms_per_image": 21.95,
        "training_seconds": 1101.5,
    }


def crossval_report(architecture: str = "cnn", seed: int = 1) -> dict[str, Any]:
    """A `python -m ml.crossval` report, without the per-image out-of-fold rows."""
    return {
        "architecture": architecture,
        "representation": "page",
        "parameters": 54321,
        "command": f"python -m ml.crossval --arch {architecture} --folds 5 --seed 42",
        "seed": 42,
        "n_folds": 5,
        "folds_file": "ml/reports/folds-k5-seed42.json",
        "data": {"path_name": "khan-ecg", "images_per_class": {"normal": 10, "mi": 10}, "sha256": "f" * 64},
        "training": {"epochs": 30, "batch_size": 16, "learning_rate": 0.001},
        "pooled": report(seed),
        "pooled_calibrated": report(seed, sharpness=2.0),
        "temperature": {"value": 1.4, "method": "temperature scaling", "cross_fitted_per_fold": [1.3, 1.5]},
        "fold_macro_f1": {"mean": 0.55, "std": 0.05},
        "ms_per_image": 8.5,
        "per_fold": [{"fold": 0, "training_seconds": 100.0}, {"fold": 1, "training_seconds": 120.0}],
        "out_of_fold": [],
        "created": "2026-11-28",
        "runtime": "tensorflow-cpu 2.21.0 tf.function",
        "device": "CPU",
        "seconds": 700.0,
        "credit": CREDIT,
    }


def under_called_mi_report() -> dict[str, Any]:
    """A hybrid report with two folds of 40 out-of-fold rows: every class certain and right,
    except the 10 MI pages, which the argmax calls normal (normal 0.7, MI 0.3)."""
    rows = []
    for index in range(40):
        label = CLASSES[index % 4]
        probabilities = [0.0, 0.0, 0.0, 0.0]
        probabilities[index % 4] = 1.0
        if label == "mi":
            probabilities = [0.7, 0.3, 0.0, 0.0]
        rows.append(
            {
                "sha256": f"{index:064x}",
                "label": label,
                "fold": index // 4 % 2,
                "probabilities": probabilities,
            }
        )
    return crossval_report("hybrid", 0) | {"out_of_fold": rows}
