"""Photos of printouts, measured: does the guard accept them, and does the digitiser read them,
before and after ``ml.rectify`` straightens them (issue 15)?

Usage::

    python -m ml.photo_report [--data DIR] [--every 6] [--seed 1000] [--out ml/reports/photos.json]
    python -m ml.photo_report --card NAME --crossval-report PATH [--guard-report PATH] [--out PATH]

For every ``--every``-th page image under ``--data`` (default: the dev images, in name order),
one desk photo and one screen photo (``ml.photos``, seed ``--seed`` + the page's index). For
each kind: how many photos the upload guard (``ml.guard``) accepts as they are and after
``rectify``; how far the corners ``rectify`` found lie from where the page went (photos whose
margin was not cropped); the digitiser's physiology checks (``ml.digitiser_report``: Einthoven,
Goldberger, lead II panel against the rhythm strip) on the rectified pages, beside the same
checks on the scans themselves; how well the leads read from each photo match those read from
its scan (``leads_against_scan``: per photo, the median over the twelve leads of their
correlation; cropped photos too); and the milliseconds ``rectify`` took. The figures go to
``--out`` as JSON and a summary is printed.

With ``--card``, nothing is measured: the shipped model's card gets a ``photos`` section
(``card_section``) from the reports already written: its classification figures on photos against
scans of the same pages (``--crossval-report``, a ``python -m ml.crossval --photos`` run of the
model's configuration, scored by ``ml.decision.nested_photo_figures`` with the card's decision
rules: its photo rule for photos where it has one), the guard's figures on scans, photos and
non-ECG images (``--guard-report``, from ``python -m ml.guard_report``) and the digitiser's on
photos (``--out``).
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
from ml.crossval_card import report_configuration
from ml.decision import nested_photo_figures
from ml.device import machine_description
from ml.digitiser_report import correlation, default_data_dir, page_files, physiology
from ml.guard import check_page
from ml.models import card_path, resolve_model
from ml.photos import PHOTO_KINDS, photograph
from ml.preprocess import decode_image, red_channel
from ml.rectify import rectify
from ml.traces import TwelveLeads, digitise, twelve_leads

REPORTS = Path(__file__).resolve().parent / "reports"
REPORT = REPORTS / "photos.json"
GUARD_REPORT = REPORTS / "guard.json"
CHECKS = ("einthoven", "goldberger", "panel_vs_rhythm")


def _leads(page: Image.Image) -> TwelveLeads:
    return twelve_leads(digitise(red_channel(page)))


def _against_scan(photo: TwelveLeads, scan: TwelveLeads) -> float:
    """The median over the twelve leads of the correlation between a photo's lead and the same
    lead read from the scan: 1 when the straightened photo reads as its scan does."""
    values = [correlation(photo.leads[name], scan.leads[name]) for name in scan.leads]
    finite = [value for value in values if np.isfinite(value)]
    return float(np.median(finite)) if finite else float("nan")


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
    scan_leads = [_leads(page) for page in pages]
    for leads in scan_leads:
        for check, value in physiology(leads).items():
            scans[check].append(value)
    kinds: dict[str, Any] = {}
    for kind in PHOTO_KINDS:
        accepted_raw = accepted_rectified = found = 0
        corner_px: list[float] = []
        rectify_ms: list[float] = []
        checks: dict[str, list[float]] = {check: [] for check in CHECKS}
        against_scan: list[float] = []
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
            leads = _leads(result.image)
            against_scan.append(_against_scan(leads, scan_leads[index]))
            for check, value in physiology(leads).items():
                checks[check].append(value)
        kinds[kind] = {
            "photos": len(pages),
            "guard_accepts_as_taken": accepted_raw,
            "guard_accepts_rectified": accepted_rectified,
            "page_found": found,
            "corner_error_px": _summary(corner_px),
            "physiology_rectified": {check: _summary(values) for check, values in checks.items()},
            "leads_against_scan": {
                **_summary(against_scan),
                "below_0_5": sum(value < 0.5 for value in against_scan if np.isfinite(value)),
            },
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
        against_scan = figures["leads_against_scan"]
        lines.append(
            f"{kind}: guard accepts {figures['guard_accepts_as_taken']}/{figures['photos']} as taken, "
            f"{figures['guard_accepts_rectified']}/{figures['photos']} rectified; Einthoven rectified "
            f"median {einthoven['median']}, p10 {einthoven['p10']}; corner error median "
            f"{corners['median']} px, p90 {corners['p90']} px; leads against the scan's median "
            f"{against_scan['median']}, p10 {against_scan['p10']}, {against_scan['below_0_5']} below 0.5; "
            f"rectify {figures['rectify_ms']['median']} ms"
        )
    return lines


def _refused(row: dict[str, Any]) -> str:
    return f"{row['rejected']}/{row['images']}"


def _accepted(row: dict[str, Any]) -> str:
    return f"{row['images'] - row['rejected']}/{row['images']}"


def card_section(
    card: dict[str, Any], crossval: dict[str, Any], guard: dict[str, Any], photos: dict[str, Any]
) -> dict[str, Any]:
    """A model card's ``photos`` section (see the module docstring) from the three reports."""
    # Photos labelled as the model labels them: by its photo rule where its card has one.
    photo_rule = card.get("decision_photos") is not None
    figures = nested_photo_figures(crossval, (card.get("decision") or {}).get("class"), photo_rule=photo_rule)
    if figures is None:
        raise ValueError("the cross-validation report has no photo rows: run python -m ml.crossval --photos")
    pooled = figures["pooled"]
    unreadable = guard["real_ecg_photos_unreadable"]
    return {
        "classification": {
            "crossval_command": crossval.get("command"),
            "generator": crossval["photos"]["generator"],
            "read_as": crossval["photos"]["read_as"],
            "method": figures["method"] + "; photos of a page are held out with it (folds by page)",
            **{
                name: {
                    "n": report["n"],
                    "accuracy": report["accuracy"],
                    "macro_f1": report["macro_f1"],
                    "per_class_f1": {label: row["f1"] for label, row in report["per_class"].items()},
                }
                for name, report in pooled.items()
            },
            "ratio_to_scans": figures["ratio"],
        },
        "guard": {
            "command": guard.get("command"),
            "scans_refused": _refused(guard["real_ecg"]),
            "photos_accepted": {kind: _accepted(row) for kind, row in guard["real_ecg_photos"].items()},
            "non_ecg_refused": _refused(guard["non_ecg"]),
            "near_misses_refused": _refused(guard["near_misses"]),
            "unreadable_photos_refused": {change: _refused(row) for change, row in unreadable.items()},
            "unreadable_photos_told_unreadable": {
                change: f"{row['refused_as_unreadable']}/{row['images']}"
                for change, row in unreadable.items()
            },
        },
        "digitiser": {
            "command": photos.get("command"),
            "pages": photos["pages"],
            "einthoven_median": {
                "scans": photos["physiology_scans"]["einthoven"]["median"],
                **{
                    kind: row["physiology_rectified"]["einthoven"]["median"]
                    for kind, row in photos["kinds"].items()
                },
            },
        },
    }


