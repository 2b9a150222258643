"""Write docs/MODELS.md: every shipped model and cross-validation run, side by side.

Usage::

    python -m ml.report [--models-dir ml/models] [--reports-dir ml/reports] [--out docs/MODELS.md]

1. Read the shipped models' cards (``<models-dir>/<name>.json`` with ``<name>.keras`` beside
   it), every ``<reports-dir>/crossval-*.json``, and ``<reports-dir>/guard.json`` if present.
2. Summarise each the same way the admin's comparison page does (``ml.cards``).
3. Write markdown: a comparison table of the shipped models, a section per model, the
   cross-validation runs (the architectures compared on the same folds), the guard report
   and the data credit.

The output depends only on the files read (sorted by name; no clock), so re-running it on
unchanged inputs changes nothing. No TensorFlow or Django.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ml.cards import (
    MISSING,
    ClassScores,
    ModelSummary,
    evaluated_on,
    format_float,
    format_int,
    format_interval,
    format_megabytes,
    integer,
    machine_text,
    mapping,
    number,
    summary_from_card,
    summary_from_crossval_report,
    table_columns,
    table_row,
    text,
)
from ml.decision import (
    MI_THRESHOLDS,
    decided_out_of_fold,
    nested_photo_figures,
    operating_point,
    out_of_fold_rows,
)
from ml.labels import CLASSES
from ml.metrics import paired_bootstrap_macro_f1_difference
from ml.models import DEFAULT_MODEL_NAME

CREDIT = (
    "Khan & Hussain 2021, ECG Images dataset of Cardiac Patients, Mendeley Data V2, "
    "doi:10.17632/gwbz3fsgp8.2, CC BY 4.0"
)
DEFAULT_MODELS_DIR = Path("ml/models")
DEFAULT_REPORTS_DIR = Path("ml/reports")
DEFAULT_OUT = Path("docs/MODELS.md")


def read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error})") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return document


def shipped_cards(models_dir: Path) -> list[dict[str, Any]]:
    """Cards of the models in ``models_dir`` that have their weights file, sorted by file name."""
    return [
        read_json(path) for path in sorted(models_dir.glob("*.json")) if path.with_suffix(".keras").is_file()
    ]


def crossval_reports(reports_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, read_json(path)) for path in sorted(reports_dir.glob("crossval-*.json"))]


def with_file_size(summary: ModelSummary, models_dir: Path) -> ModelSummary:
    """The summary, with the weights file's size when the card does not record it."""
    weights = models_dir / f"{summary.name}.keras"
    if summary.file_bytes is not None or not weights.is_file():
        return summary
    return dataclasses.replace(summary, file_bytes=weights.stat().st_size)


# Markdown pieces


