"""``python -m bench.gpu_check``: the GPU path's check, exercised CPU against CPU here."""

from __future__ import annotations

import json

import pytest

from bench import gpu_check

pytestmark = pytest.mark.slow


def test_the_check_compares_devices_and_times_each_model(tmp_path, capsys) -> None:
    """On ``/CPU:0`` the same kernels run on both sides: the comparison must find them equal."""
    arguments = ["--device", "/CPU:0", "--models", "cnn-v1", "hybrid-v4", "--pages", "4", "--repeats", "2"]
    assert gpu_check.main([*arguments, "--out", str(tmp_path)]) == 0

    (written,) = tmp_path.glob("gpu-check-*.json")
    report = json.loads(written.read_text())
    assert [model["model"] for model in report["models"]] == ["cnn-v1", "hybrid-v4"]
    for model in report["models"]:
        assert model["ok"] and model["max_abs_difference_vs_cpu"] <= gpu_check.TOLERANCE
        assert model["same_label"] == 4
        assert model["ms_per_image_batch_1"] > 0 and model[f"ms_per_image_batch_{4}"] > 0
    assert report["cpu"]["cpu"] and "onednn" in report["cpu"]
    assert "hybrid-v4" in capsys.readouterr().out


def test_without_the_device_it_says_so_and_exits_2(tmp_path, capsys) -> None:
    assert gpu_check.main(["--device", "/GPU:7", "--out", str(tmp_path)]) == 2
    assert "TensorFlow sees no /GPU:7 here" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_write_cards_records_the_figures_in_each_models_card(tmp_path) -> None:
    from ml.report import gpu_text
    from tests.ml.helpers import tiny_model

    model_file, _ = tiny_model(tmp_path)
    arguments = ["--device", "/CPU:0", "--models", str(model_file), "--pages", "2", "--repeats", "1"]
    assert gpu_check.main([*arguments, "--write-cards", "--out", str(tmp_path / "out")]) == 0

    check = json.loads(model_file.with_suffix(".json").read_text())["gpu_check"]
    assert check["device"] == "/CPU:0" and check["pages"] == 2 and check["ok"]
    assert check["max_abs_difference_vs_cpu"] == 0.0
    assert "bench.gpu_check" in check["command"]
    assert "0 from the CPU's probabilities" in gpu_text(check)
