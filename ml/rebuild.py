"""Carry a trained model's weights onto the graph that ``ml.network`` builds today.

Usage::

    python -m ml.rebuild MODEL --check-data DIR [--out PATH]

Why: hybrid-v2, v3 and v4 were built with a ``DepthwiseConv2D`` of strides (2, 1), which only
oneDNN's kernel runs (on by default on recent x86 CPUs only): on an AVX2 CPU, ARM or a GPU
every forward pass failed. The builder now makes the same function from kernels every device
runs (``ml.network``: the depthwise at stride 1, then only the outputs a strided kernel would
compute), and that graph has the same weights, so a model needs no retraining to move to it.

1. Load ``MODEL`` (a shipped model's name or a ``.keras`` path; loading runs no kernel) and
   build its architecture anew, one member per member for an ensemble; copy each layer's
   weights by name, refusing unless every weighted layer finds its partner with equal shapes.
2. Check on every image of ``DIR``: the original file on oneDNN's kernels (a child process
   with ``TF_ENABLE_ONEDNN_OPTS=1``, the only ones that run it) against the rebuilt one on the
   plain kernels (``TF_ENABLE_ONEDNN_OPTS=0``). Nothing is written unless every probability
   agrees within ``TOLERANCE`` and every label is the same.
3. Write the rebuilt model over ``MODEL`` (or to ``--out``) and its card: sha256 and size, a
   ``rebuilt`` record (the original's sha256, why, the check's figures), the dev evaluation
   re-run on the new file (``ml.evaluate``, as ``make verify-models`` checks) and timings
   taken on this machine (``ml.timing``). Cross-validated figures, calibration and decision
   rule stay as they were: they describe the same function.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml import representations
from ml.device import configure_tensorflow
from ml.evaluate import labelled_files
from ml.models import card_path, read_card, resolve_model
from ml.timing import card_timing, model_input, timing_samples
from ml.train import average_models, dev_evaluation, sha256_file

# float32 forward passes through different kernels (oneDNN's and Eigen's) differ in rounding.
TOLERANCE = 1e-5


def carry_weights(source: Any, target: Any) -> int:
    """Copy every weighted layer of ``source`` into the layer of the same name (and the same
    nesting) in ``target``; return how many layers were copied.

    Raises ``ValueError`` when a weighted layer has no partner, or its weights' shapes differ.
    """
    copied = 0
    source_layers = {layer.name: layer for layer in source.layers}
    target_layers = {layer.name: layer for layer in target.layers}
    for name, layer in target_layers.items():
        if not layer.weights:
            continue
        partner = source_layers.get(name)
        if partner is None:
            raise ValueError(f"layer {name!r} of the new graph has no weighted partner in {source.name}.")
        if hasattr(layer, "layers"):  # a nested model: an ensemble's member
            copied += carry_weights(partner, layer)
            continue
        shapes = [tuple(w.shape) for w in partner.weights], [tuple(w.shape) for w in layer.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"layer {name!r}: weights {shapes[0]} cannot become {shapes[1]}.")
        layer.set_weights(partner.get_weights())
        copied += 1
    left_behind = sorted(
        name for name, layer in source_layers.items() if layer.weights and name not in target_layers
    )
    if left_behind:
        raise ValueError(f"weighted layers of {source.name} missing from the new graph: {left_behind}.")
    return copied


def rebuild(source: Any, *, arch: str, members: int = 1) -> Any:
    """A fresh ``arch`` graph (``members`` of them averaged, as ``ml.train`` ships an ensemble)
    with ``source``'s weights."""
    from ml.network import build_model  # imports Keras: lazy, so importing this module stays cheap

    built = [build_model(arch) for _ in range(members)]
    target = built[0] if members == 1 else average_models(built, arch=arch)
    if members == 1:
        target.name = source.name
    carry_weights(source, target)
    return target


def _probabilities(model_file: Path, inputs_file: Path) -> np.ndarray:
    """The model's raw output for the saved inputs, in this process's TensorFlow."""
    import keras  # lazy TensorFlow: the child reads TF_ENABLE_ONEDNN_OPTS when Keras loads

    model = keras.models.load_model(model_file, compile=False)
    with np.load(inputs_file) as saved:
        inputs = {name: saved[name] for name in saved.files}
    return np.asarray(model.predict(model_input(inputs), batch_size=32, verbose=0), np.float64)