def cell(value: object) -> str:
    """A table cell: pipes escaped, line breaks flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(cell(header) for header in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return [*lines, ""]


def comparison_table(summaries: Sequence[ModelSummary], default_name: str) -> list[str]:
    columns = table_columns()
    rows = []
    for summary in summaries:
        row = table_row(summary, is_default=summary.name == default_name)
        rows.append([row.get(column.key, MISSING) for column in columns])
    return table([column.header for column in columns], rows)


# A class recall this much higher in another cross-validated model is worth a reader's notice.
RECALL_GAP = 0.1


def recall_gaps(summaries: Sequence[ModelSummary], default_name: str) -> list[str]:
    """Lines naming each class on which another cross-validated model recalls clearly more
    (by ``RECALL_GAP``) than the default: the trade-off the macro-F1 ranking hides."""
    validated = [summary for summary in summaries if summary.cross_validated]
    default = next((summary for summary in validated if summary.name == default_name), None)
    if default is None:
        return []
    lines = []
    for name in default.classes:
        own = default.per_class.get(name, ClassScores()).recall
        if own is None:
            continue
        better = [
            (summary.name, recall)
            for summary in validated
            if (recall := summary.per_class.get(name, ClassScores()).recall) is not None
            and recall - own >= RECALL_GAP
        ]
        if better:
            others = ", ".join(
                f"{other} {recall:.3f}" for other, recall in sorted(better, key=lambda b: -b[1])
            )
            lines.append(f"- Recall of `{name}`: {default.name} {own:.3f}; higher in {others}.")
    if not lines:
        return []
    return [
        f"Where another cross-validated model recalls a class clearly better than the default "
        f"({default.name}; pooled out-of-fold, a gap of {RECALL_GAP} or more):",
        "",
        *lines,
        "",
    ]


def code(value: str) -> str:
    return f"`{value}`" if value else MISSING


def per_class_table(summary: ModelSummary) -> list[str]:
    if not summary.per_class:
        return ["No per-class scores.", ""]
    rows = [
        [
            name,
            format_float(scores.precision),
            format_float(scores.recall),
            format_float(scores.f1),
            format_int(scores.support),
        ]
        for name, scores in summary.per_class.items()
    ]
    return table(["class", "precision", "recall", "F1", "support"], rows)


def confusion_table(summary: ModelSummary) -> list[str]:
    if summary.confusion is None:
        return ["No confusion matrix.", ""]
    headers = ["true \\ predicted", *summary.classes]
    rows = [[name, *row] for name, row in zip(summary.classes, summary.confusion, strict=True)]
    return table(headers, rows)


def images_per_class(data: Mapping[str, Any]) -> str:
    counts = {name: integer(value) for name, value in mapping(data.get("images_per_class")).items()}
    parts = [f"{name} {format_int(count)}" for name, count in counts.items()]
    total = sum(count for count in counts.values() if count is not None)
    return f"{', '.join(parts)} ({total} images)" if parts else MISSING


def representation_note(document: Mapping[str, Any]) -> str:
    """ ", input `leads`" when the card or report names its input representation."""
    found = text(document.get("representation")) or text(mapping(document.get("input")).get("representation"))
    return f", input `{found}`" if found else ""


def metrics_lines(summary: ModelSummary) -> list[str]:
    lines = [
        f"- Evaluated on: {evaluated_on(summary)}, n = {format_int(summary.n)}",
        f"- Accuracy {format_float(summary.accuracy)}, macro-F1 {format_interval(summary)}",
    ]
    if summary.fold_macro_f1_mean is not None:
        lines.append(
            f"- Macro-F1 per fold: mean {format_float(summary.fold_macro_f1_mean)}, "
            f"std {format_float(summary.fold_macro_f1_std)}"
        )
    lines.append(
        f"- ECE {format_float(summary.ece)} before, {format_float(summary.ece_calibrated)} after "
        f"temperature scaling (T = {format_float(summary.temperature, 2)})"
    )
    lines.append(
        f"- {format_float(summary.ms_per_image, 1)} ms per image; "
        f"{format_float(summary.training_seconds, 0)} s training"
    )
    return [*lines, ""]


def ensemble_lines(document: Mapping[str, Any]) -> list[str]:
    """How an ensemble was made and what each member scores alone (a card's ``crossval`` or a
    report); nothing for a single model."""
    ensemble = mapping(document.get("ensemble"))
    if not ensemble:
        return []
    seeds = ", ".join(str(seed) for seed in ensemble.get("seeds") or []) or MISSING
    lines = [
        f"- Ensemble: {format_int(integer(ensemble.get('members')))} members (seeds {seeds}), "
        f"{text(ensemble.get('combination')) or MISSING}"
    ]
    for member in document.get("members") or []:
        member = mapping(member)
        value, low, high = (
            number(mapping(member.get("macro_f1")).get(key)) for key in ("value", "low", "high")
        )
        recall = " / ".join(
            f"{name} {format_float(number(score))}" for name, score in mapping(member.get("recall")).items()
        )
        lines.append(
            f"  - seed {format_int(integer(member.get('seed')))} alone (pooled out-of-fold): accuracy "
            f"{format_float(number(member.get('accuracy')))}, macro-F1 {format_float(value)} "
            f"[{format_float(low)}, {format_float(high)}], recall {recall}"
        )
    return lines


def format_small(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2g}"


def rebuilt_lines(card: Mapping[str, Any]) -> list[str]:
    """Where ``ml.rebuild`` moved the card's weights onto today's graph, and its check."""
    rebuilt = mapping(card.get("rebuilt"))
    if not rebuilt:
        return []
    check = mapping(rebuilt.get("check"))
    return [
        f"- Rebuilt {text(rebuilt.get('date')) or MISSING} with {code(text(rebuilt.get('command')))} "
        f"from sha256 {code(text(rebuilt.get('from_file_sha256')))}: {text(rebuilt.get('how')) or MISSING}. "
        f"On {format_int(integer(check.get('images')))} `{text(check.get('data')) or MISSING}` images the "
        "original (oneDNN) and the rebuilt file (plain kernels) differ by at most "
        f"{format_small(number(check.get('max_abs_probability_difference')))} in any probability and give "
        f"the same label on {format_int(integer(check.get('same_label')))}"
    ]


def gpu_text(check: object) -> str:
    """``bench.gpu_check``'s figures for one model (``--write-cards``), in words."""
    check = mapping(check)
    if not check:
        return "not yet checked on a GPU (`make gpu-check` on a GPU machine records it here)"
    pages = integer(check.get("pages"))
    return (
        f"{text(check.get('gpu')) or MISSING}, {text(check.get('date')) or MISSING}: max |difference| "
        f"{format_small(number(check.get('max_abs_difference_vs_cpu')))} from the CPU's probabilities; "
        f"{format_float(number(check.get('ms_per_image_batch_1')), 2)} ms/image at batch 1, "
        f"{format_float(number(check.get(f'ms_per_image_batch_{pages}')), 2)} at batch {format_int(pages)}"
    )


