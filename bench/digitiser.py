"""What the digitiser costs beside a plain decode of the same file (the target: at most twice the decode).

Usage::

    python -m bench.digitiser [--data DIR] [--pages 60] [--repeats 3] [--json]

For each page (the dev images under ``--data``, default ECGSITE_DEV_DATA or
../shared/data/khan-ecg; pages ``ml.synthetic`` renders when there are none), in one run on
this machine:

- a plain full-size Pillow decode of the file (``Image.open(...).load()``);
- the digitiser (``ml.traces.digitise``) on the decoded page's red channel, the work it adds
  to the decode the worker does anyway;
- their ratio, with the machine named beside the figures.

Each figure is the best of ``--repeats`` passes over all pages, in milliseconds per page.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ml.cards import machine_text
from ml.device import machine_description
from ml.preprocess import decode_image
from ml.traces import digitise

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def default_data_dir() -> Path:
    return Path(
        os.environ.get("ECGSITE_DEV_DATA")
        or Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "khan-ecg"
    )


def page_files(data_dir: Path, limit: int) -> list[bytes]:
    """Up to `limit` page files under `data_dir`, in name order; [] when there is none."""
    if not data_dir.is_dir():
        return []
    files = sorted(path for path in data_dir.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    return [path.read_bytes() for path in files[:limit]]


def synthetic_pages(count: int) -> list[bytes]:
    from ml.synthetic import render_ecg  # only when there are no dev images

    pages = []
    for seed in range(count):
        out = io.BytesIO()
        render_ecg(("normal", "mi", "history_mi", "abnormal")[seed % 4], seed).save(out, format="PNG")
        pages.append(out.getvalue())
    return pages


def _best_ms_per_page(work: Callable[[Any], object], items: Sequence[Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, (time.perf_counter() - started) / len(items) * 1000)
    return best


def measure(pages: Sequence[bytes], repeats: int = 3) -> dict[str, Any]:
    """The figures for `pages` (encoded files), measured in this one run."""
    reds = [decode_image(page).getchannel("R") for page in pages]
    decode_ms = _best_ms_per_page(lambda page: Image.open(io.BytesIO(page)).load(), pages, repeats)
    digitise_ms = _best_ms_per_page(digitise, reds, repeats)
    return {
        "pages": len(pages),
        "machine": machine_description(),
        "pillow_decode_ms": round(decode_ms, 2),
        "digitise_ms": round(digitise_ms, 2),
        "ratio": round(digitise_ms / decode_ms, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.digitiser", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="folder of page images (default: the dev images)"
    )
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    pages = page_files(data_dir, args.pages)
    source = f"{len(pages)} pages from {data_dir}"
    if not pages:
        pages = synthetic_pages(min(args.pages, 12))
        source = f"{len(pages)} synthetic pages (no images in {data_dir})"
    figures = measure(pages, args.repeats) | {"source": source}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"digitiser on {figures['source']}, {machine_text(figures['machine'])}:")
        print(f"  plain Pillow decode of the file  {figures['pillow_decode_ms']:8.2f} ms/page")
        print(f"  ml.traces.digitise               {figures['digitise_ms']:8.2f} ms/page")
        print(f"  ratio                            {figures['ratio']:8.2f} x  (target: at most 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
