"""TensorFlow against LiteRT, OpenVINO and ONNX Runtime on this CPU, per shipped model (issue 14).

Usage::

    python -m bench.runtimes [--models NAME...] [--runtimes NAME...] [--repeats N] [--json] [--out PATH]

TensorFlow stays the training framework; what serves a model is to be chosen by measurement
(``../shared/PERFORMANCE-NOTES.md``). The rule: adopt a runtime for a model only where it is at
least ``MIN_SPEEDUP`` (1.5x) faster than TensorFlow at batch 16 *and* its probabilities stay within
``TOLERANCE`` (1e-4) of TensorFlow's. This command measures; it decides nothing and writes no card.

For each model (default: every shipped one) it:

1. loads it as the service does (``ml.inference.Classifier.load``) and builds real inputs from
   ``BATCH`` pages the project renders (``ml.synthetic``, PNG bytes, ``inputs_from_bytes``);
2. converts the Keras model, in memory or a temporary folder (nothing is kept), to
   - OpenVINO: ``openvino.convert_model`` of the Keras model, compiled for "CPU" with
     ``INFERENCE_PRECISION_HINT=f32`` (row ``openvino``), and with the runtime's own defaults
     (row ``openvino-defaults``: bf16 on CPUs that have it, which the tolerance may refuse);
   - ONNX Runtime: ``tf2onnx.convert.from_function`` of a ``tf.function`` over the model
     (opset ``ONNX_OPSET``), run by ``onnxruntime`` on its CPU execution provider;
   - LiteRT: a TFLite flatbuffer from ``tf.lite.TFLiteConverter`` (builtin ops), run by
     ``ai_edge_litert``'s interpreter (XNNPACK). A recurrent layer's tensor lists do not lower
     to builtins; select TF ops then convert but need the Flex delegate, which ``ai_edge_litert``
     lacks; so the last try converts a copy with every recurrent layer unrolled
     (``unroll=True``, the same weights) and the row's note says so;
3. times TensorFlow's ``tf.function`` forward (the classifier's own) and each runtime at batch
   1 and 16: the median milliseconds per image over ``--repeats`` calls after a warm-up, the
   runtimes taking turns call by call so that a burst of load elsewhere hits them all alike;
4. compares each runtime's probabilities with TensorFlow's on the same inputs (max |diff|).

Every runtime gets the same number of threads (the cores this process may use). Inputs go in
as numpy arrays, by name, as the service would pass them. Prints a table per model with the
machine (``ml.device.machine_description``); ``--json`` writes the figures to
``bench-results/runtimes-<UTC time>.json``, ``--out PATH`` to PATH (a folder or a .json file).
TensorFlow's oneDNN switch (``TF_ENABLE_ONEDNN_OPTS``) only governs TensorFlow: OpenVINO's CPU
plugin is built on oneDNN whatever it says, ONNX Runtime's CPU provider uses its own MLAS
kernels, LiteRT its own and XNNPACK's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.metadata
import json
import logging
import os
import re
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-4  # max |probability difference| from TensorFlow's that a runtime may show
MIN_SPEEDUP = 1.5  # times faster than TensorFlow at the larger batch before a runtime is worth adopting
BATCH = 16  # the larger batch size, and the number of rendered pages
BATCH_SIZES = (1, BATCH)
WARMUP_CALLS = 3
ONNX_OPSET = 17
TENSORFLOW = "tensorflow"
RUNTIMES = ("openvino", "openvino-defaults", "onnxruntime", "litert")
PACKAGES = ("tensorflow-cpu", "keras", "openvino", "onnxruntime", "tf2onnx", "onnx", "ai-edge-litert")

Inputs = dict[str, np.ndarray]


# --- the rule and the table: plain Python, no TensorFlow ------------------------------------------


def speedup(tensorflow_ms: float | None, runtime_ms: float | None) -> float | None:
    """How many times faster than TensorFlow a runtime ran (None where either is unknown)."""
    if not tensorflow_ms or not runtime_ms:
        return None
    return round(tensorflow_ms / runtime_ms, 2)


def is_adoptable(
    speedup_at_batch: float | None,
    max_abs_difference: float | None,
    *,
    min_speedup: float = MIN_SPEEDUP,
    tolerance: float = TOLERANCE,
) -> bool:
    """Issue 14's rule: at least ``min_speedup`` times TensorFlow's speed at batch 16 and
    probabilities within ``tolerance`` of TensorFlow's; an unknown figure never qualifies."""
    if speedup_at_batch is None or max_abs_difference is None:
        return False
    if not (np.isfinite(speedup_at_batch) and np.isfinite(max_abs_difference)):
        return False
    return speedup_at_batch >= min_speedup and max_abs_difference <= tolerance


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(result: Mapping[str, Any], batch: int = BATCH) -> str:
    """One model's rows (``measure_model``'s result) as a fixed-width table, the notes under it."""
    heading = (
        f"{'runtime':<18} {'converts':<9} {'ms/img b1':>10} {f'ms/img b{batch}':>11} "
        f"{'x TF b1':>8} {f'x TF b{batch}':>9} {'max |diff|':>11}  adoptable"
    )
    lines = [f"{result['model']} ({result.get('representation', '?')})", heading, "-" * len(heading)]
    notes = []
    if result.get("error"):
        lines.append(f"FAILED: {result['error']}")
    for row in result.get("runtimes", []):
        converts = "unrolled" if row.get("unrolled") else "yes" if row.get("converts") else "NO"
        if row.get("converts") and row.get("error"):
            converts = "no run"
        adoptable = "-" if row["runtime"] == TENSORFLOW else ("YES" if row.get("adoptable") else "no")
        lines.append(
            f"{row['runtime']:<18} {converts:<9} "
            f"{_cell(row.get('ms_per_image_batch_1'), '.2f'):>10} "
            f"{_cell(row.get(f'ms_per_image_batch_{batch}'), '.2f'):>11} "
            f"{_cell(row.get('speedup_batch_1'), '.2f'):>8} "
            f"{_cell(row.get(f'speedup_batch_{batch}'), '.2f'):>9} "
            f"{_cell(row.get('max_abs_difference'), '.1e'):>11}  {adoptable}"
        )
        for key in ("note", "error"):
            if row.get(key):
                notes.append(f"  {row['runtime']}: {row[key]}")
    return "\n".join(lines + notes)


