"""What an explanation (``ml.explain``) costs beside the classification of the same pages.

Usage::

    python -m bench.explain [--data DIR] [--pages 32] [--batch 8] [--repeats 3] [--model NAME] [--json]

The default model reads ``--pages`` pages (the dev images, or pages ``ml.synthetic`` renders
when there are none) once; then, in one run on this machine, in batches of ``--batch`` as the
worker's chunks: the forward pass that classifies them, and the explanation of the labels it
gave (Grad-CAM's pass and the 16-step integrated-gradients path), each the best of
``--repeats`` passes, in milliseconds per page, with their ratio and the machine named.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.digitiser import synthetic_pages
from ml.cards import machine_text
from ml.device import machine_description
from ml.digitiser_report import default_data_dir, page_files
from ml.inference import Classifier, PageInputs
from ml.models import resolve_model


def _pages(data_dir: Path, count: int) -> tuple[list[bytes], str]:
    files = page_files(data_dir, count)
    if files:
        return [path.read_bytes() for path in files], f"{len(files)} pages from {data_dir}"
    return synthetic_pages(count), f"{count} synthetic pages (no images in {data_dir})"


def _best_ms_per_page(run: Callable[[], None], pages: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000 / pages


def measure(classifier: Classifier, read: Sequence[PageInputs], batch: int, repeats: int) -> dict[str, float]:
    chunks = [list(read[start : start + batch]) for start in range(0, len(read), batch)]
    results = [classifier.classify(chunk) for chunk in chunks]
    for chunk, result in zip(chunks, results, strict=True):  # compiles, off the clock
        classifier.explain(chunk, result)

    def classify() -> None:
        for chunk in chunks:
            classifier.classify(chunk)

    def explain() -> None:
        for chunk, result in zip(chunks, results, strict=True):
            classifier.explain(chunk, result)

    classify_ms = _best_ms_per_page(classify, len(read), repeats)
    explain_ms = _best_ms_per_page(explain, len(read), repeats)
    return {"classify_ms": classify_ms, "explain_ms": explain_ms, "ratio": explain_ms / classify_ms}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of pages (default: the dev images)")
    parser.add_argument("--pages", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="a shipped model's name or a .keras path")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    classifier = Classifier.load(resolve_model(args.model))
    if not classifier.explains:
        print(f"error: {classifier.name} gives no explanations (only the hybrid models do)", file=sys.stderr)
        return 2
    pages, source = _pages(args.data or default_data_dir(), args.pages)
    read = [classifier.read_page(page) for page in pages]
    figures = measure(classifier, read, args.batch, args.repeats) | {
        "model": classifier.name,
        "source": source,
        "batch": args.batch,
        "machine": machine_description(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{classifier.name} on {source}, batches of {args.batch}, {machine_text(figures['machine'])}:")
        print(f"  classify (forward pass)   {figures['classify_ms']:8.2f} ms/page")
        print(f"  explain (ml.explain)      {figures['explain_ms']:8.2f} ms/page")
        print(f"  ratio                     {figures['ratio']:8.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
