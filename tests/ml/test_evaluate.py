"""``python -m ml.evaluate``: folder listing (fast) and the shipped model end to end (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.evaluate import labelled_files
from ml.models import DEFAULT_MODEL_NAME, default_model_path, model_path, read_card, resolve_model
from ml.synthetic import render_ecg

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_model_names_and_paths_resolve() -> None:
    assert resolve_model(None) == default_model_path()
    assert resolve_model(DEFAULT_MODEL_NAME) == model_path(DEFAULT_MODEL_NAME)
    assert resolve_model("/tmp/other.keras") == Path("/tmp/other.keras")


def test_folders_that_are_not_classes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mi").mkdir()
    (tmp_path / "stemi").mkdir()
    with pytest.raises(ValueError, match="not classes: stemi"):
        labelled_files(tmp_path)


def test_a_subset_of_classes_is_listed_with_class_indexes(tmp_path: Path) -> None:
    (tmp_path / "abnormal").mkdir()
    (tmp_path / "abnormal" / "a.png").write_bytes(b"x")
    (tmp_path / "abnormal" / "notes.txt").write_text("not an image")
    assert labelled_files(tmp_path) == [(tmp_path / "abnormal" / "a.png", 3)]


@pytest.mark.slow
def test_evaluate_prints_the_documented_json_for_the_shipped_model(tmp_path: Path) -> None:
    for label in ("normal", "mi", "abnormal"):
        (tmp_path / label).mkdir()
        for number in range(2):
            render_ecg(label, 500 + number).save(tmp_path / label / f"{number}.jpg", quality=75)
    (tmp_path / "mi" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml.evaluate",
            "--data",
            str(tmp_path),
            "--json",
            "--bootstrap-resamples",
            "100",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    report = json.loads(result.stdout)
    required = {"accuracy", "macro_f1", "per_class", "confusion_matrix", "ece", "ms_per_image", "n"}
    assert required <= set(report)
    assert report["n"] == 6
    assert report["skipped"][0]["file"] == "mi/broken.jpg"
    assert report["per_class"]["history_mi"]["support"] == 0
    assert sum(map(sum, report["confusion_matrix"]["counts"])) == 6
    assert report["macro_f1"]["low"] <= report["macro_f1"]["value"] <= report["macro_f1"]["high"]
    assert report["ms_per_image"] > 0
    assert report["file_sha256"] == read_card(default_model_path())["file_sha256"]


@pytest.mark.slow
def test_evaluate_scores_the_labels_the_cards_decision_rule_gives(tmp_path: Path) -> None:
    """A card whose rule calls a class at any probability: every image is scored as that
    class, as the served model labels it, while the ECE stays the probabilities' own."""
    from ml.evaluate import evaluate_folder
    from ml.synthetic import write_dataset
    from tests.ml.helpers import tiny_model, write_card

    data = tmp_path / "data"
    write_dataset(data, per_class=1, seed=5, image_format="jpg")
    model_file, card = tiny_model(tmp_path)
    argmax = evaluate_folder(data, str(model_file), n_resamples=10)
    rule = {"rule": "threshold", "class": "history_mi", "threshold": 1e-9}
    write_card(model_file, card | {"decision": rule})

    decided = evaluate_folder(data, str(model_file), n_resamples=10)

    assert decided["confusion_matrix"]["counts"] == [[0, 0, 1, 0]] * 4
    assert decided["accuracy"] == 0.25
    assert decided["ece"] == argmax["ece"]
