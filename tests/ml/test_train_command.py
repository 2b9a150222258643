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
    # Without --crossval-report the card has no cross-validation or calibration section; a
    # single model trained with MI's plain weight has no ensemble or mi_weight entry; a model
    # just trained was not rebuilt (ml.rebuild), nor measured on photos (ml.photo_report --card).
    carded_later = {"crossval", "calibration", "ensemble", "decision", "decision_photos", "rebuilt", "photos"}
    assert set(card) == set(shipped) - carded_later
    assert card["machine"]["cpu"] and card["machine"]["onednn"].startswith(("on", "off"))
    assert set(card["hyperparameters"]) == set(shipped["hyperparameters"]) - {"mi_weight", "photo_augment"}
    assert card["architecture"] == "cnn" and card["training_data"]["images_per_class"]["mi"] == 3
    assert card["metrics"]["validation"]["n"] == 4  # one of each class at 30%
    assert card["input"]["representation"] == "page"
    assert (out / "tiny.keras").stat().st_size > 10_000


def test_a_card_from_crossval_is_calibrated_and_reproduced_by_evaluate(tmp_path: Path) -> None:
    """The shipping path: cross-validate, train on everything with the report, then
    ``python -m ml.evaluate`` on the same folder gives exactly the card's figures."""
    from ml.crossval import main as crossval
    from ml.decision import operating_point
    from ml.evaluate import evaluate_folder
    from ml.synthetic import write_dataset
    from ml.train import main as train
    from ml.train import reproducible_evaluation

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
    assert reproducible_evaluation(again) == card["dev_evaluation"]["result"]

    # A report of another architecture is refused, not silently carded.
    wrong = ["--data", str(data), "--arch", "cnn", "--out", str(out), "--name", "x"]
    assert train([*wrong, "--crossval-report", str(report)]) == 2
    assert not (out / "x.keras").exists()

    # With an MI operating point the card carries the rule chosen on the report's outputs,
    # and ml.evaluate, which scores the labels the served model gives, still reproduces it.
    decided = [*common, "--out", str(out), "--name", "tiny-decided", "--val-fraction", "0"]
    assert train([*decided, "--crossval-report", str(report), "--mi-operating-point"]) == 0
    card = json.loads((out / "tiny-decided.json").read_text())
    assert card["decision"] == operating_point(json.loads(report.read_text()))
    again = evaluate_folder(data, str(out / "tiny-decided.keras"))
    assert reproducible_evaluation(again) == card["dev_evaluation"]["result"]
    with pytest.raises(SystemExit):  # the threshold needs out-of-fold outputs to be chosen on
        train([*decided, "--mi-operating-point"])


def test_an_ensemble_with_mi_weight_is_cross_validated_carded_and_reproduced(tmp_path: Path) -> None:
    """``--ensemble 2 --mi-weight 2``: the report scores each member and the ensemble, the card
    says how it was made, the file is one model that averages its members, ``ml.evaluate``
    reproduces the card, and a report of another configuration is refused."""
    import keras
    import numpy as np

    from ml import representations
    from ml.crossval import main as crossval
    from ml.evaluate import evaluate_folder
    from ml.synthetic import write_dataset
    from ml.train import main as train
    from ml.train import reproducible_evaluation

    data = tmp_path / "data"
    write_dataset(data, per_class=3, seed=5, image_format="jpg")
    common = ["--data", str(data), "--arch", "hybrid", "--epochs", "1", "--batch-size", "4", "--seed", "7"]
    ensemble = ["--ensemble", "2", "--mi-weight", "2"]
    crossval_argv = [
        *common,
        *ensemble,
        "--out",
        str(tmp_path),
        "--folds",
        "2",
        "--bootstrap-resamples",
        "50",
    ]
    assert crossval([*crossval_argv, "--name", "tiny-ensemble"]) == 0
    report_file = tmp_path / "crossval-tiny-ensemble.json"
    report = json.loads(report_file.read_text())
    assert report["ensemble"]["seeds"] == [7, 8]
    assert [member["seed"] for member in report["members"]] == [7, 8]
    assert report["training"]["mi_weight"] == 2.0
    # Member 1 is the model a one-member run trains: each member is seeded afresh.
    assert (
        crossval([*common, "--mi-weight", "2", "--out", str(tmp_path), "--folds", "2", "--name", "one"]) == 0
    )
    alone = json.loads((tmp_path / "crossval-one.json").read_text())
    assert "members" not in alone and "ensemble" not in alone
    assert report["members"][0]["accuracy"] == alone["pooled"]["accuracy"]
    assert report["members"][0]["recall"] == {k: v["recall"] for k, v in alone["pooled"]["per_class"].items()}

    out = tmp_path / "models"
    argv = [*common, *ensemble, "--out", str(out), "--name", "tiny-ensemble", "--val-fraction", "0"]
    assert train([*argv, "--crossval-report", str(report_file)]) == 0
    card = json.loads((out / "tiny-ensemble.json").read_text())
    assert card["ensemble"]["members"] == 2 and card["crossval"]["members"] == report["members"]
    assert card["hyperparameters"]["mi_weight"] == 2.0
    assert card["hyperparameters"]["class_weights"]["mi"] == pytest.approx(
        2 * card["hyperparameters"]["class_weights"]["normal"], rel=1e-3
    )

    model = keras.models.load_model(out / "tiny-ensemble.keras", compile=False)
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert [member.name.split("_")[0] for member in members] == ["member1", "member2"]
    inputs = representations.stack(
        [
            representations.inputs_from_bytes(path.read_bytes(), "leads")
            for path in sorted(data.rglob("*.jpg"))[:3]
        ]
    )
    expected = np.mean([np.asarray(member(inputs)) for member in members], axis=0)
    np.testing.assert_allclose(np.asarray(model(inputs)), expected, atol=1e-6)
    again = evaluate_folder(data, str(out / "tiny-ensemble.keras"))
    assert reproducible_evaluation(again) == card["dev_evaluation"]["result"]

    # The report must be of the configuration trained: one member is not what it measured.
    single = [*common, "--mi-weight", "2", "--out", str(out), "--name", "single", "--val-fraction", "0"]
    assert train([*single, "--crossval-report", str(report_file)]) == 2
    assert not (out / "single.keras").exists()


