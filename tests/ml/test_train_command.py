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
    assert set(card) == set(shipped)
    assert set(card["hyperparameters"]) == set(shipped["hyperparameters"])
    assert card["architecture"] == "cnn" and card["training_data"]["images_per_class"]["mi"] == 3
    assert card["metrics"]["validation"]["n"] == 4  # one of each class at 30%
    assert (out / "tiny.keras").stat().st_size > 10_000
