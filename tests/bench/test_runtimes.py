"""``python -m bench.runtimes``: the adoption rule and the table without TensorFlow; a real
conversion of the smallest shipped model, and of an LSTM, marked slow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import runtimes

RESULT = {
    "model": "cnn-v1",
    "representation": "page",
    "runtimes": [
        {
            "runtime": "tensorflow",
            "converts": True,
            "ms_per_image_batch_1": 12.0,
            "ms_per_image_batch_16": 8.0,
            "speedup_batch_1": 1.0,
            "speedup_batch_16": 1.0,
            "note": "the classifier's tf.function",
        },
        {
            "runtime": "openvino",
            "converts": True,
            "ms_per_image_batch_1": 6.0,
            "ms_per_image_batch_16": 4.0,
            "speedup_batch_1": 2.0,
            "speedup_batch_16": 2.0,
            "max_abs_difference": 8.6e-07,
            "adoptable": True,
        },
        {
            "runtime": "litert",
            "converts": True,
            "unrolled": True,
            "ms_per_image_batch_1": 4.0,
            "ms_per_image_batch_16": 6.0,
            "speedup_batch_1": 3.0,
            "speedup_batch_16": 1.33,
            "max_abs_difference": 4.2e-07,
            "adoptable": False,
            "note": "builtin ops with 2 recurrent layer(s) unrolled",
        },
        {"runtime": "onnxruntime", "converts": False, "error": "ValueError: no converter"},
    ],
}


@pytest.mark.parametrize(
    ("speedup", "difference", "expected"),
    [
        (1.5, 1e-4, True),  # both limits are inclusive
        (2.0, 1e-7, True),
        (1.49, 1e-7, False),  # not fast enough
        (5.0, 1.1e-4, False),  # fast, but its probabilities drift (bf16, say)
        (None, 1e-7, False),  # did not run
        (2.0, None, False),
        (math.inf, 1e-7, False),
        (2.0, math.nan, False),
    ],
)
def test_adoptable_needs_the_speed_at_batch_16_and_the_tolerance(speedup, difference, expected) -> None:
    assert runtimes.is_adoptable(speedup, difference) is expected


def test_speedup_is_tensorflows_time_over_the_runtimes() -> None:
    assert runtimes.speedup(9.0, 3.0) == 3.0
    assert runtimes.speedup(10.0, 3.0) == 3.33
    assert runtimes.speedup(None, 3.0) is None and runtimes.speedup(9.0, None) is None
    assert runtimes.speedup(9.0, 0.0) is None


def test_the_table_shows_each_runtime_its_figures_and_why_one_failed() -> None:
    table = runtimes.render_table(RESULT)
    lines = table.splitlines()
    assert lines[0] == "cnn-v1 (page)"
    assert lines[1].split() == [
        "runtime", "converts", "ms/img", "b1", "ms/img", "b16", "x", "TF", "b1", "x", "TF", "b16",
        "max", "|diff|", "adoptable",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[3:7]}
    assert rows["tensorflow"] == ["tensorflow", "yes", "12.00", "8.00", "1.00", "1.00", "-", "-"]
    assert rows["openvino"] == ["openvino", "yes", "6.00", "4.00", "2.00", "2.00", "8.6e-07", "YES"]
    assert rows["litert"] == ["litert", "unrolled", "4.00", "6.00", "3.00", "1.33", "4.2e-07", "no"]
    assert rows["onnxruntime"] == ["onnxruntime", "NO", "-", "-", "-", "-", "-", "no"]
    assert "  onnxruntime: ValueError: no converter" in lines
    assert "  litert: builtin ops with 2 recurrent layer(s) unrolled" in lines


def test_a_model_that_did_not_load_says_why() -> None:
    table = runtimes.render_table({"model": "broken", "error": "ModelLoadError: no file"})
    assert "FAILED: ModelLoadError: no file" in table


def test_the_report_names_the_machine_and_what_is_adoptable() -> None:
    report = {
        "machine_text": "AMD EPYC (x86_64; avx2), 2 cores, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)",
        "versions": {"openvino": "2026.4.1"},
        "threads": 2,
        "repeats": 20,
        "models": [RESULT, {**RESULT, "model": "hybrid-v4", "runtimes": RESULT["runtimes"][2:]}],
    }
    text = runtimes.render_report(report)
    assert text.startswith("machine: AMD EPYC (x86_64; avx2), 2 cores, oneDNN off")
    assert "versions: openvino 2026.4.1" in text
    assert ">= 1.5x TensorFlow at batch 16 and max |diff| <= 0.0001" in text
    assert "\nhybrid-v4 (page)\n" in text
    assert text.endswith("adoptable: openvino for cnn-v1")
    assert runtimes.adoptable_text({"models": []}) == "adoptable: none"


def test_error_text_keeps_the_line_that_says_what_failed() -> None:
    mlir = RuntimeError(
        'loc(fused["TensorListReserve:" ...]): error: op requires element_shape to be static\n'
        "error: Lowering tensor list ops is failed. Please consider using Select TF ops"
    )
    assert runtimes.error_text(mlir) == (
        "RuntimeError: Lowering tensor list ops is failed. Please consider using Select TF ops"
    )
    openvino = RuntimeError("Check failed\nSummary:\n-- No conversion rule found for operations: TensorList")
    expected = "RuntimeError: No conversion rule found for operations: TensorList"
    assert runtimes.error_text(openvino) == expected
    assert runtimes.error_text(ValueError("first\nsecond")) == "ValueError: first"
    assert runtimes.error_text(KeyError()) == "KeyError"
    assert len(runtimes.error_text(ValueError("x" * 1000), limit=50)) == 50


def test_inputs_are_matched_by_name_whatever_the_converter_calls_them() -> None:
    names = ["trace_image", "signals"]
    assert runtimes._feed_name("signals", names) == "signals"
    assert runtimes._feed_name("serving_default_trace_image:0", names) == "trace_image"
    assert runtimes._feed_name("serving_default_image:0", ["image"]) == "image"
    with pytest.raises(ValueError, match="cannot tell"):
        runtimes._feed_name("x:0", names)


def test_output_goes_to_bench_results_or_where_asked(tmp_path) -> None:
    assert runtimes.output_path(None).parent == Path("bench-results")
    assert runtimes.output_path(None).name.startswith("runtimes-")
    assert runtimes.output_path(tmp_path / "figures.json") == tmp_path / "figures.json"
    assert runtimes.output_path(tmp_path).parent == tmp_path


def test_importing_the_benchmark_does_not_load_tensorflow() -> None:
    code = "import sys, bench.runtimes; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.slow
def test_cnn_v1_converts_to_every_runtime_within_tolerance(tmp_path, capsys) -> None:
    out = tmp_path / "runtimes.json"
    assert runtimes.main(["--models", "cnn-v1", "--repeats", "1", "--out", str(out)]) == 0

    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and "onednn" in report["machine"]
    (result,) = report["models"]
    rows = {row["runtime"]: row for row in result["runtimes"]}
    assert list(rows) == ["tensorflow", *runtimes.RUNTIMES]
    for name in ("openvino", "onnxruntime", "litert"):
        assert rows[name]["converts"] and not rows[name].get("error"), rows[name]
        assert rows[name]["max_abs_difference"] <= runtimes.TOLERANCE
        assert rows[name]["ms_per_image_batch_1"] > 0 and rows[name]["ms_per_image_batch_16"] > 0
    assert rows["openvino"]["note"] == "inference precision <Type: 'float32'>"
    assert rows["litert"]["note"] == "builtin ops" and not rows["litert"]["unrolled"]
    printed = capsys.readouterr().out
    assert printed.startswith("machine: ") and "cnn-v1 (page)" in printed


@pytest.mark.slow
def test_an_lstm_runs_on_litert_unrolled_with_the_same_outputs() -> None:
    import keras
    import numpy as np

    inputs = keras.Input((8, 4), name="x")
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.LSTM(3)(inputs)))
    batch = {"x": np.random.default_rng(0).normal(size=(5, 8, 4)).astype(np.float32)}

    copy, count = runtimes.unrolled(model)
    assert count == 1 and copy.get_layer(index=1).unroll
    np.testing.assert_allclose(copy(batch["x"]), model(batch["x"]), atol=1e-6)

    (runner,) = runtimes.convert_litert(model, {"x": (8, 4)}, threads=1)
    assert runner.unrolled and "builtin ops failed" in runner.note and "unrolled" in runner.note
    np.testing.assert_allclose(runner.run(batch), np.asarray(model(batch["x"])), atol=runtimes.TOLERANCE)