def probabilities_in_child(model_file: Path, inputs_file: Path, *, onednn: bool) -> np.ndarray:
    """``_probabilities`` in a fresh Python with oneDNN's kernels turned on or off (TensorFlow
    reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import)."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "probabilities.npy"
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "ml.rebuild", "--probabilities-of", str(model_file)]
        command += ["--inputs", str(inputs_file), "--out", str(out)]
        subprocess.run(command, env=env, check=True, cwd=Path(__file__).resolve().parent.parent)
        return np.load(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.rebuild``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", help="a shipped model's name or a .keras path")
    parser.add_argument("--check-data", type=Path, help="folder of <class>/<image> pages to check on")
    parser.add_argument("--out", type=Path, help="where to write (default: over MODEL)")
    # Internal: the child processes of the check.
    parser.add_argument("--probabilities-of", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probabilities_of:
        np.save(args.out, _probabilities(args.probabilities_of, args.inputs))
        return 0
    if not args.model or not args.check_data:
        parser.error("MODEL and --check-data are required")

    # Keras loads only past the argument checks (ml.network imports it).
    from ml.network import unsupported_operations

    source_file = resolve_model(args.model)
    out = args.out or source_file
    card = read_card(source_file)
    if not card.get("architecture"):
        print(f"error: {source_file} has no model card naming its architecture", file=sys.stderr)
        return 2
    configure_tensorflow()
    import keras  # lazy TensorFlow, as above

    source = keras.models.load_model(source_file, compile=False)
    problems = unsupported_operations(source)
    if not problems:
        print(f"{source_file} already runs on every device's kernels; nothing to do.")
        return 0
    members = int(card.get("ensemble", {}).get("members", 1))
    try:
        target = rebuild(source, arch=card["architecture"], members=members)
    except ValueError as error:
        print(f"error: cannot carry {source_file}'s weights over: {error}", file=sys.stderr)
        return 2

    representation = card.get("input", {}).get("representation", "page")
    files = labelled_files(args.check_data)
    print(f"checking on {len(files)} images of {args.check_data} ...", flush=True)
    samples = [representations.inputs_from_bytes(path.read_bytes(), representation) for path, _ in files]
    with tempfile.TemporaryDirectory() as scratch:
        inputs_file, rebuilt_file = Path(scratch) / "inputs.npz", Path(scratch) / out.name
        np.savez(inputs_file, **representations.stack(samples))
        target.save(rebuilt_file)
        before = probabilities_in_child(source_file, inputs_file, onednn=True)
        after = probabilities_in_child(rebuilt_file, inputs_file, onednn=False)
        difference = float(np.abs(before - after).max())
        same_labels = int((before.argmax(1) == after.argmax(1)).sum())
        print(f"max |probability difference| {difference:.2e}; same label on {same_labels}/{len(files)}")
        if difference > TOLERANCE or same_labels != len(files):
            print(f"error: the rebuilt model differs from {source_file}; nothing written", file=sys.stderr)
            return 1
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(rebuilt_file.read_bytes())

    card.update(
        file_sha256=sha256_file(out),
        file_bytes=out.stat().st_size,
        rebuilt={
            "date": dt.date.today().isoformat(),
            "command": shlex.join(["python", "-m", "ml.rebuild", *sys.argv[1:]]),
            "from_file_sha256": card.get("file_sha256"),
            "why": problems,
            "how": "the same weights on ml.network's graph of plain kernels (stride-1 depthwise, "
            "then the outputs a strided kernel computes)",
            "check": {
                "images": len(files),
                "data": args.check_data.name,
                "original": "TF_ENABLE_ONEDNN_OPTS=1 (oneDNN, the only kernels that run it)",
                "rebuilt": "TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's plain kernels)",
                "max_abs_probability_difference": float(f"{difference:.3g}"),
                "same_label": same_labels,
            },
        },
    )
    card.update(card_timing(target, timing_samples(args.check_data), representation))
    card_path(out).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    card["dev_evaluation"] = dev_evaluation(args.check_data, out)
    card_path(out).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {card_path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