def test_a_photo_trained_model_is_carded_as_such_and_only_with_a_report_of_photo_training(
    tmp_path: Path, capsys
) -> None:
    """``--photo-augment 1``: the model trains on a photo of each training page (never of a
    validation page), its card says so, and it takes the figures of a cross-validation that
    trained on photos too, not those of one that did not."""
    from ml.crossval import main as crossval
    from ml.synthetic import write_dataset
    from ml.train import main as train

    data = tmp_path / "data"
    write_dataset(data, per_class=3, seed=6, image_format="jpg")
    common = ["--data", str(data), "--arch", "cnn", "--epochs", "1", "--batch-size", "4"]
    folds = ["--out", str(tmp_path), "--folds", "2", "--bootstrap-resamples", "20", "--input-size", "32"]
    assert crossval([*common, *folds, "--photo-augment", "1", "--name", "photo-trained"]) == 0
    assert crossval([*common, *folds, "--name", "scans-only"]) == 0
    trained_on_photos = tmp_path / "crossval-photo-trained.json"
    assert json.loads(trained_on_photos.read_text())["training"]["photo_augment"] == 1
    capsys.readouterr()

    out = tmp_path / "models"
    argv = [*common, "--out", str(out), "--photo-augment", "1", "--name", "photo"]
    assert train([*argv, "--val-fraction", "0.3", "--crossval-report", str(trained_on_photos)]) == 0
    assert "train 8 (+8 photos), validation 4" in capsys.readouterr().out
    card = json.loads((out / "photo.json").read_text())
    assert card["hyperparameters"]["photo_augment"] == 1
    assert card["training_data"]["photo_augmentation"].startswith("1 photo(s) of each training page")
    assert card["crossval"]["pooled"] == json.loads(trained_on_photos.read_text())["pooled"]

    # A report of training on scans alone does not measure this model, nor the reverse.
    scans_only = tmp_path / "crossval-scans-only.json"
    assert train([*argv, "--val-fraction", "0", "--name", "x", "--crossval-report", str(scans_only)]) == 2
    plain = [*common, "--out", str(out), "--val-fraction", "0", "--name", "y"]
    assert train([*plain, "--crossval-report", str(trained_on_photos)]) == 2
    assert "photo_augment 1 (training: 0)" in capsys.readouterr().err
    assert not (out / "x.keras").exists() and not (out / "y.keras").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--photo-augment", "-1"], "--photo-augment must be in"),
        (["--ensemble", "0"], "--ensemble must be in"),
        (["--mi-weight", "0"], "--mi-weight must be in"),
        (["--name", "../up"], "--name may hold"),
    ],
)
def test_crossval_refuses_bad_fit_options(extra: list[str], message: str, capsys) -> None:
    from ml.crossval import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--arch", "hybrid", "--data", "d", "--out", "o", *extra])
    assert message in capsys.readouterr().err
