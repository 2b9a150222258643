"""Pure helpers of training: metrics, the stratified split, class weights and photo augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from ml.labels import CLASSES, class_index
from ml.metrics import classification_metrics
from ml.train import class_weights, stratified_split, with_photos


def test_metrics_count_per_class_recall_and_macro_f1() -> None:
    y_true = np.array([0, 0, 1, 2, 3, 3])
    y_pred = np.array([0, 3, 1, 0, 3, 3])
    metrics = classification_metrics(y_true, y_pred, CLASSES)
    assert metrics["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert metrics["per_class_recall"] == {"normal": 0.5, "mi": 1.0, "history_mi": 0.0, "abnormal": 1.0}
    # F1: normal 0.5, mi 1, history_mi 0, abnormal 0.8 -> mean 0.575
    assert metrics["macro_f1"] == pytest.approx(0.575, abs=1e-4)
    assert metrics["confusion_matrix"]["counts"][0] == [1, 0, 0, 1]


def test_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [106, 22, 64, 175])
    train, val = stratified_split(labels, 0.2, seed=42)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(labels)
    assert np.bincount(labels[val]).tolist() == [21, 4, 13, 35]
    again_train, again_val = stratified_split(labels, 0.2, seed=42)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=1)[1])


def test_class_weights_favour_the_rare_class() -> None:
    labels = np.repeat(np.arange(4), [80, 20, 50, 140])
    weights = class_weights(labels)
    assert weights[class_index("mi")] > weights[class_index("normal")] > weights[class_index("abnormal")]
    # Each class contributes the same total weight.
    totals = [weights[i] * count for i, count in enumerate([80, 20, 50, 140])]
    assert max(totals) == pytest.approx(min(totals))


def test_mi_weight_multiplies_only_the_mi_class() -> None:
    labels = np.repeat(np.arange(4), [80, 20, 50, 140])
    plain, boosted = class_weights(labels), class_weights(labels, mi_weight=2.0)
    mi = class_index("mi")
    assert boosted[mi] == pytest.approx(2 * plain[mi])
    assert {i: w for i, w in boosted.items() if i != mi} == {i: w for i, w in plain.items() if i != mi}


def test_unknown_label_error_lists_the_classes() -> None:
    with pytest.raises(ValueError, match="expected one of normal, mi, history_mi, abnormal"):
        class_index("stemi")


def test_training_photos_are_those_of_the_training_pages_with_their_labels() -> None:
    pages = {"signals": np.arange(5, dtype=np.float32)[:, None] * 10}
    labels = np.array([0, 1, 2, 3, 0])
    photos = [{"signals": pages["signals"] + 1}, {"signals": pages["signals"] + 2}]
    x, y = with_photos(pages, labels, photos, np.array([1, 3]))
    # Pages 1 and 3, then each photo stream of the same two pages: never another page's photo.
    assert x["signals"][:, 0].tolist() == [10, 30, 11, 31, 12, 32]
    assert y.tolist() == [1, 3, 1, 3, 1, 3]
    alone, alone_labels = with_photos(pages, labels, [], np.array([4]))
    assert alone["signals"][:, 0].tolist() == [40] and alone_labels.tolist() == [0]