def model_section(card: Mapping[str, Any], summary: ModelSummary, default_name: str) -> list[str]:
    data = mapping(card.get("training_data"))
    crossval = mapping(card.get("crossval"))
    calibration = mapping(card.get("calibration"))
    marker = " (default)" if summary.name == default_name else ""
    lines = [
        f"### {summary.name}{marker}",
        "",
        f"- Architecture: `{summary.architecture or MISSING}`, {format_int(summary.parameters)} parameters"
        + representation_note(card),
        f"- File: sha256 {code(text(card.get('file_sha256')))}, {format_megabytes(summary.file_bytes)}",
        f"- Command: {code(text(card.get('command')))} (seed {format_int(integer(card.get('seed')))})",
        f"- Training data: `{text(data.get('path_name')) or MISSING}`, {images_per_class(data)}, "
        f"sha256 {code(text(data.get('sha256')))}",
    ]
    if crossval:
        lines.append(
            f"- Cross-validation: {format_int(integer(crossval.get('n_folds')))} "
            f"folds, seed {format_int(integer(crossval.get('seed')))}, "
            f"report {code(text(crossval.get('report')))}"
        )
        lines += ensemble_lines(crossval)
    else:
        lines.append("- Cross-validation: not cross-validated")
    if calibration:
        lines.append(
            f"- Calibration: {text(calibration.get('method')) or MISSING}, "
            f"T = {format_float(summary.temperature, 3)}, "
            f"fitted on {text(calibration.get('fitted_on')) or MISSING}"
        )
    decision = mapping(card.get("decision"))
    if decision:
        lines.append(
            f"- Decision: {text(decision.get('description')) or MISSING}; chosen by "
            f"{text(decision.get('chosen_by')) or MISSING}. The figures below are its nested "
            "cross-validation's"
        )
    lines.append(f"- Runtime: {text(card.get('runtime')) or MISSING}; created {summary.created or MISSING}")
    lines.append(f"- Timed on: {machine_text(card.get('machine'))}")
    lines += rebuilt_lines(card)
    lines.append(f"- GPU: {gpu_text(card.get('gpu_check'))}")
    lines += metrics_lines(summary)
    lines += ["Per class:", "", *per_class_table(summary)]
    lines += ["Confusion matrix (rows true, columns predicted):", "", *confusion_table(summary)]
    dev = mapping(card.get("dev_evaluation"))
    if mapping(dev.get("result")) and summary.source != "dev evaluation":
        dev_summary = summary_from_card({"name": summary.name, "dev_evaluation": dev})
        lines += [
            f"Dev evaluation ({code(text(dev.get('command')))}): n = {format_int(dev_summary.n)}, "
            f"accuracy {format_float(dev_summary.accuracy)}, macro-F1 {format_interval(dev_summary)}, "
            f"ECE {format_float(dev_summary.ece)}",
            "",
        ]
    lines += photos_lines(mapping(card.get("photos")))
    return lines


