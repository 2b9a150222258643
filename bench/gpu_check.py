"""GPU check: every shipped model on the GPU, its outputs against the CPU's, and its speed.

Usage::

    python -m bench.gpu_check [--models NAME...] [--device /GPU:0] [--out DIR]
                              [--pages 32] [--repeats 20] [--write-cards]

``make gpu-check`` runs it on a GPU worker's install (``requirements-gpu.txt``). For each model
(default: every shipped one) it classifies ``--pages`` pages the project renders (``ml.synthetic``)
on ``--device`` and on the CPU, and reports:

- the largest absolute difference between the two devices' probabilities (must be ≤ 1e-4);
- milliseconds per image of the forward pass on ``--device`` at batch size 1 and ``--pages``
  (``tf.function``, medians of ``--repeats`` calls after a warm-up; preprocessing excluded,
  as it runs on the CPU either way), and the same on the CPU beside them.

Prints a table and writes the figures, with the GPU's and CPU's names, as JSON to
``<out>/gpu-check-<UTC time>.json``. Exit code 0 when every model ran on the device within the
tolerance, 1 when one did not, 2 when TensorFlow sees no such device (on a machine without a
GPU, ``--device /CPU:0`` runs the same comparison CPU against CPU, as the tests do).
``--write-cards`` also records each model's figures as ``gpu_check`` in its model card, which
``docs/MODELS.md`` (``make models-doc``) shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-4


def rendered_pages(count: int) -> list[bytes]:
    """``count`` synthetic pages, the classes in turn, as PNG bytes."""
    from ml.labels import CLASSES
    from ml.synthetic import render_ecg

    pages = []
    for index in range(count):
        buffer = io.BytesIO()
        render_ecg(CLASSES[index % len(CLASSES)], seed=index).save(buffer, format="PNG")
        pages.append(buffer.getvalue())
    return pages


def _milliseconds_per_image(forward: Any, inputs: Any, batch_size: int, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(forward(inputs))
        timings.append((time.perf_counter() - start) * 1000 / batch_size)
    return round(statistics.median(timings), 3)


def check_model(name: str, device: str, pages: Sequence[bytes], repeats: int = 20) -> dict[str, Any]:
    """One model's comparison and timings on ``device``; ``error`` says why it failed there."""
    import keras
    import tensorflow as tf

    from ml import representations
    from ml.inference import error_summary
    from ml.models import read_card, resolve_model
    from ml.timing import model_input

    path = resolve_model(name)
    representation = read_card(path).get("input", {}).get("representation", "page")
    batch = representations.stack([representations.inputs_from_bytes(page, representation) for page in pages])
    result: dict[str, Any] = {"model": name, "device": device}

    def run_on(where: str) -> tuple[np.ndarray, dict[str, float]]:
        with tf.device(where):
            model = keras.models.load_model(path, compile=False)
            forward = tf.function(lambda x: model(x, training=False))
            full = model_input({k: tf.constant(v) for k, v in batch.items()})
            one = model_input({k: tf.constant(v[:1]) for k, v in batch.items()})
            outputs = np.asarray(forward(full), np.float64)  # also traces and warms up
            forward(one)
            batched = _milliseconds_per_image(forward, full, len(pages), repeats)
            return outputs, {
                "ms_per_image_batch_1": _milliseconds_per_image(forward, one, 1, repeats),
                f"ms_per_image_batch_{len(pages)}": batched,
            }

    try:
        on_device, device_timings = run_on(device)
        on_cpu, cpu_timings = run_on("/CPU:0")
    except Exception as error:  # a kernel the device lacks, out of memory: report, go on
        result["error"] = error_summary(error)
        return result
    result.update(device_timings)
    result.update({f"cpu_{key}": value for key, value in cpu_timings.items()})
    result["max_abs_difference_vs_cpu"] = float(f"{np.abs(on_device - on_cpu).max():.3g}")
    result["same_label"] = int((on_device.argmax(1) == on_cpu.argmax(1)).sum())
    result["ok"] = result["max_abs_difference_vs_cpu"] <= TOLERANCE
    return result


def write_cards(report: dict[str, Any]) -> None:
    """Record each checked model's figures as ``gpu_check`` in its card."""
    from ml.models import card_path, read_card, resolve_model

    shared = {key: report[key] for key in ("device", "gpu", "tensorflow", "pages", "tolerance")}
    for result in report["models"]:
        path = resolve_model(result["model"])
        card = read_card(path)
        card["gpu_check"] = {"date": report["created"][:10], **shared, **result, "command": report["command"]}
        card_path(path).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", help="shipped model names (default: all)")
    parser.add_argument("--device", default="/GPU:0", help="TensorFlow device to check (default /GPU:0)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for the JSON")
    parser.add_argument("--pages", type=int, default=32, help="rendered pages, the larger batch size")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per batch size")
    parser.add_argument("--write-cards", action="store_true", help="record the figures in each model card")
    args = parser.parse_args(argv)

    from ml.device import configure_tensorflow, machine_description
    from ml.models import list_model_cards

    configure_tensorflow()
    import tensorflow as tf

    kind, _, index = args.device.strip("/").upper().partition(":")
    devices = tf.config.list_logical_devices(kind)
    if not devices or int(index or 0) >= len(devices):
        print(
            f"error: TensorFlow sees no {args.device} here (devices: "
            f"{[d.name for d in tf.config.list_logical_devices()]}). On a GPU machine install "
            "requirements-gpu.txt (tensorflow[and-cuda]) and check `nvidia-smi`.",
            file=sys.stderr,
        )
        return 2
    gpus = tf.config.list_physical_devices("GPU")
    names = args.models or [card["name"] for card in list_model_cards()]
    pages = rendered_pages(args.pages)
    report = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.gpu_check", *sys.argv[1:]]),
        "device": args.device,
        "gpu": tf.config.experimental.get_device_details(gpus[0]).get("device_name") if gpus else None,
        "tensorflow": tf.__version__,
        "cpu": machine_description(),
        "tolerance": TOLERANCE,
        "pages": args.pages,
        "models": [],
    }
    batch_heading = f"ms/img b{args.pages}"
    print(f"{'model':<14} {'max |dp| vs CPU':>16} {'ms/img b1':>10} {batch_heading:>11}  on {args.device}")
    for name in names:
        result = check_model(name, args.device, pages, args.repeats)
        report["models"].append(result)
        if "error" in result:
            print(f"{name:<14} FAILED: {result['error']}")
            continue
        difference, batched = result["max_abs_difference_vs_cpu"], result[f"ms_per_image_batch_{args.pages}"]
        print(
            f"{name:<14} {difference:>16.2e} {result['ms_per_image_batch_1']:>10.2f} {batched:>11.2f}"
            + ("" if result["ok"] else "  OVER TOLERANCE")
        )
    if args.write_cards:
        write_cards(report)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"gpu-check-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all(result.get("ok") for result in report["models"]) else 1


if __name__ == "__main__":
    sys.exit(main())
