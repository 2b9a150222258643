"""Photos of printouts, measured: does the guard accept them, and does the digitiser read them,
before and after ``ml.rectify`` straightens them (issue 15)?

Usage::

    python -m ml.photo_report [--data DIR] [--every 6] [--seed 1000] [--out ml/reports/photos.json]

For every ``--every``-th page image under ``--data`` (default: the dev images, in name order),
one desk photo and one screen photo (``ml.photos``, seed ``--seed`` + the page's index). For
each kind: how many photos the upload guard (``ml.guard``) accepts as they are and after
``rectify``; how far the corners ``rectify`` found lie from where the page went (photos whose
margin was not cropped); the digitiser's physiology checks (``ml.digitiser_report``: Einthoven,
Goldberger, lead II panel against the rhythm strip) on the rectified pages, beside the same
checks on the scans themselves; and the milliseconds ``rectify`` took. The figures go to
``--out`` as JSON and a summary is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.cards import machine_text
from ml.device import machine_description
from ml.digitiser_report import default_data_dir, page_files, physiology
from ml.guard import check_page
from ml.photos import PHOTO_KINDS, photograph
from ml.preprocess import decode_image, red_channel
from ml.rectify import rectify
from ml.traces import digitise, twelve_leads

REPORT = Path(__file__).resolve().parent / "reports" / "photos.json"
CHECKS = ("einthoven", "goldberger", "panel_vs_rhythm")


def _checks(page: Image.Image) -> dict[str, float]:
    return physiology(twelve_leads(digitise(red_channel(page))))


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    finite = np.array([value for value in values if np.isfinite(value)], dtype=float)
    if not finite.size:
        return {"median": None, "p10": None, "p90": None, "count": 0}
    return {
        "median": round(float(np.median(finite)), 3),
        "p10": round(float(np.percentile(finite, 10)), 3),
        "p90": round(float(np.percentile(finite, 90)), 3),
        "count": int(finite.size),
    }


def measure(pages: Sequence[Image.Image], seed: int = 1000) -> dict[str, Any]:
    """The figures of the module's docstring for these pages (decoded scans)."""
    scans: dict[str, list[float]] = {check: [] for check in CHECKS}
    for page in pages:
        for check, value in _checks(page).items():
            scans[check].append(value)
    kinds: dict[str, Any] = {}
    for kind in PHOTO_KINDS:
        accepted_raw = accepted_rectified = found = 0
        corner_px: list[float] = []
        rectify_ms: list[float] = []
        checks: dict[str, list[float]] = {check: [] for check in CHECKS}
        for index, page in enumerate(pages):
            photo, truth = photograph(page, np.random.default_rng(seed + index), kind)
            accepted_raw += check_page(photo) is None
            start = time.perf_counter()
            result = rectify(photo)
            rectify_ms.append((time.perf_counter() - start) * 1000)
            accepted_rectified += check_page(result.image) is None
            if result.corners is not None:
                found += 1
                if not truth.margin_cropped:
                    corner_px.append(float(np.abs(result.corners - np.asarray(truth.corners)).max()))
            for check, value in _checks(result.image).items():
                checks[check].append(value)
        kinds[kind] = {
            "photos": len(pages),
            "guard_accepts_as_taken": accepted_raw,
            "guard_accepts_rectified": accepted_rectified,
            "page_found": found,
            "corner_error_px": _summary(corner_px),
            "physiology_rectified": {check: _summary(values) for check, values in checks.items()},
            "rectify_ms": _summary(rectify_ms),
        }
    return {
        "pages": len(pages),
        "seed": seed,
        "physiology_scans": {check: _summary(values) for check, values in scans.items()},
        "kinds": kinds,
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    scans = report["physiology_scans"]["einthoven"]
    lines = [f"{report['pages']} pages; Einthoven on the scans: median {scans['median']}, p10 {scans['p10']}"]
    for kind, figures in report["kinds"].items():
        einthoven = figures["physiology_rectified"]["einthoven"]
        corners = figures["corner_error_px"]
        lines.append(
            f"{kind}: guard accepts {figures['guard_accepts_as_taken']}/{figures['photos']} as taken, "
            f"{figures['guard_accepts_rectified']}/{figures['photos']} rectified; Einthoven rectified "
            f"median {einthoven['median']}, p10 {einthoven['p10']}; corner error median "
            f"{corners['median']} px, p90 {corners['p90']} px; rectify {figures['rectify_ms']['median']} ms"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.photo_report", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="scanned page images (default: the dev images)"
    )
    parser.add_argument("--every", type=int, default=6, help="photograph every n-th page")
    parser.add_argument("--seed", type=int, default=1000, help="the first page's photo seed")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    files = page_files(args.data or default_data_dir())[:: args.every]
    if not files:
        parser.error(f"no page images under {args.data or default_data_dir()}")
    pages = [decode_image(path.read_bytes(), min_trace_width=None) for path in files]  # photographed whole
    report = measure(pages, seed=args.seed) | {
        "command": "python -m ml.photo_report " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_text(machine_description()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(summary_lines(report)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