def render_header(report: Mapping[str, Any]) -> str:
    """The machine, the versions and the rule the figures are judged by."""
    versions = ", ".join(f"{name} {version}" for name, version in report.get("versions", {}).items())
    return "\n".join(
        [
            f"machine: {report.get('machine_text', 'not recorded')}",
            f"versions: {versions or 'not recorded'}",
            f"threads per runtime: {report.get('threads', '?')}; medians of {report.get('repeats', '?')} "
            f"calls after warm-up; adoptable = >= {report.get('min_speedup', MIN_SPEEDUP)}x TensorFlow at "
            f"batch {report.get('batch', BATCH)} and max |diff| <= {report.get('tolerance', TOLERANCE):g}",
        ]
    )


def adoptable_text(report: Mapping[str, Any]) -> str:
    """``adoptable: <runtime> for <model>, ...`` or ``adoptable: none``."""
    found = [
        f"{row['runtime']} for {result['model']}"
        for result in report.get("models", [])
        for row in result.get("runtimes", [])
        if row.get("adoptable")
    ]
    return f"adoptable: {', '.join(found) if found else 'none'}"


def render_report(report: Mapping[str, Any]) -> str:
    """The whole run: the header, each model's table, then what is adoptable."""
    batch = report.get("batch", BATCH)
    tables = [render_table(result, batch) for result in report.get("models", [])]
    return "\n\n".join([render_header(report), *tables, adoptable_text(report)])


def error_text(error: BaseException, limit: int = 300) -> str:
    """The line that says what went wrong: converters print pages of MLIR and stack traces, whose
    useful line is the last ``error:`` one (TFLite), a ``No conversion rule`` one (OpenVINO) or
    the first line of a Python exception."""
    message = str(error)
    found = re.findall(r"error: (.+)", message) or re.findall(r"(No conversion rule[^\n]+)", message)
    line = found[-1] if found else next((part.strip() for part in message.splitlines() if part.strip()), "")
    line = line.replace("\\n", " ").strip()
    text = f"{type(error).__name__}: {line}" if line else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- converting and running -------------------------------------------------------------------------


@dataclass
class Runner:
    """A model converted to one runtime: ``run`` maps named inputs to probabilities."""

    name: str
    run: Callable[[Inputs], np.ndarray]
    note: str = ""
    convert_seconds: float = 0.0
    unrolled: bool = False  # converted from a copy with the recurrent layers unrolled


def _signature(shapes: Mapping[str, tuple[int, ...]]) -> list[Any]:
    import tensorflow as tf

    return [tf.TensorSpec((None, *shape), tf.float32, name=name) for name, shape in shapes.items()]


