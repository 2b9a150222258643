"""Measure the out-of-distribution guard: how often it rejects what it should and should not.

The harness behind the guard's figures in ``ml/README.md`` and ``ml/reports/guard.json``. It
lives apart from ``ml.guard`` so the web process, which runs the guard at upload time, does not
load it (nor ``ml.nonecg``, the generator of non-ECG images it checks). Command line::

    python -m ml.guard_report --ecg-data DIR [--non-ecg-per-kind N] [--synthetic N] [--seed S]
                              [--photos-every N] [--json] [--out PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ml import guard
from ml.guard import PageFeatures, examine_decoded
from ml.labels import CLASSES
from ml.nonecg import (
    DEGRADATIONS,
    ECG_SCENES,
    EXPECTED_TO_PASS,
    HARD_KINDS,
    KINDS,
    degrade_page,
    render_non_ecg,
)
from ml.photos import PHOTO_KINDS, page_seed, photograph
from ml.preprocess import IMAGE_SUFFIXES, InvalidImageError, decode_page
from ml.synthetic import render_ecg

# What makes a photographed ECG unreadable, each applied to a desk photo: how the guard says so.
UNREADABLE_CHANGES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "blurred": lambda photo: photo.filter(ImageFilter.GaussianBlur(4)),
    "cut_through_traces": lambda photo: photo.crop((0, 0, round(photo.width * 0.7), photo.height)),
}


def _encode(image: Image.Image, image_format: str, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **({"quality": quality} if image_format == "JPEG" else {}))
    return out.getvalue()


@dataclass
class _Tally:
    """Outcomes of checking a set of images."""

    total: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejected_names: list[str] = field(default_factory=list)
    milliseconds: list[float] = field(default_factory=list)
    features: list[PageFeatures] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejected_names)

    def add(self, name: str, data: bytes) -> None:
        started = time.perf_counter()
        try:
            rejection, features = examine_decoded(decode_page(data))
            code = rejection.code if rejection else None
        except InvalidImageError:
            code, features = "undecodable", None
        self.milliseconds.append(1000 * (time.perf_counter() - started))
        self.total += 1
        if features is not None:
            self.features.append(features)
        if code is not None:
            self.reasons[code] += 1
            self.rejected_names.append(name)

    def margins(self) -> dict[str, Any]:
        """The features of these pages closest to each threshold (how much room is left)."""
        if not self.features:
            return {}
        features = self.features
        return {
            "min_paper_level": round(min(f.paper_level for f in features), 1),
            "min_paper_fraction": round(min(f.paper_fraction for f in features), 4),
            "ink_fraction_range": [
                round(min(f.ink_fraction for f in features), 4),
                round(max(f.ink_fraction for f in features), 4),
            ],
            "min_trace_coverage": round(min(min(f.trace_coverage) for f in features), 4),
            "min_baseline_concentration": round(min(f.baseline_concentration for f in features), 3),
            "max_gap_coverage": round(max(f.gap_coverage for f in features), 4),
            "max_outer_coverage": round(max(f.outer_coverage for f in features), 4),
            "pages_without_a_visible_grid": sum(not f.has_grid for f in features),
        }

    def summary(self, *, names: bool = False, margins: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "images": self.total,
            "rejected": self.rejected,
            "rejection_rate": round(self.rejected / max(1, self.total), 4),
            "reasons": dict(sorted(self.reasons.items())),
        }
        if names:
            result["rejected_files"] = sorted(self.rejected_names)
        if margins:
            result["closest_to_thresholds"] = self.margins()
        return result


def _timing(tallies: Sequence[_Tally]) -> dict[str, float]:
    values = sorted(ms for tally in tallies for ms in tally.milliseconds)
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 2),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 2),
    }


def measure(
    ecg_data: Path,
    *,
    non_ecg_per_kind: int = 100,
    synthetic: int = 200,
    seed: int = 0,
    photos_every: int = 1,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Rejection rates on generated non-ECG images, false rejections on real, degraded real
    and synthetic ECG pages, and milliseconds per check (decode included).

    1. Non-ECG: ``non_ecg_per_kind`` images of every kind of ``ml.nonecg`` (screenshots,
       charts and tables as PNG, the rest as JPEG quality 90), seeds ``seed * 10**6 + i``.
    2. Real ECG: every ``*.jpg``/``*.png`` under ``ecg_data`` (``<class>/<file>``) as stored.
    3. Degraded real ECG: each page once per change of ``ml.nonecg.degrade_page`` alone and
       once with all of them, strengths drawn from a generator seeded by (seed, page index).
    4. Synthetic ECG: ``synthetic`` pages of ``ml.synthetic`` spread over the classes,
       alternately JPEG quality 75 and PNG; and each once more with all the changes (their
       pink grid, unlike the scans' grey one, turns into darker grey lines in a copy).
    5. Photos of real ECG: every ``photos_every``-th page photographed (``ml.photos``, seed
       ``page_seed(seed + 1, i)``) once per kind, desk and screen: what the guard accepts once
       the page is straightened. And each desk photo made unreadable (``UNREADABLE_CHANGES``):
       how many are refused as ECGs that cannot be read, rather than as images that are not ECGs.

    Every image is decoded and checked as the upload does (``decode_page``, ``examine_decoded``).
    """
    png_kinds = {"screenshot", "ecg_in_screenshot", "chart", "table"}
    non_ecg: dict[str, _Tally] = {}
    for kind in KINDS + HARD_KINDS:
        progress(f"non-ECG {kind}")
        tally = non_ecg[kind] = _Tally()
        for index in range(non_ecg_per_kind):
            image = render_non_ecg(kind, seed * 10**6 + index)
            tally.add(f"{kind}_{index}", _encode(image, "PNG" if kind in png_kinds else "JPEG"))
    pages = sorted(path for path in ecg_data.glob("*/*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not pages:
        raise ValueError(f"No <class>/<image> files under {ecg_data}.")
    real = _Tally()
    degraded = {change: _Tally() for change in (*DEGRADATIONS, "all")}
    for index, path in enumerate(pages):
        if index % 50 == 0:
            progress(f"real ECG {index}/{len(pages)}")
        data = path.read_bytes()
        name = f"{path.parent.name}/{path.name}"
        real.add(name, data)
        page = Image.open(io.BytesIO(data))
        page.load()
        for number, change in enumerate(degraded):
            rng = np.random.default_rng([seed, index, number])
            which = DEGRADATIONS if change == "all" else (change,)
            degraded[change].add(name, degrade_page(page, rng, which))
    photos = {kind: _Tally() for kind in PHOTO_KINDS}
    unreadable = {change: _Tally() for change in UNREADABLE_CHANGES}
    photographed = pages[::photos_every]
    for index, path in enumerate(photographed):
        if index % 50 == 0:
            progress(f"photos of real ECG {index}/{len(photographed)}")
        name = f"{path.parent.name}/{path.name}"
        page = decode_page(path.read_bytes(), min_trace_width=None).image
        for kind, tally in photos.items():
            photo, _ = photograph(page, np.random.default_rng(page_seed(seed + 1, index)), kind)
            tally.add(name, _encode(photo, "JPEG", 85))
            if kind == "desk":
                for change, changed in UNREADABLE_CHANGES.items():
                    unreadable[change].add(name, _encode(changed(photo), "JPEG", 85))
    progress("synthetic ECG")
    synthetic_tally, synthetic_degraded = _Tally(), _Tally()
    for index in range(synthetic):
        label = CLASSES[index % len(CLASSES)]
        image = render_ecg(label, seed * 10**6 + index)
        synthetic_tally.add(f"{label}_{index}", _encode(image, "JPEG" if index % 2 == 0 else "PNG", 75))
        rng = np.random.default_rng([seed, index, len(DEGRADATIONS) + 1])
        synthetic_degraded.add(f"{label}_{index}", degrade_page(image, rng, DEGRADATIONS))

    def group(kinds: Sequence[str]) -> dict[str, Any]:
        tallies = [non_ecg[kind] for kind in kinds]
        rejected, total = sum(t.rejected for t in tallies), sum(t.total for t in tallies)
        return {
            "per_kind": {kind: non_ecg[kind].summary() for kind in kinds},
            "rejected": rejected,
            "images": total,
            "rejection_rate": round(rejected / max(1, total), 4),
        }

    hard_to_reject = [kind for kind in HARD_KINDS if kind not in EXPECTED_TO_PASS + ECG_SCENES]
    return {
        "command": (
            f"python -m ml.guard_report --ecg-data {ecg_data} --non-ecg-per-kind {non_ecg_per_kind} "
            f"--synthetic {synthetic} --seed {seed} --photos-every {photos_every} --json"
        ),
        "non_ecg": group(KINDS),
        "near_misses": {
            **group(hard_to_reject),
            "note": "near-misses that should be rejected: grid without traces, text or charts on grid "
            "paper, ECG strips in another layout",
        },
        "ecg_scenes": {
            **group(ECG_SCENES),
            "note": "printouts photographed turned 4-15 degrees on a desk or shown small in a window: "
            "ECGs, which the page finder may straighten and the guard then accept",
        },
        "lookalikes": {
            **group(EXPECTED_TO_PASS),
            "note": "smooth squiggles in the four trace rows on ECG paper: a layout check cannot tell "
            "them from ECGs, so they pass",
        },
        "thresholds": {
            "aspect_range": list(guard.ASPECT_RANGE),
            "min_paper_level": guard.MIN_PAPER_LEVEL,
            "min_paper_fraction": guard.MIN_PAPER_FRACTION,
            "ink_fraction_range": list(guard.INK_FRACTION_RANGE),
            "min_trace_coverage": guard.MIN_TRACE_COVERAGE,
            "min_baseline_concentration": guard.MIN_BASELINE_CONCENTRATION,
            "max_gap_coverage": guard.MAX_GAP_COVERAGE,
            "max_outer_coverage": guard.MAX_OUTER_COVERAGE,
            "min_grid_periodicity": guard.MIN_GRID_PERIODICITY,
            "min_faint_coverage": guard.MIN_FAINT_COVERAGE,
            "min_faint_concentration": guard.MIN_FAINT_CONCENTRATION,
        },
        "real_ecg": real.summary(names=True, margins=True),
        "real_ecg_degraded": {
            change: tally.summary(names=True, margins=True) for change, tally in degraded.items()
        },
        "real_ecg_photos": {kind: tally.summary(names=True, margins=True) for kind, tally in photos.items()},
        "real_ecg_photos_unreadable": {
            change: {
                **tally.summary(),
                "refused_as_unreadable": tally.reasons["unreadable"],
            }
            for change, tally in unreadable.items()
        },
        "synthetic_ecg": synthetic_tally.summary(names=True, margins=True),
        "synthetic_ecg_degraded_all_changes": synthetic_degraded.summary(names=True, margins=True),
        "ms_per_check": {
            "real_ecg": _timing([real]),
            "real_ecg_degraded": _timing(list(degraded.values())),
            "real_ecg_photos": _timing(list(photos.values())),
            "non_ecg": _timing(list(non_ecg.values())),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.guard_report``."""
    parser = argparse.ArgumentParser(prog="python -m ml.guard_report", description=__doc__.split("\n")[0])
    parser.add_argument("--ecg-data", type=Path, required=True, help="real ECG pages, <class>/<image>")
    parser.add_argument("--non-ecg-per-kind", type=int, default=100)
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic ECG pages to check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos-every", type=int, default=1, help="photograph every n-th real page")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--out", type=Path, help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    if args.non_ecg_per_kind < 1 or args.synthetic < 0 or args.seed < 0 or args.photos_every < 1:
        parser.error("--non-ecg-per-kind and --photos-every must be >= 1, --synthetic and --seed >= 0")
    report = measure(
        args.ecg_data,
        non_ecg_per_kind=args.non_ecg_per_kind,
        synthetic=args.synthetic,
        seed=args.seed,
        photos_every=args.photos_every,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(_summary_lines(report))
    return 0


def _summary_lines(report: dict[str, Any]) -> str:
    lines = ["non-ECG rejection rate per kind:"]
    for section in ("non_ecg", "near_misses", "ecg_scenes", "lookalikes"):
        for kind, row in report[section]["per_kind"].items():
            lines.append(f"  {kind:18s} {row['rejected']:4d}/{row['images']:<4d} {row['reasons']}")
    lines.append(
        f"real ECG false rejections: {report['real_ecg']['rejected']}/{report['real_ecg']['images']}"
    )
    for change, row in report["real_ecg_degraded"].items():
        lines.append(f"  degraded ({change}): {row['rejected']}/{row['images']} {row['reasons']}")
    for kind, row in report["real_ecg_photos"].items():
        lines.append(f"real ECG {kind} photos refused: {row['rejected']}/{row['images']} {row['reasons']}")
    for change, row in report["real_ecg_photos_unreadable"].items():
        lines.append(
            f"  {change}: refused {row['rejected']}/{row['images']}, as unreadable ECGs "
            f"{row['refused_as_unreadable']} {row['reasons']}"
        )
    for key in ("synthetic_ecg", "synthetic_ecg_degraded_all_changes"):
        row = report[key]
        lines.append(f"{key} false rejections: {row['rejected']}/{row['images']} {row['reasons']}")
    lines.append(f"ms per check: {report['ms_per_check']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
