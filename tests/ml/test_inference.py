"""The shipped default model, through the library and the command line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml import predict as predict_cli
from ml import representations
from ml.guard import LEAD_SENTENCE, UNREADABLE_SENTENCE
from ml.inference import Classifier, ModelLoadError, ModelSelfTestError
from ml.labels import CLASSES
from ml.models import DEFAULT_MODEL_NAME, default_model_path, list_model_cards
from ml.nonecg import render_non_ecg
from ml.preprocess import InvalidImageError
from ml.synthetic import render_ecg
from tests.conftest import render_photo_bytes
from tests.ml.helpers import encode, nan_model, tiny_model, unrunnable_model, write_card

REPO_ROOT = Path(__file__).resolve().parents[2]
# Loading TensorFlow and the model takes seconds.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    """The default shipped model, loaded once for this module."""
    return Classifier.load()


def test_the_default_model_and_its_card_are_shipped() -> None:
    assert default_model_path().is_file()
    cards = {card["name"]: card for card in list_model_cards()}
    card = cards[DEFAULT_MODEL_NAME]
    assert card["classes"] == list(CLASSES)
    assert card["credit"].startswith("Khan & Hussain 2021")
    assert default_model_path().stat().st_size < 30_000_000
    required = {
        "name", "architecture", "parameters", "file_sha256", "input", "classes", "training_data",
        "command", "seed", "metrics", "created", "runtime", "ms_per_image", "credit",
    }  # fmt: skip
    assert required <= set(card)
    assert card["input"]["representation"] in ("page", "leads")
    assert card["command"].split()[1:3] == ["-m", "ml.train"]
    assert 0.0 <= card["crossval"]["pooled"]["macro_f1"]["value"] <= 1.0
    assert card["calibration"]["temperature"] > 0
    assert isinstance(card["ms_per_image"], float)


def test_classifier_loads_default_model_with_its_card(classifier: Classifier) -> None:
    assert classifier.name == DEFAULT_MODEL_NAME
    assert classifier.architecture == "hybrid"
    assert classifier.file_sha256 == classifier.card["file_sha256"]
    assert classifier.device == "CPU" or classifier.device.startswith("GPU:")


def test_predict_returns_four_probabilities_summing_to_one(
    classifier: Classifier, synthetic_jpeg: bytes
) -> None:
    (prediction,) = classifier.predict([synthetic_jpeg])
    assert list(prediction.probabilities) == list(CLASSES)
    assert math.isclose(sum(prediction.probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in prediction.probabilities.values())
    assert prediction.label == classifier.decision.label_of(prediction.probabilities)  # the card's rule
    assert prediction.inference_ms > 0


def test_predict_of_a_batch_matches_predicting_one_by_one(
    classifier: Classifier, synthetic_jpeg: bytes
) -> None:
    other = encode(render_ecg("normal", seed=2), "PNG")
    batch = classifier.predict([synthetic_jpeg, other])
    single = classifier.predict([other])
    assert len(batch) == 2
    for label in CLASSES:
        assert batch[1].probabilities[label] == pytest.approx(single[0].probabilities[label], abs=1e-5)


def test_predict_rejects_a_bad_image(classifier: Classifier) -> None:
    with pytest.raises(InvalidImageError):
        classifier.predict([b"garbage"])


def test_predict_inputs_validates_shapes(classifier: Classifier) -> None:
    wrong = {
        name: np.zeros((1, 7), np.float32) for name in representations.get(classifier.representation).shapes
    }
    with pytest.raises(ValueError, match="inputs must have shapes"):
        classifier.predict_inputs(wrong)
    assert classifier.predict_inputs(representations.zeros(classifier.representation, 0)) == []


def test_load_refuses_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="No model file"):
        Classifier.load(tmp_path / "absent.keras")


def test_load_refuses_a_model_that_only_onednn_can_run(tmp_path: Path) -> None:
    """Refused on every machine, oneDNN or not, naming the layer and the way out."""
    with pytest.raises(ModelLoadError, match=r"uneven_depthwise.*unequal strides \(2, 1\).*ml\.rebuild"):
        Classifier.load(unrunnable_model(tmp_path))


def test_load_proves_the_model_on_a_rendered_page(tmp_path: Path) -> None:
    """A model that loads but answers NaN fails the self-test, which says why."""
    with pytest.raises(ModelSelfTestError, match=r"nan failed its self-test on .*not four probabilities"):
        Classifier.load(nan_model(tmp_path))


def test_the_self_test_classifies_the_rendered_page(classifier: Classifier) -> None:
    prediction = classifier.self_test()
    assert prediction.label in CLASSES
    assert math.isclose(sum(prediction.probabilities.values()), 1.0, abs_tol=1e-9)


def test_the_self_test_reports_a_failing_forward_pass(classifier: Classifier, monkeypatch) -> None:
    def broken(batch: object) -> object:
        raise RuntimeError("Current implementation only supports equal length strides\n\t [[{{node x}}]]")

    monkeypatch.setattr(classifier, "_forward", broken)
    with pytest.raises(ModelSelfTestError, match="RuntimeError: Current implementation only supports equal"):
        classifier.self_test()


def test_every_shipped_model_runs_on_tensorflows_plain_kernels(tmp_path: Path, synthetic_jpeg: bytes) -> None:
    """What an AVX2-only CPU, ARM and a GPU run: ``python -m ml.predict --model M`` with oneDNN
    off, for every shipped model, in a fresh process (TensorFlow reads the switch at import)."""
    page = tmp_path / "page.jpg"
    page.write_bytes(synthetic_jpeg)
    names = [card["name"] for card in list_model_cards()]
    assert DEFAULT_MODEL_NAME in names
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    for name in names:
        result = subprocess.run(
            [sys.executable, "-m", "ml.predict", "--model", name, str(page)],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=180, env=env,
        )  # fmt: skip
        assert result.returncode == 0, f"{name} with oneDNN off:\n{result.stderr[-3000:]}"
        (answer,) = json.loads(result.stdout)
        assert answer["label"] in CLASSES, name


def test_predict_command_says_why_a_model_cannot_run(tmp_path: Path, synthetic_jpeg: bytes) -> None:
    page = tmp_path / "page.jpg"
    page.write_bytes(synthetic_jpeg)
    result = subprocess.run(
        [sys.executable, "-m", "ml.predict", "--model", str(unrunnable_model(tmp_path)), str(page)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot run on TensorFlow's plain kernels" in result.stderr
    assert result.stdout == ""


def test_predict_command_prints_json_and_rejects_what_the_service_would(
    tmp_path: Path, synthetic_jpeg: bytes
) -> None:
    """Every face applies the same guard: a chart is refused with the upload's reason, as is a
    file that is no image, and neither gets a label."""
    good = tmp_path / "page.jpg"
    good.write_bytes(synthetic_jpeg)
    chart = tmp_path / "chart.png"
    chart.write_bytes(encode(render_non_ecg("chart", 0)))
    bad = tmp_path / "notes.txt.jpg"
    bad.write_text("this is not an ECG")
    result = subprocess.run(
        [sys.executable, "-m", "ml.predict", str(good), str(chart), str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 1  # some images were rejected
    output = json.loads(result.stdout)
    assert [entry["image"] for entry in output] == [str(good), str(chart), str(bad)]
    assert output[0]["label"] in CLASSES and "rejected" not in output[0]
    assert sorted(output[0]["probabilities"]) == sorted(CLASSES)
    assert math.isclose(sum(output[0]["probabilities"].values()), 1.0, abs_tol=1e-6)
    assert output[1] == {"image": str(chart), "rejected": True, "reason": output[1]["reason"]}
    assert output[1]["reason"].startswith(LEAD_SENTENCE)
    assert output[2]["rejected"] is True and "not a JPEG or PNG" in output[2]["reason"]
    assert "label" not in output[2]


def test_predict_command_classifies_a_photo_and_refuses_one_cut_through_the_traces(
    tmp_path: Path, capsys
) -> None:
    photo, cut = tmp_path / "photo.jpg", tmp_path / "cut.jpg"
    photo.write_bytes(render_photo_bytes("abnormal", 5))
    cut.write_bytes(render_photo_bytes("abnormal", 5, keep=0.7))

    assert predict_cli.main([str(photo), str(cut)]) == 1

    read, refused = json.loads(capsys.readouterr().out)
    assert read["label"] in CLASSES and "rejected" not in read and read["photographed"] is True
    assert refused["rejected"] is True and refused["reason"].startswith(UNREADABLE_SENTENCE)
    assert "label" not in refused


def test_predict_command_classifies_what_the_guard_refuses_when_asked(tmp_path: Path, capsys) -> None:
    chart = tmp_path / "chart.png"
    chart.write_bytes(encode(render_non_ecg("chart", 0)))

    assert predict_cli.main([str(chart), "--no-guard"]) == 0

    [answer] = json.loads(capsys.readouterr().out)
    assert answer["label"] in CLASSES and "rejected" not in answer


def test_the_cards_temperature_calibrates_the_probabilities(tmp_path: Path, synthetic_jpeg: bytes) -> None:
    """softmax(log p / T) with the card's T: same label, flatter (T > 1) probabilities."""
    from ml.calibration import softmax

    model_file, card = tiny_model(tmp_path)
    raw = Classifier.load(model_file).predict([synthetic_jpeg])[0]
    write_card(model_file, card | {"calibration": {"temperature": 2.0}})
    calibrated = Classifier.load(model_file).predict([synthetic_jpeg])[0]

    expected = softmax(np.log([[raw.probabilities[c] for c in CLASSES]]), 2.0)[0]
    assert [calibrated.probabilities[c] for c in CLASSES] == pytest.approx(expected.tolist(), abs=1e-6)
    assert calibrated.label == raw.label
    write_card(model_file, card | {"calibration": {"temperature": 0}})
    with pytest.raises(ModelLoadError, match="temperature must be > 0"):
        Classifier.load(model_file)


