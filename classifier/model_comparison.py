"""The admin's model comparison: registered model versions side by side, as a table and charts.

Rows come from each ModelVersion's card through ml.cards, the same reading that writes
docs/MODELS.md, so the page and the document agree. Charts are inline SVG (classifier.svg_charts).
A second table shows every cross-validation report (``crossval-<arch>.json`` from
``python -m ml.crossval``) in a folder: all architectures on the same folds, shipped or not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from classifier import svg_charts
from classifier.models import ModelVersion
from ml.cards import (
    MISSING,
    ClassScores,
    Column,
    ModelSummary,
    format_float,
    format_int,
    format_interval,
    mapping,
    summary_from_card,
    summary_from_crossval_report,
    table_columns,
    table_row,
    text,
)
from ml.labels import CLASSES
from ml.models import model_path


@dataclass(frozen=True)
class Chart:
    title: str
    svg: SafeString
    note: str = ""


@dataclass(frozen=True)
class ComparedModel:
    version: ModelVersion
    summary: ModelSummary
    is_default: bool
    cells: list[str]  # in the order of Comparison.columns


@dataclass(frozen=True)
class Comparison:
    columns: list[Column]
    models: list[ComparedModel]
    charts: list[Chart]
    per_model_charts: list[tuple[str, list[Chart]]]  # (model name, its heatmap and reliability diagram)


def version_summary(version: ModelVersion) -> ModelSummary:
    """The version's card read as a summary; the row's own name and architecture win over the card's."""
    summary = summary_from_card({**version.card, "name": version.name, "architecture": version.architecture})
    if summary.file_bytes is None:
        summary = dataclasses.replace(summary, file_bytes=_shipped_file_size(version.name))
    if not summary.created:
        summary = dataclasses.replace(summary, created=f"{version.created:%Y-%m-%d}")
    return summary


def _shipped_file_size(name: str) -> int | None:
    path = model_path(name)
    return path.stat().st_size if path.is_file() else None


def comparison_build(*, versions: Sequence[ModelVersion], default_name: str) -> Comparison:
    """The table rows and charts for `versions`, in the order given."""
    columns = table_columns()
    models = []
    for version in versions:
        summary = version_summary(version)
        is_default = version.name == default_name
        row = table_row(summary, is_default=is_default)
        models.append(ComparedModel(version, summary, is_default, [row.get(c.key, MISSING) for c in columns]))
    summaries = [model.summary for model in models]
    return Comparison(
        columns=columns,
        models=models,
        charts=_charts(summaries) if summaries else [],
        per_model_charts=[(summary.name, _model_charts(summary)) for summary in summaries],
    )


def _safe(svg: str) -> SafeString:
    # Safe: svg_charts escapes every piece of text it draws.
    return mark_safe(svg)


def _charts(summaries: Sequence[ModelSummary]) -> list[Chart]:
    intervals = [
        svg_charts.IntervalItem(s.name, s.macro_f1, s.macro_f1_low, s.macro_f1_high) for s in summaries
    ]
    recall = [
        (s.name, [s.per_class[name].recall if name in s.per_class else None for name in CLASSES])
        for s in summaries
    ]
    speed = [(s.name, s.ms_per_image) for s in summaries]
    return [
        Chart(
            "Macro-F1 with 95% interval",
            _safe(svg_charts.interval_chart(intervals, "Macro-F1 with 95% interval")),
            "Whiskers: stratified bootstrap interval, where the card has one.",
        ),
        Chart("Recall per class", _safe(svg_charts.grouped_bar_chart(CLASSES, recall, "Recall per class"))),
        Chart("Milliseconds per image", _safe(svg_charts.bar_chart(speed, "Milliseconds per image", " ms"))),
    ]


def _model_charts(summary: ModelSummary) -> list[Chart]:
    charts = []
    if summary.confusion is not None:
        title = f"{summary.name}: confusion matrix"
        charts.append(
            Chart(
                title,
                _safe(svg_charts.confusion_heatmap(summary.classes, summary.confusion, title)),
                "Rows true, columns predicted; shading is each row's share.",
            )
        )
    series = [svg_charts.ReliabilitySeries("before calibration", summary.bins)] if summary.bins else []
    if summary.bins_calibrated:
        series.append(svg_charts.ReliabilitySeries("temperature-scaled", summary.bins_calibrated))
    if series:
        title = f"{summary.name}: reliability"
        charts.append(Chart(title, _safe(svg_charts.reliability_diagram(series, title))))
    return charts


# Cross-validation reports: every architecture on the same folds, whether or not it was shipped.

CROSSVAL_PATTERN = "crossval-*.json"


@dataclass(frozen=True)
class CrossvalRun:
    file_name: str
    summary: ModelSummary
    shipped_as: str  # what the "shipped model" cell says
    cells: list[str]  # in the order of CrossvalComparison.columns


