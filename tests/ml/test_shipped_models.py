"""The shipped models against their cards: sizes, hashes, and figures ``ml.evaluate`` reproduces."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ml.labels import CLASSES
from ml.models import DEFAULT_MODEL_NAME, MODELS_DIR, list_model_cards, model_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_DATA = Path(os.environ.get("ECGSITE_DEV_DATA", REPO_ROOT.parent / "shared" / "data" / "khan-ecg"))
CARDS = list_model_cards()
EVALUATED = [card for card in CARDS if "dev_evaluation" in card]


def test_shipped_models_fit_the_size_limits_and_match_their_cards() -> None:
    files = sorted(MODELS_DIR.glob("*.keras"))
    assert {path.stem for path in files} == {card["name"] for card in CARDS}
    assert DEFAULT_MODEL_NAME in {card["name"] for card in CARDS}
    assert all(path.stat().st_size <= 30_000_000 for path in files)
    assert sum(path.stat().st_size for path in files) <= 60_000_000
    for card in CARDS:
        assert hashlib.sha256(model_path(card["name"]).read_bytes()).hexdigest() == card["file_sha256"]
        assert card["classes"] == list(CLASSES)
        assert card["credit"].startswith("Khan & Hussain 2021") and "CC BY 4.0" in card["credit"]


def test_cross_validated_cards_carry_their_calibration_and_figures() -> None:
    assert EVALUATED, "no shipped model has a cross-validated card"
    for card in EVALUATED:
        crossval = card["crossval"]
        assert crossval["n_folds"] >= 5
        assert crossval["pooled"]["n"] == sum(card["training_data"]["images_per_class"].values())
        assert card["calibration"]["temperature"] > 0
        low, value, high = (crossval["pooled"]["macro_f1"][k] for k in ("low", "value", "high"))
        assert 0 <= low <= value <= high <= 1


@pytest.mark.slow
@pytest.mark.devdata
@pytest.mark.parametrize("card", EVALUATED, ids=[card["name"] for card in EVALUATED])
def test_evaluate_reproduces_the_card(card: dict) -> None:
    """``python -m ml.evaluate --data <dev images> --model NAME`` gives the card's figures."""
    from ml.evaluate import evaluate_folder
    from ml.train import reproducible_evaluation

    if not DEV_DATA.is_dir():
        pytest.fail(f"the dev images are not at {DEV_DATA}; set ECGSITE_DEV_DATA")
    result = evaluate_folder(DEV_DATA, card["name"])
    assert result["data"]["sha256"] == card["training_data"]["sha256"]
    expected, got = card["dev_evaluation"]["result"], reproducible_evaluation(result)
    # The ECE sums many rounded probabilities: equal to its 4th decimal, give or take.
    assert got["ece"]["value"] == pytest.approx(expected["ece"]["value"], abs=2e-4)
    assert {**got, "ece": expected["ece"]} == expected
