"""How a model's calibrated probabilities become its label, and how that rule is chosen.

By default a model labels an image with its most probable class (the argmax). A card may
carry a ``decision`` entry instead: label one class (acute MI) whenever its calibrated
probability reaches a threshold, else the argmax. Missing an acute MI costs far more than
a false alarm, and MI is the rarest class, so the argmax calls it too seldom.

The threshold is chosen on a cross-validation report's out-of-fold outputs
(``operating_point``), and the figures carded with it come from *nested* cross-validation:
each fold is labelled with the temperature and threshold chosen on the other folds, so
they are measured on images the choice never saw. The probabilities themselves are never
changed: the rule only decides which label they lead to. Plain numpy; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ml.calibration import fit_temperature, logits_from_probabilities, softmax
from ml.labels import CLASSES, DESCRIPTIONS
from ml.metrics import (
    DEFAULT_BOOTSTRAP_RESAMPLES,
    best_threshold,
    evaluation_report,
    macro_f1,
    nested_operating_point,
    threshold_decisions,
)

# Thresholds tried for the MI operating point: fine steps where an MI call is plausible; at
# 0.5 the rule changes (almost) nothing, as a probability of 0.5 or more is the largest.
MI_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 + 0.025 * step, 3) for step in range(19))


@dataclasses.dataclass(frozen=True)
class DecisionRule:
    """Label ``class_name`` when its probability reaches ``threshold``, else the argmax
    (``class_name`` None: the argmax alone)."""

    class_name: str | None = None
    threshold: float = 1.0

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """Class indexes for rows of probabilities in ``CLASSES`` order."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.class_name is None:
            return probabilities.argmax(axis=1)
        return threshold_decisions(probabilities, CLASSES.index(self.class_name), self.threshold)

    def label_of(self, probabilities: Mapping[str, float]) -> str:
        """The label of one image's probabilities, keyed by class."""
        return CLASSES[int(self.labels(np.array([[probabilities[name] for name in CLASSES]]))[0])]


ARGMAX = DecisionRule()


def rule_from_card(card: Mapping[str, Any], *, photographed: bool = False) -> DecisionRule:
    """The card's decision rule (the argmax when it has none); ``ValueError`` when malformed.

    ``photographed``: the rule for a page straightened from a photo (``ml.rectify``), the card's
    ``decision_photos`` where it has one (``photo_operating_point``), else its scan rule.
    """
    key = "decision_photos" if photographed and card.get("decision_photos") is not None else "decision"
    entry = card.get(key)
    if entry is None:
        return ARGMAX
    if not isinstance(entry, Mapping) or entry.get("rule") != "threshold":
        raise ValueError(f"the card's {key} must be a {{'rule': 'threshold', ...}} entry, not {entry!r}.")
    class_name, threshold = entry.get("class"), entry.get("threshold")
    if class_name not in CLASSES:
        raise ValueError(f"the card's {key} names class {class_name!r}, not one of {list(CLASSES)}.")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise ValueError(f"the card's {key} threshold must be in (0, 1], not {threshold!r}.")
    return DecisionRule(class_name, float(threshold))


def label_note(
    label: str, probabilities: Mapping[str, float], card: Mapping[str, Any], *, photographed: bool = False
) -> str:
    """Why ``label`` is not the most probable class, in a sentence for the result page ('' when
    it is, or when the card's rule does not explain it)."""
    if not probabilities or label == max(probabilities, key=probabilities.__getitem__):
        return ""
    try:
        rule = rule_from_card(card, photographed=photographed)
    except ValueError:
        return ""
    if rule.class_name != label or label not in probabilities:
        return ""
    because = " so that fewer acute MIs are missed" if label == "mi" else ""
    threshold = (
        "threshold for photographed pages" if photographed and card.get("decision_photos") else "threshold"
    )
    return (
        f"Labelled {DESCRIPTIONS[label]}: its probability, {probabilities[label]:.1%}, is not the "
        f"highest but reaches this model's {threshold} of {rule.threshold:.1%}, set{because} at "
        "the cost of some false alarms."
    )