@dataclass(frozen=True)
class CrossvalComparison:
    folder: str
    columns: list[Column]
    runs: list[CrossvalRun]
    notes: list[str]  # an empty or missing folder, files skipped
    charts: list[Chart]
    per_run_charts: list[tuple[str, list[Chart]]]


def crossval_reports_read(folder: Path) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str]]:
    """Every ``crossval-*.json`` in `folder` by file name, and a note for each one that is unreadable."""
    if not folder.is_dir():
        return [], [f"No cross-validation reports: the folder {folder} does not exist."]
    reports: list[tuple[str, Mapping[str, Any]]] = []
    notes = []
    for path in sorted(folder.glob(CROSSVAL_PATTERN)):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:  # ValueError: bad JSON or UTF-8
            notes.append(f"Skipped {path.name}: not readable as JSON ({type(error).__name__}).")
            continue
        if not isinstance(document, Mapping):
            notes.append(f"Skipped {path.name}: not a JSON object.")
            continue
        reports.append((path.name, document))
    if not reports and not notes:
        notes.append(
            f"No cross-validation reports ({CROSSVAL_PATTERN}) in {folder}: "
            "python -m ml.crossval --arch ARCH writes them."
        )
    return reports, notes


def crossval_columns(classes: tuple[str, ...] = CLASSES) -> list[Column]:
    return [
        Column("architecture", "architecture"),
        Column("report", "report"),
        Column("parameters", "parameters"),
        Column("n_folds", "folds"),
        Column("n", "n"),
        Column("accuracy", "accuracy"),
        Column("macro_f1", "macro-F1 [95% CI]"),
        *(Column(f"recall_{name}", f"recall {name}") for name in classes),
        *(Column(f"f1_{name}", f"F1 {name}") for name in classes),
        Column("ece", "ECE before → after temperature scaling"),
        Column("ms_per_image", "ms/image"),
        Column("timed_on", "timed on"),
        Column("fold_macro_f1", "fold macro-F1 mean ± std"),
        Column("shipped_as", "shipped model"),
    ]


def crossval_row(file_name: str, summary: ModelSummary, shipped_as: str) -> dict[str, str]:
    """The run as table cells keyed by ``crossval_columns`` keys."""
    ece = f"{format_float(summary.ece)} → {format_float(summary.ece_calibrated)}"
    if summary.temperature is not None:
        ece += f" (T = {summary.temperature:.2f})"
    folds = MISSING
    if summary.fold_macro_f1_mean is not None:
        folds = format_float(summary.fold_macro_f1_mean)
        if summary.fold_macro_f1_std is not None:
            folds += f" ± {summary.fold_macro_f1_std:.3f}"
    row = {
        "architecture": summary.architecture or MISSING,
        "report": file_name,
        "parameters": format_int(summary.parameters),
        "n_folds": format_int(summary.n_folds),
        "n": format_int(summary.n),
        "accuracy": format_float(summary.accuracy),
        "macro_f1": format_interval(summary),
        "ece": ece,
        "ms_per_image": format_float(summary.ms_per_image, 1),
        "timed_on": summary.timed_on,
        "fold_macro_f1": folds,
        "shipped_as": shipped_as,
    }
    for name in dict.fromkeys((*CLASSES, *summary.classes)):
        scores = summary.per_class.get(name, ClassScores())
        row[f"recall_{name}"] = format_float(scores.recall)
        row[f"f1_{name}"] = format_float(scores.f1)
    return row


def shipped_from(file_name: str, architecture: str, versions: Sequence[ModelVersion]) -> str:
    """Which registered versions come from the run: their card's ``crossval.report`` names the file.

    A version of the same architecture whose card names no such report is listed as that, not as
    coming from the run (hybrid-v1 predates cross-validation).
    """
    named = [
        version.name
        for version in versions
        if Path(text(mapping(mapping(version.card).get("crossval")).get("report"))).name == file_name
    ]
    if named:
        return ", ".join(named)
    same = [version.name for version in versions if architecture and version.architecture == architecture]
    if same:
        return f"not shipped from this run; same architecture: {', '.join(same)}"
    return "not shipped"


def crossval_comparison_build(*, folder: Path | str, versions: Sequence[ModelVersion]) -> CrossvalComparison:
    """A row and charts for every cross-validation report in `folder`, in file-name order."""
    folder = Path(folder)
    reports, notes = crossval_reports_read(folder)
    columns = crossval_columns()
    runs = []
    for file_name, report in reports:
        summary = summary_from_crossval_report(report, Path(file_name).stem)
        shipped_as = shipped_from(file_name, summary.architecture, versions)
        row = crossval_row(file_name, summary, shipped_as)
        runs.append(CrossvalRun(file_name, summary, shipped_as, [row.get(c.key, MISSING) for c in columns]))
    summaries = [run.summary for run in runs]
    return CrossvalComparison(
        folder=str(folder),
        columns=columns,
        runs=runs,
        notes=notes,
        charts=_charts(summaries) if summaries else [],
        per_run_charts=[(summary.name, _model_charts(summary)) for summary in summaries],
    )
