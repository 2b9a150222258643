"""docs/DIGITISER.md: how well and how fast the digitiser reads a page, measured, not assumed.

Usage::

    python -m ml.digitiser_report [--data DIR] [--synthetic 40] [--out docs/DIGITISER.md]

``make digitiser-doc`` runs it. In one run on this machine:

1. Physiology on real pages (``--data``, the dev images; no ground truth needed): Einthoven
   (lead II against I + III, printed at the same instants in the first column), Goldberger
   (aVR + aVL + aVF = 0 in the second column, as the correlation of -aVF with aVR + aVL) and the
   lead II panel against the first 2.5 s of the lead II rhythm strip. Pearson correlations.
2. Ground truth on pages ``ml.synthetic`` renders from known signals: per lead, the correlation
   and the SNR in dB (10 log10 of the signal's energy over the error's) of what the digitiser
   reads against what was drawn.
3. Cost: the digitiser against a plain full-size Pillow decode of the same files.

Medians and 10th percentiles, with the published anchors beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml import layout
from ml.cards import machine_text
from ml.device import machine_description
from ml.leads import MIN_TRACE_WIDTH
from ml.preprocess import IMAGE_SUFFIXES, decode_image
from ml.synthetic import PrintedSignals, render_ecg_with_signals
from ml.traces import SIGNAL_SAMPLES, TwelveLeads, digitise, twelve_leads

DOCUMENT = Path("docs/DIGITISER.md")
LEADS = layout.LEAD_NAMES
ANCHORS = (
    "PhysioNet Challenge 2024, digitisation winner: 12.15 dB SNR on its hidden set.",
    "Open-ECG-Digitizer: 19.65 dB mean SNR on 1,596 real scans.",
    "A commercial digitiser's published figures: correlation > 0.91, under 7 s per image.",
)


def default_data_dir() -> Path:
    fallback = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "khan-ecg"
    return Path(os.environ.get("ECGSITE_DEV_DATA") or fallback)


def page_files(data_dir: Path, limit: int | None = None) -> list[Path]:
    """The page images under `data_dir` in name order (at most `limit`); [] when there are none."""
    if not data_dir.is_dir():
        return []
    files = sorted(path for path in data_dir.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def read_leads(data: bytes) -> TwelveLeads:
    """The digitiser on encoded page bytes, as the worker runs it."""
    return twelve_leads(digitise(decode_image(data, min_trace_width=MIN_TRACE_WIDTH).getchannel("R")))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def physiology(leads: TwelveLeads) -> dict[str, float]:
    """The three checks a real page allows without ground truth (Pearson correlations)."""
    panel = leads.leads
    rhythm = leads.rhythm[layout.RHYTHM_LEAD]
    return {
        "einthoven": correlation(panel["II"], panel["I"] + panel["III"]),
        "goldberger": correlation(-panel["aVF"], panel["aVR"] + panel["aVL"]),
        "panel_vs_rhythm": correlation(panel["II"], rhythm[: len(panel["II"])]),
    }


def sample_times() -> np.ndarray:
    """Seconds on the page's 10 s axis of each sample ``ml.traces.digitise`` returns."""
    width_px = layout.COLUMN_EDGES[-1] - layout.COLUMN_EDGES[0]
    return np.linspace(0, (width_px - 1) / layout.PIXELS_PER_SECOND, SIGNAL_SAMPLES)


def snr_db(truth: np.ndarray, estimate: np.ndarray) -> float:
    error = float(np.sum((estimate - truth) ** 2))
    return float("inf") if error == 0 else 10 * float(np.log10(np.sum(truth**2) / error))


