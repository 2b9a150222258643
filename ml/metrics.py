"""Classification metrics in plain numpy (no scikit-learn dependency)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Return counts[true, predicted] as an int64 (num_classes, num_classes) array."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1 and per-class recall/precision/F1 of integer label arrays.

    A class with no true and no predicted samples gets F1 0 (it counts against macro-F1,
    so a split that misses a class is not flattered).
    """
    counts = confusion_matrix(y_true, y_pred, len(classes))
    true_per_class = counts.sum(axis=1)
    predicted_per_class = counts.sum(axis=0)
    hits = np.diag(counts)
    recall = np.divide(hits, true_per_class, out=np.zeros(len(classes)), where=true_per_class > 0)
    precision = np.divide(
        hits, predicted_per_class, out=np.zeros(len(classes)), where=predicted_per_class > 0
    )
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(len(classes)), where=denominator > 0)
    total = counts.sum()
    return {
        "n": int(total),
        "accuracy": round(float(hits.sum() / total), 4) if total else 0.0,
        "macro_f1": round(float(f1.mean()), 4),
        "per_class_recall": {c: round(float(r), 4) for c, r in zip(classes, recall, strict=True)},
        "per_class_precision": {c: round(float(p), 4) for c, p in zip(classes, precision, strict=True)},
        "per_class_f1": {c: round(float(v), 4) for c, v in zip(classes, f1, strict=True)},
        "confusion_matrix": {
            "rows_true_columns_predicted": list(classes),
            "counts": counts.tolist(),
        },
    }
