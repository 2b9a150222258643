"""``python -m ml.train`` end to end on a tiny synthetic folder (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.models import DEFAULT_MODEL_NAME, model_path, read_card

pytestmark = pytest.mark.slow


def test_train_writes_a_model_and_a_card_shaped_like_the_shipped_one(tmp_path: Path) -> None:
    from ml.synthetic import write_dataset
    from ml.train import main

    data = tmp_path / "data"
    write_dataset(data, per_class=3, seed=2, image_format="jpg")
    out = tmp_path / "models"
    argv = ["--data", str(data), "--out", str(out), "--arch", "cnn", "--epochs", "1", "--name", "tiny"]
    assert main([*argv, "--val-fraction", "0.3", "--batch-size", "4"]) == 0

    card = json.loads((out / "tiny.json").read_text())
    shipped = read_card(model_path(DEFAULT_MODEL_NAME))
    # Without --crossval-report the card has no cross-validation or calibration section.
    assert set(card) == set(shipped) - {"crossval", "calibration"}
    assert set(card["hyperparameters"]) == set(shipped["hyperparameters"])
    assert card["architecture"] == "cnn" and card["training_data"]["images_per_class"]["mi"] == 3
    assert card["metrics"]["validation"]["n"] == 4  # one of each class at 30%
    assert card["input"]["representation"] == "page"
    assert (out / "tiny.keras").stat().st_size > 10_000


def test_a_card_from_crossval_is_calibrated_and_reproduced_by_evaluate(tmp_path: Path) -> None:
    """The shipping path: cross-validate, train on everything with the report, then
    ``python -m ml.evaluate`` on the same folder gives exactly the card's figures."""
    from ml.crossval import main as crossval
    from ml.evaluate import evaluate_folder
    from ml.synthetic import write_dataset
    from ml.train import REPRODUCIBLE_EVALUATION_KEYS
    from ml.train import main as train

    data = tmp_path / "data"
    write_dataset(data, per_class=3, seed=4, image_format="jpg")
    common = ["--data", str(data), "--arch", "hybrid", "--epochs", "1", "--batch-size", "4"]
    assert crossval([*common, "--out", str(tmp_path), "--folds", "2", "--bootstrap-resamples", "50"]) == 0
    report = tmp_path / "crossval-hybrid.json"
    out = tmp_path / "models"
    argv = [*common, "--out", str(out), "--name", "tiny-hybrid", "--val-fraction", "0"]
    assert train([*argv, "--crossval-report", str(report)]) == 0

    card = json.loads((out / "tiny-hybrid.json").read_text())
    assert card["input"]["representation"] == "leads"
    assert card["crossval"]["pooled"] == json.loads(report.read_text())["pooled"]
    assert card["calibration"]["temperature"] > 0
    assert card["dev_evaluation"]["command"].startswith("python -m ml.evaluate --data ")
    again = evaluate_folder(data, str(out / "tiny-hybrid.keras"))
    expected = card["dev_evaluation"]["result"]
    for key in REPRODUCIBLE_EVALUATION_KEYS:
        got = (
            again[key] if key != "ece" else {"value": again["ece"]["value"], "n_bins": again["ece"]["n_bins"]}
        )
        assert got == expected[key], key

    # A report of another architecture is refused, not silently carded.
    wrong = ["--data", str(data), "--arch", "cnn", "--out", str(out), "--name", "x"]
    assert train([*wrong, "--crossval-report", str(report)]) == 2
    assert not (out / "x.keras").exists()