def test_the_cards_decision_rule_picks_the_label_and_leaves_the_probabilities(
    tmp_path: Path, synthetic_jpeg: bytes
) -> None:
    """A card's threshold labels its class whenever that class's probability reaches it (here the
    least probable class, so the argmax would never say it); the probabilities are the same."""
    model_file, card = tiny_model(tmp_path)
    argmax = Classifier.load(model_file).predict([synthetic_jpeg])[0]
    least = min(CLASSES, key=argmax.probabilities.__getitem__)
    below = argmax.probabilities[least] * 0.99  # a threshold this image's p(least) reaches

    write_card(model_file, card | {"decision": {"rule": "threshold", "class": least, "threshold": below}})
    decided = Classifier.load(model_file).predict([synthetic_jpeg])[0]
    assert decided.label == least != argmax.label
    assert decided.probabilities == pytest.approx(argmax.probabilities, abs=1e-6)

    write_card(model_file, card | {"decision": {"rule": "threshold", "class": least, "threshold": 1.0}})
    assert Classifier.load(model_file).predict([synthetic_jpeg])[0].label == argmax.label
    for broken in ({"rule": "threshold", "class": "stemi", "threshold": 0.2}, {"rule": "vote"}):
        write_card(model_file, card | {"decision": broken})
        with pytest.raises(ModelLoadError, match="decision"):
            Classifier.load(model_file)