@dataclasses.dataclass(frozen=True)
class OutOfFoldRow:
    sha256: str
    true: int  # class index
    probabilities: list[float]
    fold: int | None


def out_of_fold_rows(report: Mapping[str, Any]) -> tuple[list[OutOfFoldRow], bool]:
    """A report's readable out-of-fold rows, and whether every row was readable (with a fold)."""
    rows = []
    listed = report.get("out_of_fold") or []
    for row in listed:
        try:
            fold = row.get("fold")
            rows.append(
                OutOfFoldRow(
                    sha256=str(row["sha256"]),
                    true=CLASSES.index(row["label"]),
                    probabilities=[float(p) for p in row["probabilities"]],
                    fold=None if fold is None else int(fold),
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return rows, len(rows) == len(listed) and all(row.fold is not None for row in rows)


def _nested_point(
    report: Mapping[str, Any], class_name: str, thresholds: tuple[float, ...], n_resamples: int, seed: int
) -> tuple[list[OutOfFoldRow], dict[str, Any]] | None:
    rows, complete = out_of_fold_rows(report)
    if not rows or not complete or any(len(row.probabilities) != len(CLASSES) for row in rows):
        return None
    point = nested_operating_point(
        [row.true for row in rows],
        np.asarray([row.probabilities for row in rows]),
        [row.fold for row in rows],
        CLASSES.index(class_name),
        thresholds,
        calibrate=True,
        n_resamples=n_resamples,
        seed=seed,
    )
    return rows, point


def decided_out_of_fold(
    report: Mapping[str, Any], class_name: str = "mi", thresholds: tuple[float, ...] = MI_THRESHOLDS
) -> dict[str, tuple[int, int]]:
    """``{file sha256: (true, nested decided class index)}``: the labels ``operating_point``'s
    nested figures score, per image, for paired comparisons ({} without out-of-fold rows)."""
    nested = _nested_point(report, class_name, thresholds, n_resamples=1, seed=0)
    if nested is None:
        return {}
    rows, point = nested
    return {row.sha256: (row.true, int(label)) for row, label in zip(rows, point["decisions"], strict=True)}


def operating_point(
    report: Mapping[str, Any],
    class_name: str = "mi",
    thresholds: tuple[float, ...] = MI_THRESHOLDS,
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any] | None:
    """A card's ``decision`` entry chosen on a cross-validation report, with its nested
    cross-validation figures; None when the report lacks complete out-of-fold rows.

    The threshold is the one with the best macro-F1 on all out-of-fold outputs, calibrated
    with the temperature fitted on all of them (as the shipped model calibrates). ``crossval``
    holds what that procedure scores when each fold's choice sees only the other folds.
    """
    nested = _nested_point(report, class_name, thresholds, n_resamples, seed)
    if nested is None:
        return None
    rows, point = nested
    threshold = point["threshold_all_folds"]
    truth = np.asarray([row.true for row in rows], dtype=np.int64)
    folds = np.asarray([row.fold for row in rows], dtype=np.int64)
    fold_f1 = np.asarray(
        [
            macro_f1(truth[folds == fold], point["decisions"][folds == fold], len(CLASSES))
            for fold in np.unique(folds)
        ]
    )
    return {
        "rule": "threshold",
        "class": class_name,
        "threshold": threshold,
        "description": (
            f"label {class_name} when its calibrated probability reaches {threshold:.3f}, else the "
            "most probable class; the probabilities are reported unchanged"
        ),
        "chosen_by": (
            f"the best macro-F1 (ties: the highest threshold) over thresholds {thresholds[0]:.3f} to "
            f"{thresholds[-1]:.3f} on all {len(rows)} out-of-fold outputs, calibrated with the "
            f"temperature fitted on them ({point['temperature_all_folds']})"
        ),
        "crossval": {
            "method": (
                "nested: each fold labelled with the temperature and threshold chosen on the other folds"
            ),
            "thresholds_per_fold": point["thresholds_per_fold"],
            "temperatures_per_fold": point["temperatures_per_fold"],
            "pooled": evaluation_report(
                truth,
                point["probabilities"],
                CLASSES,
                predictions=point["decisions"],
                n_resamples=n_resamples,
                seed=seed,
            ),
            "fold_macro_f1": {"mean": round(float(fold_f1.mean()), 4), "std": round(float(fold_f1.std()), 4)},
        },
    }


@dataclasses.dataclass(frozen=True)
class PhotoRows:
    """A ``--photos`` report's out-of-fold rows as arrays: the scans' and each kind's photos'."""

    truth: np.ndarray  # class index per page
    folds: np.ndarray
    scans: np.ndarray  # probabilities, one row per page
    photos: dict[str, np.ndarray]  # kind: probabilities, in the pages' order

    @property
    def kinds(self) -> list[str]:
        return list(self.photos)

    def photo_threshold(
        self, temperature: float, rows: np.ndarray, class_index: int, grid: Sequence[float]
    ) -> float:
        """The threshold chosen on ``rows``' photos, every kind together, calibrated with
        ``temperature`` (``best_threshold``)."""
        calibrated = [
            softmax(logits_from_probabilities(self.photos[kind][rows]), temperature) for kind in self.kinds
        ]
        truth = np.concatenate([self.truth[rows]] * len(self.kinds))
        return best_threshold(truth, np.concatenate(calibrated), class_index, grid)


def photo_rows(report: Mapping[str, Any]) -> PhotoRows | None:
    """The report's ``PhotoRows``; None unless every row is complete and carries photos."""
    rows, complete = out_of_fold_rows(report)
    listed = report.get("out_of_fold") or []
    if not rows or not complete or any("photo_probabilities" not in row for row in listed):
        return None
    return PhotoRows(
        truth=np.asarray([row.true for row in rows], dtype=np.int64),
        folds=np.asarray([row.fold for row in rows], dtype=np.int64),
        scans=np.asarray([row.probabilities for row in rows], dtype=np.float64),
        photos={
            kind: np.asarray([row["photo_probabilities"][kind] for row in listed])
            for kind in listed[0]["photo_probabilities"]
        },
    )


def nested_photo_figures(
    report: Mapping[str, Any],
    class_name: str | None = "mi",
    thresholds: tuple[float, ...] = MI_THRESHOLDS,
    *,
    photo_rule: bool = False,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Photos against scans of the same pages, from a cross-validation report run with
    ``--photos`` (``ml.crossval``); None when its rows carry no photo probabilities.

    Each fold's photos are labelled as that fold's scans are in ``operating_point``'s nested
    figures: with the temperature and threshold chosen on the *other* folds' scans (what a model
    trained without those pages would ship with), so neither the photos nor their pages took part
    in any choice. ``photo_rule``: the photos' threshold is chosen instead on the other folds'
    photos, every kind together (what ``photo_operating_point`` ships), calibrated with the same
    temperature. ``class_name`` None: the plain argmax. ``ratio`` is each kind's macro-F1 over
    the scans'.
    """
    read = photo_rows(report)
    if read is None:
        return None
    kinds, truth, folds, scans, photos = read.kinds, read.truth, read.folds, read.scans, read.photos
    # Each set's labels, and the probabilities they were decided from (calibrated as shipped).
    decided_from: dict[str, np.ndarray] = {"scans": scans, **photos}
    photo_thresholds = []
    if class_name is None:
        decided = {name: probabilities.argmax(axis=1) for name, probabilities in decided_from.items()}
        method = "the argmax of each image's out-of-fold probabilities"
    else:
        index = CLASSES.index(class_name)
        grid = tuple(sorted({float(t) for t in thresholds}))
        point = nested_operating_point(truth, scans, folds, index, grid, calibrate=True, n_resamples=1)
        decided = {"scans": point["decisions"], **{kind: np.zeros_like(truth) for kind in kinds}}
        decided_from = {"scans": point["probabilities"], **{kind: np.zeros_like(scans) for kind in kinds}}
        scan_logits = logits_from_probabilities(scans)
        for fold, threshold in zip(np.unique(folds), point["thresholds_per_fold"], strict=True):
            held_out = folds == fold
            temperature = fit_temperature(scan_logits[~held_out], truth[~held_out])
            if photo_rule:
                threshold = read.photo_threshold(temperature, ~held_out, index, grid)
                photo_thresholds.append(threshold)
            for kind in kinds:
                calibrated = softmax(logits_from_probabilities(photos[kind][held_out]), temperature)
                decided_from[kind][held_out] = calibrated
                decided[kind][held_out] = threshold_decisions(calibrated, index, threshold)
        chosen_on = (
            "the other folds' photos (every kind together)" if photo_rule else "the other folds' scans"
        )
        method = (
            f"nested: each fold's scans labelled by the rule (calibrated {class_name} threshold) chosen on "
            f"the other folds' scans, its photos by the {class_name} threshold chosen on {chosen_on}"
        )
    figures = {
        name: evaluation_report(
            truth, decided_from[name], CLASSES, predictions=labels, n_resamples=n_resamples, seed=seed
        )
        for name, labels in decided.items()
    }
    scan_f1 = figures["scans"]["macro_f1"]["value"]
    result = {
        "method": method,
        "kinds": kinds,
        "pooled": figures,
        "ratio": {kind: round(figures[kind]["macro_f1"]["value"] / scan_f1, 4) for kind in kinds},
    }
    if photo_rule and photo_thresholds:
        result["photo_thresholds_per_fold"] = photo_thresholds
    return result


def photo_operating_point(
    report: Mapping[str, Any],
    class_name: str = "mi",
    thresholds: tuple[float, ...] = MI_THRESHOLDS,
    *,
    n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any] | None:
    """A card's ``decision_photos`` entry: the ``class_name`` threshold for pages straightened
    from a photo, chosen on a ``--photos`` cross-validation report; None without photo rows.

    A photo's probabilities come out of the same model and the same temperature as a scan's,
    but sit elsewhere (a photo's traces are read through blur, light and perspective), so the
    threshold that serves scans best does not serve photos best. The threshold is the one with
    the best macro-F1 on all out-of-fold photo outputs, every kind together, calibrated with the
    temperature fitted on all scans (the model's one temperature); ``crossval`` holds what that
    procedure scores when each fold's choice sees only the other folds (``nested_photo_figures``
    with ``photo_rule``).
    """
    nested = nested_photo_figures(
        report, class_name, thresholds, photo_rule=True, n_resamples=n_resamples, seed=seed
    )
    read = photo_rows(report)
    if nested is None or read is None:
        return None
    temperature = fit_temperature(logits_from_probabilities(read.scans), read.truth)
    grid = tuple(sorted({float(t) for t in thresholds}))
    every_page = np.ones_like(read.truth, dtype=bool)
    threshold = read.photo_threshold(temperature, every_page, CLASSES.index(class_name), grid)
    n_photos = len(read.truth) * len(read.kinds)
    return {
        "rule": "threshold",
        "class": class_name,
        "threshold": threshold,
        "description": (
            f"for a page straightened from a photo: label {class_name} when its calibrated probability "
            f"reaches {threshold:.3f}, else the most probable class; the probabilities are reported unchanged"
        ),
        "chosen_by": (
            f"the best macro-F1 (ties: the highest threshold) over thresholds {grid[0]:.3f} to "
            f"{grid[-1]:.3f} on the out-of-fold outputs of {n_photos} photos ({', '.join(read.kinds)}) "
            f"of {len(read.truth)} pages, "
            f"calibrated with the temperature fitted on the scans ({round(temperature, 4)})"
        ),
        "crossval": nested,
    }