def against_truth(leads: TwelveLeads, drawn: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Per lead: correlation and SNR of what was read against what was drawn, at the same times."""
    times = sample_times()
    figures = {}
    for name, read in leads.leads.items():
        start = int(np.searchsorted(times, leads.start_s[name] - 1e-9))
        at = times[start : start + len(read)]
        drawn_t, drawn_mv = drawn[name]
        truth = np.interp(at, drawn_t, drawn_mv)
        figures[name] = {"r": correlation(truth, read), "snr_db": snr_db(truth, read)}
    return figures


def _summary(values: Sequence[float]) -> tuple[float, float, int]:
    finite = np.array([value for value in values if np.isfinite(value)], dtype=float)
    if not len(finite):
        return float("nan"), float("nan"), 0
    return float(np.median(finite)), float(np.percentile(finite, 10)), len(finite)


def _best_ms_per_item(work: Callable[[Any], object], items: Sequence[Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, (time.perf_counter() - started) / len(items) * 1000)
    return best


def measure_cost(pages: Sequence[bytes], repeats: int = 3) -> dict[str, Any]:
    """The digitiser beside a plain full-size Pillow decode of the same files, in one run:
    ms per page (best of `repeats` passes), their ratio and the machine."""
    reds = [decode_image(page, min_trace_width=MIN_TRACE_WIDTH).getchannel("R") for page in pages]
    decode_ms = _best_ms_per_item(lambda page: Image.open(io.BytesIO(page)).load(), pages, repeats)
    digitise_ms = _best_ms_per_item(digitise, reds, repeats)
    return {
        "pages": len(pages),
        "machine": machine_description(),
        "pillow_decode_ms": round(decode_ms, 2),
        "digitise_ms": round(digitise_ms, 2),
        "ratio": round(digitise_ms / decode_ms, 2),
    }


@dataclass(frozen=True)
class Findings:
    real_pages: int
    physiology: dict[str, tuple[float, float, int]]  # check -> (median, p10, n)
    synthetic_pages: int
    per_lead: dict[str, dict[str, tuple[float, float, int]]]  # lead -> figure -> (median, p10, n)
    cost: dict[str, Any]


def synthetic_page(index: int, seed: int = 0) -> tuple[bytes, PrintedSignals]:
    """Page `index` of a synthetic set (the classes in turn) as PNG bytes, and what it drew."""
    labels = ("normal", "mi", "history_mi", "abnormal")
    image, drawn = render_ecg_with_signals(labels[index % len(labels)], seed + index)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), drawn


def measure(real: Sequence[bytes], synthetic: int, seed: int = 0) -> Findings:
    checks = [physiology(read_leads(page)) for page in real]
    per_check = {
        name: _summary([check[name] for check in checks])
        for name in ("einthoven", "goldberger", "panel_vs_rhythm")
    }
    rows: dict[str, dict[str, list[float]]] = {name: {"r": [], "snr_db": []} for name in LEADS}
    synthetic_bytes = []
    for index in range(synthetic):
        page, drawn = synthetic_page(index, seed)
        synthetic_bytes.append(page)
        for name, figures in against_truth(read_leads(page), drawn.leads).items():
            rows[name]["r"].append(figures["r"])
            rows[name]["snr_db"].append(figures["snr_db"])
    per_lead = {name: {figure: _summary(values) for figure, values in rows[name].items()} for name in LEADS}
    cost = measure_cost(list(real) or synthetic_bytes)
    return Findings(len(real), per_check, synthetic, per_lead, cost)


def _cell(summary: tuple[float, float, int], digits: int = 3) -> str:
    median, p10, _count = summary
    return "-" if not np.isfinite(median) else f"{median:.{digits}f} | {p10:.{digits}f}"


def build_document(findings: Findings, *, generated: dt.date, command: str) -> str:
    physiology_names = {
        "einthoven": "Einthoven: corr(II, I + III), first column",
        "goldberger": "Goldberger: corr(-aVF, aVR + aVL), second column",
        "panel_vs_rhythm": "lead II panel against the rhythm strip's first 2.5 s",
    }
    cost = findings.cost
    lines = [
        "# The digitiser: how well and how fast it reads a page",
        "",
        f"Generated on {generated.isoformat()} by `make digitiser-doc`; do not edit by hand. It ran:",
        "",
        f"```sh\n{command}\n```",
        "",
        "`python -m ml.digitise IMAGE...` gives the same leads as JSON. Each lead is read as the middle",
        "of its ink, at 102.4 samples per second, over the 2.5 s it was printed (`ml/traces.py`). Pages",
        "are decoded as the worker decodes them for the hybrid model, which reads the same traces: a",
        "1200 px scan in full (`ml.leads.MIN_TRACE_WIDTH`).",
        "",
        f"## Physiology on {findings.real_pages} real pages (no ground truth needed)",
        "",
        "| check | median | 10th percentile |",
        "|---|---|---|",
        *(
            f"| {physiology_names[name]} | {_cell(summary)} |"
            for name, summary in findings.physiology.items()
        ),
        "",
        f"## Against ground truth on {findings.synthetic_pages} synthetic pages",
        "",
        "Pages `ml.synthetic` renders from known signals (every class), encoded as PNG and read back as the "
        "worker reads an upload.",
        "",
        "| lead | correlation: median | 10th percentile | SNR dB: median | 10th percentile |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {_cell(figures['r'])} | {_cell(figures['snr_db'], 1)} |"
            for name, figures in findings.per_lead.items()
        ),
        "",
        "Anchors, for scale (other data sets: not comparable one to one):",
        "",
        *(f"- {anchor}" for anchor in ANCHORS),
        "",
        "## Cost",
        "",
        f"On {cost['pages']} pages, {machine_text(cost['machine'])}, in the same run: a plain full-size "
        f"Pillow decode of the file {cost['pillow_decode_ms']:.2f} ms per page, the digitiser on the "
        f"decoded page {cost['digitise_ms']:.2f} ms per page: **{cost['ratio']:.2f}x** the decode "
        "(the target: at most 2x).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.digitiser_report", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="real page images (default: the dev images)")
    parser.add_argument("--synthetic", type=int, default=40, help="synthetic pages with ground truth")
    parser.add_argument("--out", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    real = [path.read_bytes() for path in page_files(data_dir)]
    if not real:
        print(f"no page images in {data_dir}: the physiology section will be empty", file=sys.stderr)
    findings = measure(real, args.synthetic)
    command = f"python -m ml.digitiser_report --synthetic {args.synthetic}"
    document = build_document(findings, generated=dt.datetime.now(dt.UTC).date(), command=command)
    args.out.write_text(document, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
