"""Fold assignment (fast) and the cross-validation command end to end (slow)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ml.crossval import FoldsMismatchError, assign_folds, load_or_create_folds
from ml.labels import CLASSES

LABELS = np.repeat(np.arange(4), [11, 5, 7, 17])
DIGESTS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(len(LABELS))]


def test_folds_are_stratified_and_balanced() -> None:
    folds = assign_folds(DIGESTS, LABELS, 5, seed=0)
    assert set(folds.tolist()) == set(range(5))
    for index in range(4):
        per_fold = np.bincount(folds[index == LABELS], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 40


def test_folds_depend_on_the_seed_but_not_on_the_file_order() -> None:
    folds = assign_folds(DIGESTS, LABELS, 5, seed=3)
    order = np.random.default_rng(1).permutation(len(LABELS))
    shuffled = assign_folds([DIGESTS[i] for i in order], LABELS[order], 5, seed=3)
    assert np.array_equal(shuffled, folds[order])
    assert not np.array_equal(folds, assign_folds(DIGESTS, LABELS, 5, seed=4))


def test_folds_refuse_a_class_smaller_than_the_fold_count_and_duplicates() -> None:
    with pytest.raises(ValueError, match="Class 1 has 5 samples, fewer than the 6 folds"):
        assign_folds(DIGESTS, LABELS, 6, seed=0)
    with pytest.raises(ValueError, match="Duplicate files"):
        assign_folds([DIGESTS[0], *DIGESTS[:-1]], LABELS, 5, seed=0)


def test_stored_folds_are_reused_even_with_another_seed(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    first = load_or_create_folds(path, DIGESTS, LABELS, 5, seed=0)
    stored = json.loads(path.read_text())
    assert stored["n_folds"] == 5 and len(stored["assignments"]) == 40
    assert stored["assignments"][DIGESTS[12]]["label"] == CLASSES[1]
    again = load_or_create_folds(path, DIGESTS[::-1], LABELS[::-1], 5, seed=99)
    assert np.array_equal(again, first[::-1])


def test_stored_folds_refuse_other_data_or_fold_counts(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    load_or_create_folds(path, DIGESTS, LABELS, 5, seed=0)
    with pytest.raises(FoldsMismatchError, match="holds 5 folds"):
        load_or_create_folds(path, DIGESTS, LABELS, 4, seed=0)
    with pytest.raises(FoldsMismatchError, match="no fold for 1 of 41 files"):
        load_or_create_folds(path, [*DIGESTS, "f" * 64], np.append(LABELS, 0), 5, seed=0)
    with pytest.raises(FoldsMismatchError, match="labels 1 files differently"):
        load_or_create_folds(path, DIGESTS, np.where(np.arange(40) == 0, 3, LABELS), 5, seed=0)


@pytest.mark.slow
def test_crossval_writes_out_of_fold_reports_on_shared_folds(tmp_path: Path) -> None:
    from ml.crossval import main
    from ml.synthetic import write_dataset

    data = tmp_path / "data"
    write_dataset(data, per_class=3, seed=1, image_format="jpg")
    out = tmp_path / "out"
    common = ["--data", str(data), "--out", str(out), "--folds", "2", "--epochs", "1"]
    tiny = ["--input-size", "32", "--batch-size", "4", "--bootstrap-resamples", "50"]
    assert main(["--arch", "cnn", "--seed", "3", *common, *tiny]) == 0
    report = json.loads((out / "crossval-cnn.json").read_text())
    assert report["pooled"]["n"] == 12
    assert [fold["n"] for fold in report["per_fold"]] == [6, 6]
    assert sum(sum(row) for row in report["pooled"]["confusion_matrix"]["counts"]) == 12
    assert 0 <= report["pooled"]["macro_f1"]["low"] <= report["pooled"]["macro_f1"]["high"] <= 1
    assert 0 <= report["pooled"]["ece"]["value"] <= 1
    assert report["ms_per_image"] > 0
    for row in report["out_of_fold"]:
        assert sum(row["probabilities"]) == pytest.approx(1, abs=1e-4)
    # Temperature scaling: fitted on all out-of-fold outputs, measured cross-fitted per fold.
    assert report["temperature"]["value"] > 0 and len(report["temperature"]["cross_fitted_per_fold"]) == 2
    assert report["pooled_calibrated"]["accuracy"] == report["pooled"]["accuracy"]
    first_folds = {row["sha256"]: row["fold"] for row in report["out_of_fold"]}

    # A later run (another seed: other training, same stored folds) holds out the same files.
    folds_file = out / "folds-k2-seed3.json"
    assert main(["--arch", "cnn", "--seed", "4", "--folds-file", str(folds_file), *common, *tiny]) == 0
    again = json.loads((out / "crossval-cnn.json").read_text())
    assert {row["sha256"]: row["fold"] for row in again["out_of_fold"]} == first_folds
    assert len(first_folds) == 12 and set(first_folds.values()) == {0, 1}


@pytest.mark.slow
def test_crossval_classifies_photos_of_held_out_pages_and_can_train_on_photos(tmp_path: Path, capsys) -> None:
    from ml.crossval import main
    from ml.synthetic import write_dataset

    data = tmp_path / "data"
    write_dataset(data, per_class=2, seed=2, image_format="jpg")
    out = tmp_path / "out"
    tiny = ["--folds", "2", "--epochs", "1", "--input-size", "32", "--batch-size", "4"]
    tiny += ["--bootstrap-resamples", "20"]
    argv = [
        "--arch",
        "cnn",
        "--data",
        str(data),
        "--out",
        str(out),
        *tiny,
        "--photos",
        "--photo-augment",
        "1",
    ]
    assert main(argv) == 0
    report = json.loads((out / "crossval-cnn.json").read_text())
    assert report["photos"]["kinds"] == ["desk", "screen"]
    for kind in ("desk", "screen"):
        assert report["photos"]["pooled"][kind]["n"] == 8
    for row in report["out_of_fold"]:
        for kind in ("desk", "screen"):
            assert sum(row["photo_probabilities"][kind]) == pytest.approx(1, abs=1e-4)
        # A photo is another image than its scan: the model's outputs differ.
        assert row["photo_probabilities"]["desk"] != row["probabilities"]
    assert report["training"]["photo_augment"] == 1
    assert "1 photo(s) of each training page" in report["training"]["photo_augmentation"]
    assert report["training"]["lead_offset_mv"] == 0.05  # the default, named so cards can compare
    # Each fold trains on its 4 scans and their 4 augmentation photos.
    log = capsys.readouterr().out
    assert "desk photos (seed 2): 8/8" in log and "desk photos (seed 1): 8/8" in log
    assert log.count("train 4 (+4 photos), test 4") == 2 and log.count("screen photos (seed") == 1