def _positional_function(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> Any:
    """A ``tf.function`` over the model taking one named tensor per input: converters name the
    graph's inputs after the specs, so each runtime is fed by the same names as the model."""
    import tensorflow as tf

    names = list(shapes)

    def forward(*tensors: Any) -> Any:
        inputs = tensors[0] if len(tensors) == 1 else dict(zip(names, tensors, strict=True))
        return model(inputs, training=False)

    return tf.function(forward, input_signature=_signature(shapes))


def unrolled(model: Any) -> tuple[Any, int]:
    """A copy of ``model`` with every recurrent layer unrolled (same weights), and how many.

    An unrolled LSTM is a fixed chain of matrix products instead of a ``while`` loop over tensor
    lists, which TFLite's builtin ops can express; the sequence length must be static (it is in
    the hybrids: the feature map's 32 columns)."""

    def walk(config: Any) -> int:
        count = 0
        if isinstance(config, dict):
            recurrent = config.get("class_name") in ("LSTM", "GRU", "SimpleRNN")
            if recurrent and not config["config"].get("unroll"):
                config["config"]["unroll"] = True
                count += 1
            count += sum(walk(value) for value in config.values())
        elif isinstance(config, list):
            count += sum(walk(value) for value in config)
        return count

    config = model.get_config()
    count = walk(config)
    if not count:
        return model, 0
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy, count


def _feed_name(tensor_name: str, names: Iterable[str]) -> str:
    """The model input a converted graph's input tensor stands for (``serving_default_x:0`` is x)."""
    bare = re.sub(r"^serving_default_|:\d+$", "", tensor_name)
    for name in names:
        if bare == name:
            return name
    matches = [name for name in names if name in tensor_name]
    if len(matches) != 1:
        raise ValueError(f"cannot tell which input {tensor_name!r} is among {list(names)}")
    return matches[0]


def convert_openvino(model: Any, shapes: Mapping[str, tuple[int, ...]], threads: int) -> list[Runner]:
    """OpenVINO twice from one conversion: f32 (what the tolerance asks) and the runtime's defaults."""
    import openvino as ov

    start = time.perf_counter()
    converted = ov.convert_model(model)
    convert_seconds = time.perf_counter() - start
    core = ov.Core()
    runners = []
    for name, config in (
        ("openvino", {"INFERENCE_PRECISION_HINT": "f32"}),
        ("openvino-defaults", {}),
    ):
        start = time.perf_counter()
        compiled = core.compile_model(converted, "CPU", {**config, "INFERENCE_NUM_THREADS": threads})
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        feed = {port.get_any_name(): _feed_name(port.get_any_name(), shapes) for port in compiled.inputs}

        def run(inputs: Inputs, compiled: Any = compiled, feed: dict[str, str] = feed) -> np.ndarray:
            return np.array(compiled({port: inputs[name] for port, name in feed.items()})[0])

        seconds = convert_seconds + time.perf_counter() - start
        runners.append(Runner(name, run, f"inference precision {precision}", round(seconds, 2)))
    return runners


def convert_onnxruntime(model: Any, shapes: Mapping[str, tuple[int, ...]], threads: int) -> list[Runner]:
    """tf2onnx from a ``tf.function`` over the model, run by ONNX Runtime's CPU provider."""
    import onnxruntime as ort
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    start = time.perf_counter()
    proto, _ = tf2onnx.convert.from_function(
        _positional_function(model, shapes), input_signature=_signature(shapes), opset=ONNX_OPSET
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {tensor.name: _feed_name(tensor.name, shapes) for tensor in session.get_inputs()}

    def run(inputs: Inputs) -> np.ndarray:
        return session.run(None, {tensor: inputs[name] for tensor, name in feed.items()})[0]

    seconds = round(time.perf_counter() - start, 2)
    return [Runner("onnxruntime", run, f"tf2onnx opset {ONNX_OPSET}, CPUExecutionProvider", seconds)]


def _tflite_flatbuffer(
    model: Any, shapes: Mapping[str, tuple[int, ...]], *, select_ops: bool = False
) -> bytes:
    import tensorflow as tf

    # From the concrete function alone: the converter then freezes the weights into the file
    # (with the model as its trackable object they stay resource variables, read as NaN here).
    concrete = _positional_function(model, shapes).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if select_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False
    with _quiet_stderr():
        return converter.convert()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a while: the TFLite converter prints each failing op's MLIR
    location there, pages of it, while its exception already says what failed."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _litert_runner(flatbuffer: bytes, shapes: Mapping[str, tuple[int, ...]], threads: int) -> Any:
    """``run`` over one ``ai_edge_litert`` interpreter per batch size (resizing one back and
    forth would reallocate its tensors on every call)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters: dict[int, Any] = {}

    def interpreter_for(size: int) -> Any:
        if size not in interpreters:
            interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
            for detail in interpreter.get_input_details():
                shape = shapes[_feed_name(detail["name"], shapes)]
                interpreter.resize_tensor_input(detail["index"], (size, *shape))
            interpreter.allocate_tensors()
            interpreters[size] = interpreter
        return interpreters[size]

    def run(inputs: Inputs) -> np.ndarray:
        interpreter = interpreter_for(len(next(iter(inputs.values()))))
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], inputs[_feed_name(detail["name"], shapes)])
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return run


def convert_litert(model: Any, shapes: Mapping[str, tuple[int, ...]], threads: int) -> list[Runner]:
    """TFLite builtin ops; failing that, select TF ops if this interpreter runs them, else the
    graph with its recurrent layers unrolled. The note says which, and why the others failed."""
    start = time.perf_counter()
    unroll = False
    try:
        flatbuffer, note = _tflite_flatbuffer(model, shapes), "builtin ops"
    except Exception as builtin_error:  # the converter raises ConverterError and friends
        builtins_failed = f"builtin ops failed ({error_text(builtin_error, 160)})"
        try:
            flatbuffer = _tflite_flatbuffer(model, shapes, select_ops=True)
            _litert_runner(flatbuffer, shapes, threads)(
                {name: np.zeros((1, *shape), np.float32) for name, shape in shapes.items()}
            )
            note = f"select TF ops; {builtins_failed}"
        except Exception as select_error:
            copy, count = unrolled(model)
            if not count:
                raise
            flatbuffer, unroll = _tflite_flatbuffer(copy, shapes), True
            note = (
                f"builtin ops with {count} recurrent layer(s) unrolled (same weights); {builtins_failed}; "
                f"select TF ops failed here ({error_text(select_error, 160)})"
            )
    runner = Runner("litert", _litert_runner(flatbuffer, shapes, threads), note, unrolled=unroll)
    runner.convert_seconds = round(time.perf_counter() - start, 2)
    return [runner]


CONVERTERS: dict[str, Callable[[Any, Mapping[str, tuple[int, ...]], int], list[Runner]]] = {
    "openvino": convert_openvino,
    "onnxruntime": convert_onnxruntime,
    "litert": convert_litert,
}


def _converter_for(runtime: str) -> str:
    return "openvino" if runtime.startswith("openvino") else runtime


# --- measuring --------------------------------------------------------------------------------------


def rendered_inputs(representation: str, count: int = BATCH) -> Inputs:
    """``count`` pages the project renders (the classes in turn) as this representation's batch."""
    from bench.gpu_check import rendered_pages
    from ml import representations

    pages = rendered_pages(count)
    return representations.stack([representations.inputs_from_bytes(page, representation) for page in pages])


def time_runners(runners: Sequence[Runner], batch: Inputs, repeats: int) -> dict[str, float]:
    """Median ms per image of each runner on ``batch``, the runners taking turns call by call."""
    size = len(next(iter(batch.values())))
    for runner in runners:
        for _ in range(WARMUP_CALLS):
            runner.run(batch)
    timings: dict[str, list[float]] = {runner.name: [] for runner in runners}
    for _ in range(repeats):
        for runner in runners:
            start = time.perf_counter()
            np.asarray(runner.run(batch))
            timings[runner.name].append((time.perf_counter() - start) * 1000 / size)
    return {name: round(statistics.median(values), 3) for name, values in timings.items()}


def measure_model(
    name: str, runtimes: Sequence[str] = RUNTIMES, repeats: int = 20, threads: int | None = None
) -> dict[str, Any]:
    """One model's rows: TensorFlow's, then each runtime's, each converted, checked and timed."""
    from ml.device import usable_cores
    from ml.inference import Classifier, error_summary
    from ml.models import resolve_model
    from ml.representations import get

    threads = threads or usable_cores()
    result: dict[str, Any] = {"model": name}
    try:
        classifier = Classifier.load(resolve_model(name))
    except Exception as error:  # a model the service could not load either: report, go on
        result["error"] = error_summary(error)
        return result
    shapes = dict(get(classifier.representation).shapes)
    result["representation"] = classifier.representation
    batch = rendered_inputs(classifier.representation)
    batches = {size: {key: value[:size] for key, value in batch.items()} for size in BATCH_SIZES}

    forward = classifier._forward  # the service's own tf.function, fixed input signature
    runners = [Runner(TENSORFLOW, lambda inputs: np.asarray(forward(inputs)), "the classifier's tf.function")]
    rows: dict[str, dict[str, Any]] = {TENSORFLOW: {"runtime": TENSORFLOW, "converts": True}}
    for converter in dict.fromkeys(_converter_for(runtime) for runtime in runtimes):
        wanted = [runtime for runtime in runtimes if _converter_for(runtime) == converter]
        try:
            converted = CONVERTERS[converter](classifier._model, shapes, threads)
        except Exception as error:  # a converter or runtime that cannot take this model: say why
            for runtime in wanted:
                rows[runtime] = {"runtime": runtime, "converts": False, "error": error_text(error)}
            continue
        for runner in converted:
            if runner.name not in wanted:
                continue
            row = {
                "runtime": runner.name,
                "converts": True,
                "unrolled": runner.unrolled,
                "convert_seconds": runner.convert_seconds,
            }
            try:  # a graph that converts may still fail to run
                runner.run(batches[1])
                runners.append(runner)
            except Exception as error:
                row["error"] = f"converted but failed to run: {error_text(error)}"
            rows[runner.name] = row

    reference = {size: np.asarray(runners[0].run(inputs), np.float64) for size, inputs in batches.items()}
    for runner in runners:
        rows[runner.name]["note"] = runner.note
        if runner.name != TENSORFLOW:
            difference = max(
                float(np.abs(np.asarray(runner.run(inputs), np.float64) - reference[size]).max())
                for size, inputs in batches.items()
            )
            rows[runner.name]["max_abs_difference"] = float(f"{difference:.3g}")
    for size, inputs in batches.items():
        for runtime, milliseconds in time_runners(runners, inputs, repeats).items():
            rows[runtime][f"ms_per_image_batch_{size}"] = milliseconds
    for row in rows.values():
        for size in BATCH_SIZES:
            key = f"ms_per_image_batch_{size}"
            row[f"speedup_batch_{size}"] = speedup(rows[TENSORFLOW].get(key), row.get(key))
        if row["runtime"] != TENSORFLOW:
            row["adoptable"] = is_adoptable(row.get(f"speedup_batch_{BATCH}"), row.get("max_abs_difference"))
    result["runtimes"] = [rows[TENSORFLOW]] + [rows[runtime] for runtime in runtimes if runtime in rows]
    del runners, classifier
    gc.collect()
    return result


def versions() -> dict[str, str]:
    """Installed versions of TensorFlow and the runtimes (``missing`` for one not installed)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def output_path(out: Path | None) -> Path:
    """Where ``--json``/``--out`` write: a .json path as given, else a timestamped file in a folder."""
    stamp = f"runtimes-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    if out is None:
        return Path("bench-results") / stamp
    return out if out.suffix == ".json" else out / stamp


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtimes", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", help="shipped model names or .keras paths (default: all)")
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES), help="runtimes")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per batch size (default 20)")
    parser.add_argument("--json", action="store_true", help="write the figures to bench-results/")
    parser.add_argument("--out", type=Path, help="write the figures to this .json file or folder")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    from ml.cards import machine_text
    from ml.device import configure_tensorflow, machine_description, usable_cores
    from ml.models import list_model_cards

    # tf2onnx and OpenVINO call a one-input model with a tuple; Keras warns, and the outputs agree.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match", category=UserWarning)
    device = configure_tensorflow()
    machine = machine_description()
    names = args.models or [card["name"] for card in list_model_cards()]
    report: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.runtimes", *(sys.argv[1:] if argv is None else argv)]),
        "device": device,
        "machine": machine,
        "machine_text": machine_text(machine),
        "versions": versions(),
        "threads": usable_cores(),
        "repeats": args.repeats,
        "batch": BATCH,
        "tolerance": TOLERANCE,
        "min_speedup": MIN_SPEEDUP,
        "models": [],
    }
    print(render_header(report), flush=True)
    for name in names:
        result = measure_model(name, args.runtimes, args.repeats, report["threads"])
        report["models"].append(result)
        print("\n" + render_table(result), flush=True)
    print("\n" + adoptable_text(report))
    if args.json or args.out:
        out = output_path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 1 if any("error" in result for result in report["models"]) else 0


if __name__ == "__main__":
    sys.exit(main())