def write_card_section(name: str, crossval_report: Path, guard_report: Path, photo_report: Path) -> Path:
    """Put ``card_section`` into the shipped model ``name``'s card; returns the card's path."""
    path = card_path(resolve_model(name))
    card = json.loads(path.read_text())
    reports = [json.loads(report.read_text()) for report in (crossval_report, guard_report, photo_report)]
    # The photo figures must be of this model's configuration (a photo-trained model's, say).
    carded = card.get("crossval")
    if carded:
        expected = report_configuration(
            {"training": carded.get("training", {}), "ensemble": card.get("ensemble", {})}
        )
        measured = report_configuration(reports[0])
        if measured != expected:
            raise ValueError(
                f"{crossval_report} cross-validates {measured}, not {name}'s configuration {expected}."
            )
    card["photos"] = card_section(card, *reports)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.photo_report", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="scanned page images (default: the dev images)"
    )
    parser.add_argument("--every", type=int, default=6, help="photograph every n-th page")
    parser.add_argument("--seed", type=int, default=1000, help="the first page's photo seed")
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--card", help="a shipped model whose card gets the photo figures (measures nothing)")
    parser.add_argument("--crossval-report", type=Path, help="with --card: a crossval --photos report")
    parser.add_argument("--guard-report", type=Path, default=GUARD_REPORT, help="with --card")
    args = parser.parse_args(argv)
    if args.card:
        if args.crossval_report is None:
            parser.error("--card needs --crossval-report")
        try:
            path = write_card_section(args.card, args.crossval_report, args.guard_report, args.out)
        except (OSError, KeyError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"wrote the photos section of {path}")
        return 0
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