def photos_lines(photos: Mapping[str, Any]) -> list[str]:
    """A card's ``photos`` section (``ml.photo_report --card``): photos against scans."""
    if not photos:
        return []
    classification = mapping(photos.get("classification"))
    ratios = mapping(classification.get("ratio_to_scans"))
    rows = []
    for name in ("scans", *ratios):
        figures = mapping(classification.get(name))
        f1 = mapping(figures.get("macro_f1"))
        interval = f"{format_float(number(f1.get('value')))} [{format_float(number(f1.get('low')))}, "
        interval += f"{format_float(number(f1.get('high')))}]"
        ratio = "1" if name == "scans" else format_float(number(ratios.get(name)))
        rows.append([name, format_int(integer(figures.get("n"))), interval, ratio])
    guard = mapping(photos.get("guard"))
    accepted = ", ".join(f"{kind} {value}" for kind, value in mapping(guard.get("photos_accepted")).items())
    told = ", ".join(
        f"{change} {value}"
        for change, value in mapping(guard.get("unreadable_photos_told_unreadable")).items()
    )
    einthoven = ", ".join(
        f"{name} {format_float(number(value))}"
        for name, value in mapping(mapping(photos.get("digitiser")).get("einthoven_median")).items()
    )
    return [
        f"Photos of printouts ({text(classification.get('method')) or MISSING}; "
        f"{code(text(classification.get('crossval_command')))}):",
        "",
        *table(["set", "n", "macro-F1 [95% interval]", "over scans"], rows),
        f"Guard: scans refused {text(guard.get('scans_refused')) or MISSING}; photos accepted {accepted}; "
        f"non-ECG images refused {text(guard.get('non_ecg_refused')) or MISSING}, near-misses "
        f"{text(guard.get('near_misses_refused')) or MISSING}; unreadable photos told so: {told}. "
        f"Digitiser, Einthoven median: {einthoven}.",
        "",
    ]


def crossval_section(path: Path, report: Mapping[str, Any], summary: ModelSummary) -> list[str]:
    data = mapping(report.get("data"))
    training = mapping(report.get("training"))
    settings = ", ".join(
        f"{key} {training[key]}"
        for key in (
            "epochs",
            "batch_size",
            "learning_rate",
            "mi_weight",
            "synthetic_per_class",
            "pretrained_weights",
        )
        if key in training
    )
    lines = [
        f"### {summary.name}",
        "",
        f"- Report: `{path}`",
        f"- Architecture: `{summary.architecture or MISSING}`, {format_int(summary.parameters)} parameters"
        + representation_note(report),
        f"- Command: {code(text(report.get('command')))}",
        f"- Data: `{text(data.get('path_name')) or MISSING}`, {images_per_class(data)}, "
        f"sha256 {code(text(data.get('sha256')))}",
        f"- Folds: {format_int(summary.n_folds)}, seed "
        f"{format_int(integer(report.get('seed')))}, "
        f"folds file {code(text(report.get('folds_file')))}",
        f"- Training: {settings or MISSING}",
        *ensemble_lines(report),
        f"- Runtime: {text(report.get('runtime')) or MISSING} on {text(report.get('device')) or MISSING}; "
        f"created {summary.created or MISSING}",
        f"- Timed on: {machine_text(report.get('machine'))}",
        "",
        *metrics_lines(summary),
        "Per class (pooled out-of-fold):",
        "",
        *per_class_table(summary),
        "Confusion matrix (pooled out-of-fold, rows true, columns predicted):",
        "",
        *confusion_table(summary),
    ]
    return lines