def test_a_page_straightened_from_a_photo_is_labelled_by_the_cards_photo_rule(
    tmp_path: Path, synthetic_jpeg: bytes
) -> None:
    """``decision_photos`` labels what ``read_page`` found in a photo, or what the caller says was
    one (a page the upload straightened); a scan keeps the card's scan rule."""
    model_file, card = tiny_model(tmp_path)
    argmax = Classifier.load(model_file)
    scan, photo = argmax.read_page(synthetic_jpeg), argmax.read_page(render_photo_bytes("normal", 3))
    assert (scan.photographed, photo.photographed) == (False, True)
    probabilities = [p.probabilities for p in argmax.classify([scan, photo])]
    least = min(CLASSES, key=lambda name: max(p[name] for p in probabilities))
    below = min(p[least] for p in probabilities) * 0.99  # both pages' p(least) reach it

    photo_rule = {"rule": "threshold", "class": least, "threshold": below}
    write_card(model_file, card | {"decision_photos": photo_rule})
    classifier = Classifier.load(model_file)
    labels = [p.label for p in classifier.classify([scan, photo])]
    assert labels == [argmax.classify([scan])[0].label, least] and labels[0] != least
    stored = classifier.read_page(synthetic_jpeg, straighten=False, photographed=True)
    assert classifier.classify([stored])[0].label == least

    write_card(
        model_file, card | {"decision_photos": {"rule": "threshold", "class": "stemi", "threshold": 0.2}}
    )
    with pytest.raises(ModelLoadError, match="decision_photos"):
        Classifier.load(model_file)


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        (
            "{{function_node __inference_forward_37}} Current implementation only supports equal length "
            "strides in the row and column dimensions.\n\t [[{{node m/dw/depthwise}}]] [Op:__inference_f_37]",
            "RuntimeError: Current implementation only supports equal length strides in the row and "
            "column dimensions.",
        ),
        ("out of memory\nmore detail", "RuntimeError: out of memory"),
        ("", "RuntimeError"),
    ],
)
def test_error_summary_keeps_the_line_that_says_what_went_wrong(message: str, summary: str) -> None:
    from ml.inference import error_summary

    assert error_summary(RuntimeError(message)) == summary
