"""Model cards and cross-validation reports, read defensively into one comparable summary.

Cards grew over time (``hybrid-v1`` has only a held-out validation split; later cards carry
cross-validation, calibration and a dev evaluation), and every field but name, architecture
and file sha256 is optional. ``summary_from_card`` and ``summary_from_crossval_report`` turn
either into a ``ModelSummary`` with the same fields, ``None`` where a number is unknown.
The admin's comparison page and ``python -m ml.report`` both build on it, so the site and
``docs/MODELS.md`` show the same numbers. Plain Python: no numpy, TensorFlow or Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ml.labels import CLASSES

SOURCE_CROSSVAL = "cross-validation"
SOURCE_VALIDATION = "held-out validation split"
SOURCE_CARD = "card metrics"
SOURCE_DEV = "dev evaluation"
SOURCE_NONE = "no metrics"


@dataclass(frozen=True)
class ClassScores:
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    support: int | None = None


@dataclass(frozen=True)
class ModelSummary:
    """What one model (or one cross-validation run) scored, every number optional."""

    name: str
    architecture: str
    parameters: int | None = None
    file_bytes: int | None = None
    source: str = SOURCE_NONE  # where accuracy, F1 and the confusion matrix come from
    cross_validated: bool = False
    n_folds: int | None = None
    n: int | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    macro_f1_low: float | None = None
    macro_f1_high: float | None = None
    fold_macro_f1_mean: float | None = None
    fold_macro_f1_std: float | None = None
    classes: tuple[str, ...] = CLASSES
    per_class: dict[str, ClassScores] = field(default_factory=dict)
    confusion: list[list[int]] | None = None  # rows true, columns predicted, in `classes` order
    ece: float | None = None
    ece_calibrated: float | None = None
    temperature: float | None = None
    bins: list[dict[str, float]] = field(default_factory=list)
    bins_calibrated: list[dict[str, float]] = field(default_factory=list)
    ms_per_image: float | None = None
    timed_on: str = ""  # the machine ms_per_image was measured on (machine_text)
    training_seconds: float | None = None
    created: str = ""
    decision: str = "argmax"  # how the probabilities become a label (ml.decision)

    def compact(self) -> dict[str, Any]:
        """The headline numbers as JSON (no bins, no confusion matrix): ModelVersion.metrics."""
        data = asdict(self)
        for bulky in ("bins", "bins_calibrated", "confusion"):
            data.pop(bulky)
        data["classes"] = list(self.classes)
        return data


def number(value: Any) -> float | None:
    """A finite int or float as float; anything else (bool, str, NaN, missing) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    found = number(value)
    return int(found) if found is not None else None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _report_fields(report: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of an ``ml.metrics.evaluation_report`` or of the older flat card metrics."""
    fields: dict[str, Any] = {"n": integer(report.get("n")), "accuracy": number(report.get("accuracy"))}
    macro = report.get("macro_f1")
    if isinstance(macro, Mapping):
        fields["macro_f1"] = number(macro.get("value"))
        fields["macro_f1_low"] = number(macro.get("low"))
        fields["macro_f1_high"] = number(macro.get("high"))
    else:
        fields["macro_f1"] = number(macro)

    matrix = mapping(report.get("confusion_matrix"))
    classes = matrix.get("rows_true_columns_predicted")
    if isinstance(classes, list) and classes and all(isinstance(name, str) for name in classes):
        fields["classes"] = tuple(classes)
    counts = matrix.get("counts")
    if _is_square_matrix(counts, len(fields.get("classes", CLASSES))):
        fields["confusion"] = [[integer(cell) or 0 for cell in row] for row in counts]

    per_class: dict[str, ClassScores] = {}
    nested = mapping(report.get("per_class"))
    for index, name in enumerate(fields.get("classes", CLASSES)):
        scores = mapping(nested.get(name))
        support = integer(scores.get("support"))
        if support is None and "confusion" in fields:
            support = sum(fields["confusion"][index])  # older cards: the confusion row's total
        per_class[name] = ClassScores(
            precision=number(scores.get("precision", mapping(report.get("per_class_precision")).get(name))),
            recall=number(scores.get("recall", mapping(report.get("per_class_recall")).get(name))),
            f1=number(scores.get("f1", mapping(report.get("per_class_f1")).get(name))),
            support=support,
        )
    if any(scores != ClassScores() for scores in per_class.values()):
        fields["per_class"] = per_class

    ece = report.get("ece")
    fields["ece"] = number(mapping(ece).get("value")) if isinstance(ece, Mapping) else number(ece)
    fields["bins"] = _bins(mapping(ece).get("bins"))
    return fields


def _is_square_matrix(counts: Any, size: int) -> bool:
    return (
        isinstance(counts, list)
        and len(counts) == size
        and all(isinstance(row, list) and len(row) == size for row in counts)
    )


def _bins(value: Any) -> list[dict[str, float]]:
    """Reliability bins (``low``, ``high``, ``count``, ``accuracy``, ``confidence``); bad rows dropped."""
    if not isinstance(value, list):
        return []
    rows = []
    for row in value:
        row = mapping(row)
        numbers = {key: number(row.get(key)) for key in ("low", "high", "count", "accuracy", "confidence")}
        if all(found is not None for found in numbers.values()):
            rows.append({key: float(found) for key, found in numbers.items() if found is not None})
    return rows


def _temperature(value: Any) -> float | None:
    """A temperature given as a number (cards) or as ``{"value": T, ...}`` (crossval reports)."""
    return number(mapping(value).get("value")) if isinstance(value, Mapping) else number(value)


def _fold_fields(value: Any) -> dict[str, float | None]:
    """Macro-F1 across folds, ``{"mean": m, "std": s}``, as summary fields."""
    folds = mapping(value)
    return {"fold_macro_f1_mean": number(folds.get("mean")), "fold_macro_f1_std": number(folds.get("std"))}


def _calibrated_fields(report: Mapping[str, Any]) -> dict[str, Any]:
    fields = _report_fields(report)
    return {"ece_calibrated": fields["ece"], "bins_calibrated": fields["bins"]}


def summary_from_card(card: Mapping[str, Any]) -> ModelSummary:
    """The summary of a model card.

    Metrics come from the first of: the pooled out-of-fold cross-validation report
    (``crossval.pooled``), the held-out validation split (``metrics.validation``), flat
    ``metrics``, the dev evaluation (``dev_evaluation.result``). A card with a ``decision``
    rule (``ml.decision``) shows the labels that rule gives, from its nested cross-validation
    (``decision.crossval.pooled``); the ECE stays the probabilities' own.
    """
    crossval = mapping(card.get("crossval"))
    decision = mapping(card.get("decision"))
    decided = mapping(mapping(decision.get("crossval")).get("pooled"))
    metrics = mapping(card.get("metrics"))
    dev_result = mapping(mapping(card.get("dev_evaluation")).get("result"))
    fields: dict[str, Any] = {}
    if mapping(crossval.get("pooled")):
        fields = {**_report_fields(mapping(crossval["pooled"])), "source": SOURCE_CROSSVAL}
        fields["cross_validated"] = True
        fields["n_folds"] = integer(crossval.get("n_folds"))
        fields.update(_fold_fields(crossval.get("fold_macro_f1")))
        fields.update(_calibrated_fields(mapping(crossval.get("pooled_calibrated"))))
        if decided:
            labels = _report_fields(decided)
            fields.update({key: labels[key] for key in labels if key not in ("ece", "bins")})
            fields.update(_fold_fields(mapping(decision.get("crossval")).get("fold_macro_f1")))
    elif mapping(metrics.get("validation")):
        fields = {**_report_fields(mapping(metrics["validation"])), "source": SOURCE_VALIDATION}
    elif number(metrics.get("macro_f1")) is not None or number(metrics.get("accuracy")) is not None:
        fields = {**_report_fields(metrics), "source": SOURCE_CARD}
    elif dev_result:
        fields = {**_report_fields(dev_result), "source": SOURCE_DEV}
    temperature = _temperature(mapping(card.get("calibration")).get("temperature"))
    if temperature is None:
        temperature = _temperature(crossval.get("temperature"))
    ms_per_image = number(card.get("ms_per_image"))
    timed_by = card if ms_per_image is not None else crossval
    return ModelSummary(
        name=text(card.get("name")) or "unnamed",
        architecture=text(card.get("architecture")),
        parameters=integer(card.get("parameters")),
        file_bytes=integer(card.get("file_bytes")),
        temperature=temperature,
        ms_per_image=ms_per_image if ms_per_image is not None else number(crossval.get("ms_per_image")),
        timed_on=machine_text(timed_by.get("machine")),
        training_seconds=number(card.get("training_seconds")),
        created=text(card.get("created")),
        decision=_decision_text(decision, mapping(card.get("decision_photos"))),
        **fields,
    )


def machine_text(machine: object) -> str:
    """The machine a timing was taken on (``ml.device.machine_description``), in words."""
    machine = mapping(machine)
    if not machine:
        return "not recorded"
    flags = ", ".join(str(flag) for flag in machine.get("flags") or []) or "none of note"
    return (
        f"{text(machine.get('cpu')) or MISSING} ({text(machine.get('arch')) or MISSING}; {flags}), "
        f"{format_int(integer(machine.get('cores')))} cores, oneDNN {text(machine.get('onednn')) or MISSING}"
    )


def _decision_text(decision: Mapping[str, Any], photos: Mapping[str, Any] | None = None) -> str:
    """``argmax``, or e.g. ``mi if p ≥ 0.200, else argmax``: a card's decision rule in a table
    cell, with its photo rule's threshold (``decision_photos``) when it has one:
    ``mi if p ≥ 0.200 (photos 0.250), else argmax``."""
    class_name, threshold = text(decision.get("class")), number(decision.get("threshold"))
    if decision.get("rule") != "threshold" or not class_name or threshold is None:
        return "argmax"
    photo_threshold = number((photos or {}).get("threshold"))
    on_photos = f" (photos {photo_threshold:.3f})" if photo_threshold is not None else ""
    return f"{class_name} if p ≥ {threshold:.3f}{on_photos}, else argmax"


def summary_from_crossval_report(report: Mapping[str, Any], name: str = "") -> ModelSummary:
    """The summary of a ``python -m ml.crossval`` report (``crossval-<arch>.json``).

    Training seconds are the mean over folds of one fold's training, comparable to one
    model's training; the report's ``seconds`` covers the whole run.
    """
    architecture = text(report.get("architecture"))
    per_fold = report.get("per_fold") if isinstance(report.get("per_fold"), list) else []
    fold_seconds = [number(mapping(fold).get("training_seconds")) for fold in per_fold]
    known_seconds = [seconds for seconds in fold_seconds if seconds is not None]
    temperature = _temperature(report.get("temperature"))
    if temperature is None:
        temperature = _temperature(mapping(report.get("calibration")).get("temperature"))
    return ModelSummary(
        name=name or f"crossval-{architecture or 'unknown'}",
        architecture=architecture,
        parameters=integer(report.get("parameters")),
        source=SOURCE_CROSSVAL,
        cross_validated=True,
        n_folds=integer(report.get("n_folds")),
        temperature=temperature,
        ms_per_image=number(report.get("ms_per_image")),
        timed_on=machine_text(report.get("machine")),
        training_seconds=round(sum(known_seconds) / len(known_seconds), 1) if known_seconds else None,
        created=text(report.get("created")),
        **_report_fields(mapping(report.get("pooled"))),
        **_calibrated_fields(mapping(report.get("pooled_calibrated"))),
        **_fold_fields(report.get("fold_macro_f1")),
    )


# Formatting shared by the admin table and docs/MODELS.md, so both print the same strings.

MISSING = "—"


def format_float(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def format_int(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def format_megabytes(value: int | None) -> str:
    return MISSING if value is None else f"{value / 1_000_000:.1f} MB"


def format_interval(summary: ModelSummary) -> str:
    """Macro-F1 with its 95% interval when known: ``0.612 [0.540, 0.690]``."""
    value = format_float(summary.macro_f1)
    if summary.macro_f1_low is None or summary.macro_f1_high is None:
        return value
    return f"{value} [{summary.macro_f1_low:.3f}, {summary.macro_f1_high:.3f}]"


def evaluated_on(summary: ModelSummary) -> str:
    """Where the numbers come from, e.g. ``5-fold cross-validation`` or ``not cross-validated (...)``."""
    if summary.cross_validated:
        return f"{summary.n_folds}-fold cross-validation" if summary.n_folds else SOURCE_CROSSVAL
    if summary.source == SOURCE_NONE:
        return "not cross-validated; no metrics"
    return f"not cross-validated ({summary.source})"


@dataclass(frozen=True)
class Column:
    key: str
    header: str


def table_columns(classes: tuple[str, ...] = CLASSES) -> list[Column]:
    """The comparison table's columns, the same on the admin page and in docs/MODELS.md."""
    return [
        Column("name", "model"),
        Column("default", "default"),
        Column("architecture", "architecture"),
        Column("parameters", "parameters"),
        Column("file_size", "file size"),
        Column("evaluated_on", "evaluated on"),
        Column("decision", "decision"),
        Column("n", "n"),
        Column("accuracy", "accuracy"),
        Column("macro_f1", "macro-F1 [95% CI]"),
        *(Column(f"recall_{name}", f"recall {name}") for name in classes),
        *(Column(f"f1_{name}", f"F1 {name}") for name in classes),
        Column("ece", "ECE"),
        Column("ece_calibrated", "ECE calibrated"),
        Column("ms_per_image", "ms/image"),
        Column("timed_on", "timed on"),
        Column("training_seconds", "training s"),
        Column("created", "created"),
    ]


def table_row(summary: ModelSummary, *, is_default: bool = False) -> dict[str, str]:
    """The summary as table cells (strings) keyed by ``table_columns`` keys."""
    row = {
        "name": summary.name,
        "default": "default" if is_default else "",
        "architecture": summary.architecture or MISSING,
        "parameters": format_int(summary.parameters),
        "file_size": format_megabytes(summary.file_bytes),
        "evaluated_on": evaluated_on(summary),
        "decision": summary.decision,
        "n": format_int(summary.n),
        "accuracy": format_float(summary.accuracy),
        "macro_f1": format_interval(summary),
        "ece": format_float(summary.ece),
        "ece_calibrated": format_float(summary.ece_calibrated),
        "ms_per_image": format_float(summary.ms_per_image, 1),
        "timed_on": summary.timed_on,
        "training_seconds": format_float(summary.training_seconds, 0),
        "created": summary.created or MISSING,
    }
    for name in dict.fromkeys((*CLASSES, *summary.classes)):
        scores = summary.per_class.get(name, ClassScores())
        row[f"recall_{name}"] = format_float(scores.recall)
        row[f"f1_{name}"] = format_float(scores.f1)
    return row