def out_of_fold_predictions(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{file sha256: (true class index, predicted class index)}`` of a report's out-of-fold rows."""
    return {
        row.sha256: (row.true, max(range(len(row.probabilities)), key=row.probabilities.__getitem__))
        for row in out_of_fold_rows(report)[0]
        if row.probabilities
    }


def paired_differences_section(
    reports: Sequence[tuple[Path, Mapping[str, Any]]],
    summaries: Sequence[ModelSummary],
    decided_runs: Sequence[tuple[ModelSummary, dict[str, tuple[int, int]]]] = (),
) -> list[str]:
    """The best run's macro-F1 minus each other run's, paired on the images both predicted.

    ``decided_runs`` are shipped models with a decision rule, as (their summary, their nested
    cross-validation labels per image): compared like the runs, under the model's name."""
    runs = [
        (summary, out_of_fold_predictions(report))
        for (_, report), summary in zip(reports, summaries, strict=True)
        if summary.macro_f1 is not None
    ] + [(summary, predictions) for summary, predictions in decided_runs if summary.macro_f1 is not None]
    runs = [(summary, predictions) for summary, predictions in runs if predictions]
    if len(runs) < 2:
        return []
    best, best_predictions = max(runs, key=lambda run: run[0].macro_f1 or 0.0)
    rows = []
    for summary, predictions in runs:
        if summary is best:
            continue
        shared = sorted(set(best_predictions) & set(predictions))
        if not shared:
            continue
        truth = [best_predictions[key][0] for key in shared]
        difference = paired_bootstrap_macro_f1_difference(
            truth,
            [best_predictions[key][1] for key in shared],
            [predictions[key][1] for key in shared],
            len(CLASSES),
        )
        rows.append(
            [
                f"{best.name} - {summary.name}",
                len(shared),
                f"{difference['value']:+.3f}",
                f"[{difference['low']:+.3f}, {difference['high']:+.3f}]",
                f"{difference['fraction_positive']:.3f}",
            ]
        )
    return [
        "### Paired differences",
        "",
        f"Macro-F1 of the best run ({best.name}) minus each other run's, on the same images "
        "(matched by sha256) with a paired stratified bootstrap (2000 resamples, seed 0): an "
        "interval that excludes 0 means the difference is not a matter of which images landed "
        "in the sample."
        + (
            " A shipped model with an MI operating point takes part under its own name, with the "
            "labels of its nested cross-validation (see the MI operating point below)."
            if decided_runs
            else ""
        ),
        "",
        *table(["difference", "images", "macro-F1", "95% interval", "share of resamples > 0"], rows),
    ]


def operating_point_section(
    reports: Sequence[tuple[Path, Mapping[str, Any]]],
    summaries: Sequence[ModelSummary],
    applied_by: Mapping[str, str],
) -> list[str]:
    """What an MI threshold chosen by nested cross-validation gives each run, beside its
    argmax labels (the trade of a few false alarms for fewer missed acute MIs), and which
    shipped model applies it (``applied_by``: report file name to model name)."""
    mi = CLASSES.index("mi")
    rows = []
    for (path, report), summary in zip(reports, summaries, strict=True):
        point = operating_point(report)
        if point is None:
            continue
        pooled = point["crossval"]["pooled"]
        interval = pooled["macro_f1"]
        mi_scores = pooled["per_class"]["mi"]
        counts = pooled["confusion_matrix"]["counts"]
        argmax_mi = summary.per_class.get("mi", ClassScores())
        rows.append(
            [
                summary.name,
                " / ".join(f"{threshold:.3f}" for threshold in point["crossval"]["thresholds_per_fold"]),
                f"{point['threshold']:.3f}",
                f"{pooled['accuracy']:.3f}",
                f"{interval['value']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]",
                f"{mi_scores['recall']:.3f} ({counts[mi][mi]}/{mi_scores['support']})",
                f"{mi_scores['precision']:.3f}",
                f"{format_float(summary.macro_f1)}; MI recall {format_float(argmax_mi.recall)}",
                applied_by.get(path.name, "none"),
            ]
        )
    if not rows:
        return []
    return [
        "### MI operating point (nested cross-validation)",
        "",
        "Label MI whenever its calibrated probability reaches a threshold, else the argmax. "
        "Each fold is labelled with the temperature and the threshold (of "
        f"{MI_THRESHOLDS[0]:.2f} to {MI_THRESHOLDS[-1]:.2f} in steps of 0.025) with the best "
        "macro-F1 on the other folds, so every figure here is measured on images the choice "
        "never saw; at 0.50 the rule changes (almost) nothing, as a probability of 0.5 or more "
        "is the largest. A shipped model applies the rule when its card has a `decision` "
        "(`python -m ml.train --mi-operating-point`), with the threshold chosen on all folds. "
        "2000 bootstrap resamples, seed 0.",
        "",
        *table(
            [
                "run",
                "threshold per fold",
                "threshold on all folds",
                "accuracy",
                "macro-F1 [95% CI]",
                "MI recall",
                "MI precision",
                "argmax: macro-F1",
                "applied by",
            ],
            rows,
        ),
    ]


# How each run's photos can be labelled: the argmax, the scans' MI rule, or a rule chosen on photos.
PHOTO_RULES = (
    ("argmax", None, False),
    ("MI threshold chosen on scans", "mi", False),
    ("MI threshold chosen on photos", "mi", True),
)


def photo_runs_section(
    reports: Sequence[tuple[Path, Mapping[str, Any]]], summaries: Sequence[ModelSummary]
) -> list[str]:
    """Each run with photos of its held-out pages (``--photos``): photos against scans of the
    same pages under each labelling rule, every choice nested (``ml.decision.nested_photo_figures``)."""
    rows = []
    for (_, report), summary in zip(reports, summaries, strict=True):
        for rule_name, class_name, photo_rule in PHOTO_RULES:
            # Only the point figures are shown: no bootstrap intervals to resample for.
            figures = nested_photo_figures(report, class_name, photo_rule=photo_rule, n_resamples=1)
            if figures is None:
                break
            pooled, ratios = figures["pooled"], figures["ratio"]
            row = [summary.name, rule_name, f"{pooled['scans']['macro_f1']['value']:.3f}"]
            for kind in ("desk", "screen"):
                if kind in ratios:
                    row.append(f"{pooled[kind]['macro_f1']['value']:.3f} ({ratios[kind]:.2f}x)")
                else:
                    row.append(MISSING)
            rows.append(row)
    if not rows:
        return []
    return [
        "### Photos against scans (nested cross-validation)",
        "",
        "Runs made with `--photos`: a desk photo and a screen photo (`ml.photos`) of every held-out "
        "page, read as an upload is, against the scans of the same pages. The MI thresholds are "
        "chosen as in the table above, on the other folds only: for scans on their scans, for photos "
        "either on their scans or on their photos (every kind together; a shipped model whose card "
        "has `decision_photos` labels a photographed upload that way). Macro-F1, and its ratio to "
        "the scans'.",
        "",
        *table(["run", "labelled by", "scans", "desk photos", "screen photos"], rows),
    ]


def numeric_leaves(document: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """(dotted key, value) for every number in nested dicts, in file order (lists are skipped)."""
    rows: list[tuple[str, str]] = []
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and depth < 3:
            rows.extend(numeric_leaves(value, f"{name}.", depth + 1))
        elif number(value) is not None:
            rows.append((name, str(value) if isinstance(value, int) else f"{value:.4g}"))
    return rows


def guard_section(path: Path) -> list[str]:
    """The guard report's numbers, whatever its exact shape (another module defines it)."""
    report = read_json(path)
    lines = ["## Out-of-distribution guard", "", f"From `{path}`.", ""]
    notes = [(key, value) for key, value in report.items() if isinstance(value, str) and len(value) <= 300]
    lines += [f"- {key}: {value}" for key, value in notes]
    if notes:
        lines.append("")
    rows = numeric_leaves(report)
    lines += table(["field", "value"], rows) if rows else ["No numbers in the report.", ""]
    return lines


def render(models_dir: Path, reports_dir: Path) -> str:
    """The whole of docs/MODELS.md as a string."""
    default_name = DEFAULT_MODEL_NAME
    cards = shipped_cards(models_dir)
    summaries = [with_file_size(summary_from_card(card), models_dir) for card in cards]
    reports = crossval_reports(reports_dir)
    report_summaries = [summary_from_crossval_report(report, path.stem) for path, report in reports]
    backing: dict[str, list[str]] = {}  # report file name: the shipped models it backs
    applied_by: dict[str, str] = {}  # report file name: the model applying its MI operating point
    for card, summary in zip(cards, summaries, strict=True):
        report_file = text(mapping(card.get("crossval")).get("report"))
        if report_file:
            backing.setdefault(Path(report_file).name, []).append(summary.name)
            if mapping(card.get("decision")):
                applied_by[Path(report_file).name] = summary.name
    shipped = {summary.name: summary for summary in summaries}
    lines = [
        "# Models",
        "",
        "<!-- Generated by `python -m ml.report` (`make models-doc`) from the model cards in "
        f"`{models_dir}` and the reports in `{reports_dir}`. Do not edit by hand. -->",
        "",
        "Macro-F1 averages F1 over all four classes, with a 95% stratified bootstrap interval. "
        "ECE is the top-label expected calibration error in equal-width bins, before and after "
        "temperature scaling fitted on out-of-fold outputs. Cross-validated numbers are pooled "
        "out-of-fold predictions; a model that is not cross-validated shows what its card has "
        "(the 'evaluated on' column says what). Class order: "
        + ", ".join(f"`{name}`" for name in CLASSES)
        + ".",
        "",
        "## Shipped models",
        "",
    ]
    if summaries:
        lines += comparison_table(summaries, default_name)
        lines += recall_gaps(summaries, default_name)
        for card, summary in zip(cards, summaries, strict=True):
            lines += model_section(card, summary, default_name)
    else:
        lines += [f"No shipped models in `{models_dir}`.", ""]

    lines += ["## Cross-validation runs", ""]
    if reports:
        lines += [
            "Each architecture trained and evaluated on the same stratified folds "
            "(`python -m ml.crossval`); a run is the evidence behind a shipped model when that "
            "model's card names its report.",
            "",
        ]
        lines += comparison_table(report_summaries, default_name="")
        lines += table(
            ["run", "report", "shipped as"],
            [
                [summary.name, f"`{path}`", ", ".join(backing.get(path.name, ["not shipped"]))]
                for (path, _), summary in zip(reports, report_summaries, strict=True)
            ],
        )
        lines += paired_differences_section(
            reports,
            report_summaries,
            [
                (shipped[applied_by[path.name]], decided_out_of_fold(report))
                for path, report in reports
                if path.name in applied_by
            ],
        )
        lines += operating_point_section(reports, report_summaries, applied_by)
        lines += photo_runs_section(reports, report_summaries)
        for (path, report), summary in zip(reports, report_summaries, strict=True):
            lines += crossval_section(path, report, summary)
    else:
        lines += [f"No cross-validation reports in `{reports_dir}`.", ""]

    guard = reports_dir / "guard.json"
    if guard.is_file():
        lines += guard_section(guard)

    lines += ["## Data credit", "", f"Models trained on the khan-ecg images use: {CREDIT}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.report``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml.report", description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        document = render(args.models_dir, args.reports_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
