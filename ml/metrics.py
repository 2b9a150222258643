"""Classification and calibration metrics in plain numpy (no scikit-learn dependency).

Conventions, shared by every function here:

- Labels are integer class indexes ``0 .. num_classes - 1`` (``ml.labels.CLASSES`` order).
- A class never predicted has precision 0; a class absent from ``y_true`` has recall 0;
  F1 is 0 whenever precision + recall is 0. Macro-F1 averages over *all* classes, so a
  split that misses a class is not flattered (scikit-learn's ``zero_division=0`` with
  ``labels=range(num_classes)`` gives the same numbers).
- The macro-F1 interval is a percentile bootstrap, resampling *within each true class*
  (class sizes stay as observed, so a resample never loses the 22 MI pages), seeded.
- Expected calibration error (ECE) uses the top-label confidence (the largest
  probability) in ``n_bins`` equal-width bins over [0, 1]: bin ``b`` holds confidences in
  ``[b / n_bins, (b + 1) / n_bins)``, the last bin also holds 1.0. ECE is the sum over bins
  of ``(bin size / n) * |accuracy in bin - mean confidence in bin|``; empty bins add 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.calibration import fit_temperature, logits_from_probabilities, softmax

DEFAULT_BOOTSTRAP_RESAMPLES = 2000
DEFAULT_ECE_BINS = 10


def _labels(values: Any, num_classes: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"'{name}' must be a 1-D array of class indexes. Received: shape {array.shape}")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0):
        raise ValueError(f"'{name}' must hold non-negative integer class indexes.")
    if array.size and array.max() >= num_classes:
        raise ValueError(f"'{name}' holds class {int(array.max())}, but num_classes={num_classes}.")
    return array.astype(np.int64)


def _pair(y_true: Any, y_pred: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    true = _labels(y_true, num_classes, "y_true")
    pred = _labels(y_pred, num_classes, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"'y_true' and 'y_pred' differ in length: {true.size} != {pred.size}.")
    return true, pred


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Return counts[true, predicted] as an int64 (num_classes, num_classes) array."""
    true, pred = _pair(y_true, y_pred, num_classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of equal labels; 0.0 for empty input."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.shape != pred.shape:
        raise ValueError(f"'y_true' and 'y_pred' differ in length: {true.size} != {pred.size}.")
    return float((true == pred).mean()) if true.size else 0.0


def scores_from_confusion(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class ``precision``, ``recall``, ``f1`` and ``support`` of confusion ``counts``.

    Works on one (k, k) matrix or a stack (..., k, k); see the module docstring for the
    zero-division conventions.
    """
    counts = np.asarray(counts, dtype=np.float64)
    hits = np.diagonal(counts, axis1=-2, axis2=-1)
    support = counts.sum(axis=-1)
    predicted = counts.sum(axis=-2)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(hits), where=denominator > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over all ``num_classes`` classes."""
    return float(scores_from_confusion(confusion_matrix(y_true, y_pred, num_classes))["f1"].mean())


def bootstrap_macro_f1(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    num_classes: int,
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float | int]:
    """Macro-F1 with a stratified percentile-bootstrap interval.

    1. Draw ``n_resamples`` resamples: within each true class, draw that class's samples
       with replacement (same size), with ``numpy.random.default_rng(seed)``.
    2. Compute every resample's confusion matrix at once (one ``bincount``) and its macro-F1.
    3. The interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles.

    Returns ``value`` (on the data itself), ``low``, ``high``, ``confidence``, ``n_resamples``
    and ``seed``. With no samples every number is 0.0.
    """
    true, pred = _pair(y_true, y_pred, num_classes)
    _check_bootstrap(n_resamples, confidence)
    result: dict[str, float | int] = {
        "value": macro_f1(true, pred, num_classes),
        "low": 0.0,
        "high": 0.0,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
    }
    if true.size == 0:
        return result
    f1 = _resampled_macro_f1(
        true, pred, _stratified_resamples(true, num_classes, n_resamples, seed), num_classes
    )
    result["low"] = float(np.quantile(f1, (1 - confidence) / 2))
    result["high"] = float(np.quantile(f1, (1 + confidence) / 2))
    return result


def _check_bootstrap(n_resamples: object, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"'n_resamples' must be an integer >= 1. Received: n_resamples={n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"'confidence' must be in (0, 1). Received: confidence={confidence!r}")


def _stratified_resamples(true: np.ndarray, num_classes: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) sample indexes: each class's samples drawn with replacement, same size."""
    rng = np.random.default_rng(seed)
    columns = []
    for index in range(num_classes):
        members = np.flatnonzero(true == index)
        if members.size:
            columns.append(rng.choice(members, size=(n_resamples, members.size), replace=True))
    return np.concatenate(columns, axis=1)


def _resampled_macro_f1(
    true: np.ndarray, pred: np.ndarray, resampled: np.ndarray, num_classes: int
) -> np.ndarray:
    """Macro-F1 of every resample (one ``bincount`` for all their confusion matrices)."""
    n_resamples = len(resampled)
    cells = true[resampled] * num_classes + pred[resampled]
    offsets = np.arange(n_resamples)[:, np.newaxis] * num_classes * num_classes
    counts = np.bincount((cells + offsets).ravel(), minlength=n_resamples * num_classes * num_classes)
    return scores_from_confusion(counts.reshape(n_resamples, num_classes, num_classes))["f1"].mean(axis=1)


def paired_bootstrap_macro_f1_difference(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    num_classes: int,
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float | int]:
    """Macro-F1 of ``pred_a`` minus that of ``pred_b`` on the same samples, with a paired
    stratified bootstrap interval: each resample scores both models on the same images, so
    the images both get right or wrong cancel out (far tighter than comparing two intervals).

    Returns ``value``, ``low``, ``high``, ``confidence``, ``n_resamples``, ``seed`` and
    ``fraction_positive`` (the share of resamples where a scores higher).
    """
    true, a = _pair(y_true, pred_a, num_classes)
    _, b = _pair(y_true, pred_b, num_classes)
    if true.size == 0:
        raise ValueError("Cannot compare two models on no samples.")
    _check_bootstrap(n_resamples, confidence)
    resampled = _stratified_resamples(true, num_classes, n_resamples, seed)
    difference = _resampled_macro_f1(true, a, resampled, num_classes) - _resampled_macro_f1(
        true, b, resampled, num_classes
    )
    return {
        "value": macro_f1(true, a, num_classes) - macro_f1(true, b, num_classes),
        "low": float(np.quantile(difference, (1 - confidence) / 2)),
        "high": float(np.quantile(difference, (1 + confidence) / 2)),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "fraction_positive": float((difference > 0).mean()),
    }


def _probabilities(probabilities: Any, y_true: np.ndarray | None = None) -> np.ndarray:
    array = np.asarray(probabilities, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"'probabilities' must be (n, num_classes). Received: shape {array.shape}")
    if y_true is not None and len(array) != len(y_true):
        raise ValueError(f"'probabilities' has {len(array)} rows but 'y_true' {len(y_true)} labels.")
    return array


def calibration_bins(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> list[dict[str, float | int]]:
    """Reliability-diagram data: per equal-width bin its edges, ``count``, ``accuracy`` and
    ``confidence`` (mean top-label probability); empty bins have accuracy and confidence 0."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"'n_bins' must be an integer >= 1. Received: n_bins={n_bins!r}")
    probabilities = _probabilities(probabilities)
    true = _labels(y_true, probabilities.shape[1], "y_true")
    _probabilities(probabilities, true)
    confidence = probabilities.max(axis=1) if len(true) else np.zeros(0)
    correct = (probabilities.argmax(axis=1) == true) if len(true) else np.zeros(0, dtype=bool)
    # floor(c * B) puts c in [b/B, (b+1)/B); clip sends c == 1.0 to the last bin.
    bins = np.clip(np.floor(confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    rows: list[dict[str, float | int]] = []
    for index in range(n_bins):
        members = bins == index
        count = int(members.sum())
        rows.append(
            {
                "low": index / n_bins,
                "high": (index + 1) / n_bins,
                "count": count,
                "accuracy": float(correct[members].mean()) if count else 0.0,
                "confidence": float(confidence[members].mean()) if count else 0.0,
            }
        )
    return rows


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = DEFAULT_ECE_BINS
) -> float:
    """Top-label ECE over ``n_bins`` equal-width confidence bins (see the module docstring)."""
    rows = calibration_bins(y_true, probabilities, n_bins)
    total = sum(int(row["count"]) for row in rows)
    if total == 0:
        return 0.0
    return float(sum(row["count"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows))


def threshold_decisions(probabilities: np.ndarray, class_index: int, threshold: float) -> np.ndarray:
    """Labels under an operating point for one class: ``class_index`` wherever its probability
    reaches ``threshold``, else the argmax (so a threshold above 0.5 changes nothing)."""
    probabilities = _probabilities(probabilities)
    decisions = probabilities.argmax(axis=1)
    decisions[probabilities[:, class_index] >= threshold] = class_index
    return decisions


def best_threshold(y_true: Any, probabilities: np.ndarray, class_index: int, grid: Sequence[float]) -> float:
    """The threshold of ``grid`` whose ``threshold_decisions`` score the best macro-F1 on these
    rows (ties: the highest, which calls the class least)."""
    num_classes = probabilities.shape[1]
    scores = [macro_f1(y_true, threshold_decisions(probabilities, class_index, t), num_classes) for t in grid]
    top = max(scores)
    return max(t for t, score in zip(grid, scores, strict=True) if score == top)


def nested_operating_point(
    y_true: Any,
    probabilities: Any,
    folds: Any,
    class_index: int,
    thresholds: Sequence[float],
    *,
    calibrate: bool = False,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """An honest estimate of choosing a threshold for one class (``threshold_decisions``).

    For each fold, the threshold of ``thresholds`` with the best macro-F1 on the *other*
    folds' out-of-fold outputs (ties: the highest, which calls the class least) decides that
    fold's labels; the pooled labels are scored like ``bootstrap_macro_f1``. Also returns the
    threshold the same rule picks on all folds (what a model trained on everything would use).

    With ``calibrate``, every choice is made as a shipped model would make it, on
    temperature-scaled probabilities (``ml.calibration``): T is fitted on the same rows the
    threshold is chosen on (the other folds; all rows for ``threshold_all_folds``), and the
    held-out fold is calibrated with it. ``decisions`` and ``probabilities`` are the
    held-out labels and the probabilities they were decided from (numpy arrays).
    """
    probabilities = _probabilities(probabilities)
    true = _labels(y_true, probabilities.shape[1], "y_true")
    _probabilities(probabilities, true)
    folds = np.asarray(folds, dtype=np.int64)
    if folds.shape != true.shape:
        raise ValueError(f"'folds' has shape {folds.shape} for {true.shape[0]} labels.")
    grid = sorted({float(t) for t in thresholds})
    if not grid or not all(0.0 < t <= 1.0 for t in grid):
        raise ValueError(f"'thresholds' must be non-empty values in (0, 1]. Received: {list(thresholds)!r}")
    num_classes = probabilities.shape[1]
    logits = logits_from_probabilities(probabilities)

    def fitted_on(mask: np.ndarray) -> tuple[float, float, np.ndarray]:
        """The temperature and threshold chosen on ``mask``'s rows, and every row calibrated."""
        temperature = fit_temperature(logits[mask], true[mask]) if calibrate else 1.0
        calibrated = softmax(logits, temperature) if calibrate else probabilities
        return temperature, best_threshold(true[mask], calibrated[mask], class_index, grid), calibrated

    decisions = np.zeros_like(true)
    decided_from = np.zeros_like(probabilities)
    chosen, temperatures = [], []
    for fold in np.unique(folds):
        held_out = folds == fold
        temperature, threshold, calibrated = fitted_on(~held_out)
        chosen.append(threshold)
        temperatures.append(round(temperature, 4))
        decided_from[held_out] = calibrated[held_out]
        decisions[held_out] = threshold_decisions(calibrated[held_out], class_index, threshold)
    temperature_all, threshold_all, _ = fitted_on(np.ones_like(true, dtype=bool))
    counts = confusion_matrix(true, decisions, num_classes)
    scores = scores_from_confusion(counts)
    return {
        "thresholds_per_fold": chosen,
        "threshold_all_folds": threshold_all,
        **(
            {"temperatures_per_fold": temperatures, "temperature_all_folds": round(temperature_all, 4)}
            if calibrate
            else {}
        ),
        "accuracy": accuracy(true, decisions),
        "macro_f1": bootstrap_macro_f1(true, decisions, num_classes, n_resamples=n_resamples, seed=seed),
        "recall": scores["recall"].tolist(),
        "precision": scores["precision"].tolist(),
        "confusion_matrix": counts.tolist(),
        "decisions": decisions,
        "probabilities": decided_from,
    }


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1 and per-class recall/precision/F1 of integer label arrays.

    The flat layout of the training model cards (rounded to 4 decimals). A class with no
    true and no predicted samples gets F1 0 (it counts against macro-F1, so a split that
    misses a class is not flattered).
    """
    counts = confusion_matrix(y_true, y_pred, len(classes))
    scores = scores_from_confusion(counts)
    total = counts.sum()
    return {
        "n": int(total),
        "accuracy": round(float(np.trace(counts) / total), 4) if total else 0.0,
        "macro_f1": round(float(scores["f1"].mean()), 4),
        "per_class_recall": {c: round(float(r), 4) for c, r in zip(classes, scores["recall"], strict=True)},
        "per_class_precision": {
            c: round(float(p), 4) for c, p in zip(classes, scores["precision"], strict=True)
        },
        "per_class_f1": {c: round(float(v), 4) for c, v in zip(classes, scores["f1"], strict=True)},
        "confusion_matrix": {
            "rows_true_columns_predicted": list(classes),
            "counts": counts.tolist(),
        },
    }


def evaluation_report(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    n_bins: int = DEFAULT_ECE_BINS,
    predictions: Any | None = None,
) -> dict[str, Any]:
    """The evaluation JSON of ``ml.evaluate`` and ``ml.crossval`` for labels and probabilities.

    Keys: ``n``, ``accuracy``, ``macro_f1`` (``value``, ``low``, ``high``, ...), ``per_class``
    (``precision``, ``recall``, ``f1``, ``support`` per class key), ``confusion_matrix``
    (rows true, columns predicted), ``ece`` (``value``, ``n_bins``, ``bins``). The predicted
    classes are ``predictions`` where a decision rule made them (``ml.decision``), else the
    argmax of ``probabilities``; the ECE is always the probabilities' own (top-label).
    Floats are rounded to 4 decimals.
    """
    probabilities = _probabilities(probabilities)
    if probabilities.shape[1] != len(classes):
        raise ValueError(f"'probabilities' has {probabilities.shape[1]} columns for {len(classes)} classes.")
    true = _labels(y_true, len(classes), "y_true")
    _probabilities(probabilities, true)
    if predictions is not None:
        pred = _labels(predictions, len(classes), "predictions")
        if pred.shape != true.shape:
            raise ValueError(f"'predictions' has shape {pred.shape} for {true.shape[0]} labels.")
    else:
        pred = probabilities.argmax(axis=1) if len(true) else np.zeros(0, dtype=np.int64)
    counts = confusion_matrix(true, pred, len(classes))
    scores = scores_from_confusion(counts)
    interval = bootstrap_macro_f1(true, pred, len(classes), n_resamples=n_resamples, seed=seed)
    bins = calibration_bins(true, probabilities, n_bins)
    return {
        "n": len(true),
        "accuracy": round(accuracy(true, pred), 4),
        "macro_f1": {k: round(v, 4) if isinstance(v, float) else v for k, v in interval.items()},
        "per_class": {
            label: {
                "precision": round(float(scores["precision"][i]), 4),
                "recall": round(float(scores["recall"][i]), 4),
                "f1": round(float(scores["f1"][i]), 4),
                "support": int(scores["support"][i]),
            }
            for i, label in enumerate(classes)
        },
        "confusion_matrix": {"rows_true_columns_predicted": list(classes), "counts": counts.tolist()},
        "ece": {
            "value": round(expected_calibration_error(true, probabilities, n_bins), 4),
            "n_bins": n_bins,
            "definition": "top-label confidence, equal-width bins, weighted |accuracy - confidence|",
            "bins": [{k: round(v, 4) if isinstance(v, float) else v for k, v in b.items()} for b in bins],
        },
    }
