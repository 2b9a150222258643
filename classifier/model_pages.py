"""What a model's page tells the people who read its results: what it was trained on, how well it
did in cross-validation (with intervals), what it cannot do, and whose data it learnt from.

Everything comes from the model card registered with the version (``ModelVersion.card``, written by
``ml.train`` and ``ml.photo_report``); a figure the card lacks is said to be unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from classifier.models import ModelVersion
from ml.cards import MISSING, evaluated_on, format_float, format_interval, mapping, number, summary_from_card
from ml.labels import CLASSES, DESCRIPTIONS

ARCHITECTURES = {
    "hybrid": (
        "a hybrid network: a small MobileNetV2 looks at the image of the four rows of traces, "
        "convolutions read the traces digitised to millivolts, and an LSTM reads both in time order"
    ),
    "hybrid_measured": "the hybrid network, given the measurements read off the page as well",
    "cnn": "a small convolutional network over the whole page",
    "mobilenet": "MobileNetV2 over the whole page",
    "densenet": "DenseNet over the whole page",
}
# Below this share of the scans' macro-F1, photos are said to be read less well (issue 15's bar).
PHOTO_PAR = 0.95


@dataclass(frozen=True)
class ClassRow:
    key: str
    name: str
    images: str
    precision: str
    recall: str
    f1: str


@dataclass(frozen=True)
class PhotoRow:
    kind: str
    macro_f1: str
    ratio: str


def model_page(version: ModelVersion, *, is_default: bool) -> dict[str, Any]:
    """The template context of ``version``'s page."""
    card = mapping(version.card)
    summary = summary_from_card(card)
    images = mapping(mapping(card.get("training_data")).get("images_per_class"))
    rows = [
        ClassRow(
            key=key,
            name=DESCRIPTIONS[key][:1].upper() + DESCRIPTIONS[key][1:],
            images=_count(images.get(key)),
            precision=format_float(summary.per_class[key].precision if key in summary.per_class else None),
            recall=format_float(summary.per_class[key].recall if key in summary.per_class else None),
            f1=format_float(summary.per_class[key].f1 if key in summary.per_class else None),
        )
        for key in CLASSES
    ]
    photos = mapping(mapping(card.get("photos")).get("classification"))
    return {
        "version": version,
        "is_default": is_default,
        "architecture": ARCHITECTURES.get(summary.architecture, summary.architecture or "not recorded"),
        "created": summary.created or "not recorded",
        "images_total": _count(sum(int(n) for n in images.values() if isinstance(n, int)) or None),
        "photo_trained": _photo_training(card),
        "evaluated_on": evaluated_on(summary),
        "cross_validated": summary.cross_validated,
        "macro_f1": format_interval(summary),
        "accuracy": format_float(summary.accuracy),
        "ece": format_float(summary.ece_calibrated if summary.ece_calibrated is not None else summary.ece),
        "decision": mapping(card.get("decision")).get("description", ""),
        "decision_photos": mapping(card.get("decision_photos")).get("description", ""),
        "rows": rows,
        "photos": _photo_rows(photos),
        "limits": limits(card, summary.per_class.get("mi"), photos),
        "credit": card.get("credit") or "not recorded",
    }


def limits(card: Mapping[str, Any], mi_scores: Any, photos: Mapping[str, Any]) -> list[str]:
    """What the model cannot do, in sentences for a clinician."""
    said = [
        "It knows four classes only (normal, acute myocardial infarction, history of myocardial "
        "infarction, abnormal heartbeat): an ECG showing anything else is still given one of them.",
        "It reads 12-lead printouts laid out like its training pages (four rows of traces, the last a "
        "rhythm strip); other layouts are refused or misread.",
    ]
    images = mapping(mapping(card.get("training_data")).get("images_per_class"))
    mi_images, total = images.get("mi"), sum(n for n in images.values() if isinstance(n, int))
    recall = number(getattr(mi_scores, "recall", None))
    if isinstance(mi_images, int) and total:
        sentence = f"Acute myocardial infarction is rare in its training data ({mi_images} of {total} images)"
        if recall is not None:
            missed = 1 - recall
            sentence += (
                f": in cross-validation it found {recall:.0%} of them, so about "
                f"{missed:.0%} of acute MIs get another label."
            )
        said.append(sentence if sentence.endswith(".") else sentence + ".")
    said.append(_photo_limit(photos))
    said.append("It is research software, not a medical device: a clinician reads the ECG.")
    return said


def _photo_limit(photos: Mapping[str, Any]) -> str:
    ratios = {kind: number(value) for kind, value in mapping(photos.get("ratio_to_scans")).items()}
    if not ratios or any(value is None for value in ratios.values()):
        return "It has not been measured on phone photos of printouts: send scans."
    scans = _macro_f1(photos.get("scans"))
    figures = " and ".join(f"{_macro_f1(photos.get(kind))} on {_kind_name(kind)}" for kind in ratios)
    if min(value for value in ratios.values() if value is not None) < PHOTO_PAR:
        return (
            f"It reads phone photos of printouts less well than scans: macro-F1 {figures}, against "
            f"{scans} on scans of the same pages. Send a scan when you can."
        )
    return f"It reads phone photos of printouts about as well as scans: macro-F1 {figures}, against {scans}."


def _photo_training(card: Mapping[str, Any]) -> str:
    """How many phone photos of each page the model also trained on, in words ("" for none)."""
    count = mapping(card.get("hyperparameters")).get("photo_augment")
    if not isinstance(count, int) or count < 1:
        return ""
    photos = "a phone photo" if count == 1 else f"{count} phone photos"
    return f"{photos} of each of them, made by the project (on a desk and on a screen, in turn)"


def _photo_rows(photos: Mapping[str, Any]) -> list[PhotoRow]:
    ratios = mapping(photos.get("ratio_to_scans"))
    rows = [PhotoRow("scans", _macro_f1(photos.get("scans")), "1.00")] if ratios else []
    for kind, ratio in ratios.items():
        value = number(ratio)
        share = f"{value:.2f}" if value is not None else MISSING
        rows.append(PhotoRow(_kind_name(kind), _macro_f1(photos.get(kind)), share))
    return rows


PHOTO_KIND_NAMES = {"desk": "photos of the page on a desk", "screen": "photos of the page on a screen"}


def _kind_name(kind: str) -> str:
    return PHOTO_KIND_NAMES.get(kind, kind)


def _macro_f1(report: Any) -> str:
    return format_float(number(mapping(mapping(report).get("macro_f1")).get("value")))


def _count(value: Any) -> str:
    return str(value) if isinstance(value, int) else MISSING
