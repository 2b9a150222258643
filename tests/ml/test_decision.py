"""Decision rules: how calibrated probabilities become a label, and how an MI threshold is chosen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.crossval_card import card_section
from ml.decision import (
    ARGMAX,
    MI_THRESHOLDS,
    DecisionRule,
    label_note,
    nested_photo_figures,
    operating_point,
    photo_operating_point,
    rule_from_card,
)
from tests.model_cards import crossval_report, under_called_mi_report

PROBABILITIES = np.array(
    [
        [0.70, 0.25, 0.05, 0.00],  # normal wins; MI at 0.25
        [0.60, 0.10, 0.30, 0.00],
        [0.10, 0.05, 0.05, 0.80],
    ]
)


def test_the_argmax_rule_and_a_threshold_rule() -> None:
    assert ARGMAX.labels(PROBABILITIES).tolist() == [0, 0, 3]
    assert DecisionRule("mi", 0.2).labels(PROBABILITIES).tolist() == [1, 0, 3]
    assert DecisionRule("mi", 0.05).labels(PROBABILITIES).tolist() == [1, 1, 1]
    one_image = dict(zip(("normal", "mi", "history_mi", "abnormal"), PROBABILITIES[0], strict=True))
    assert (ARGMAX.label_of(one_image), DecisionRule("mi", 0.2).label_of(one_image)) == ("normal", "mi")


def test_a_card_without_a_decision_uses_the_argmax_and_a_malformed_one_is_refused() -> None:
    assert rule_from_card({}) == ARGMAX
    card = {"decision": {"rule": "threshold", "class": "mi", "threshold": 0.2}}
    assert rule_from_card(card) == DecisionRule("mi", 0.2)
    for broken, message in [
        ({"rule": "vote"}, "must be a"),
        ({"rule": "threshold", "class": "stemi", "threshold": 0.2}, "names class 'stemi'"),
        ({"rule": "threshold", "class": "mi", "threshold": 0}, r"in \(0, 1\]"),
        ({"rule": "threshold", "class": "mi", "threshold": True}, r"in \(0, 1\]"),
        ({"rule": "threshold", "class": "mi"}, r"in \(0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            rule_from_card({"decision": broken})


def test_a_label_the_rule_made_gets_a_note_and_the_argmax_none() -> None:
    card = {"decision": {"rule": "threshold", "class": "history_mi", "threshold": 0.25}}
    probabilities = {"normal": 0.6, "mi": 0.05, "history_mi": 0.3, "abnormal": 0.05}
    assert label_note("history_mi", probabilities, card) == (
        "Labelled history of myocardial infarction: its probability, 30.0%, is not the highest but "
        "reaches this model's threshold of 25.0%, set at the cost of some false alarms."
    )
    assert label_note("normal", probabilities, card) == ""  # the most probable class
    assert label_note("history_mi", probabilities, {}) == ""  # no rule explains it
    assert label_note("history_mi", probabilities, {"decision": {"rule": "vote"}}) == ""


def test_the_operating_point_is_chosen_on_all_folds_and_scored_nested() -> None:
    """Calibration flattens the MI pages' probabilities to p(mi) in [0.45, 0.5); every
    threshold up to 0.45 finds them all, and ties go to the highest."""
    decision = operating_point(under_called_mi_report(), n_resamples=50)

    assert decision["rule"] == "threshold" and decision["class"] == "mi"
    assert decision["threshold"] == 0.45 and decision["threshold"] in MI_THRESHOLDS
    assert rule_from_card({"decision": decision}) == DecisionRule("mi", 0.45)
    nested = decision["crossval"]
    assert nested["thresholds_per_fold"] == [0.45, 0.45]
    assert len(nested["temperatures_per_fold"]) == 2 and all(t > 1 for t in nested["temperatures_per_fold"])
    pooled = nested["pooled"]
    assert pooled["n"] == 40 and pooled["accuracy"] == 1.0
    assert pooled["per_class"]["mi"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 10}
    assert pooled["confusion_matrix"]["counts"][1] == [0, 10, 0, 0]
    assert nested["fold_macro_f1"] == {"mean": 1.0, "std": 0.0}
    assert "0.450" in decision["description"] and "40 out-of-fold outputs" in decision["chosen_by"]


def test_no_operating_point_without_complete_out_of_fold_rows() -> None:
    report = under_called_mi_report()
    assert operating_point(crossval_report("hybrid", 0)) is None
    del report["out_of_fold"][3]["fold"]
    assert operating_point(report) is None


def test_a_card_section_carries_the_decision_only_when_asked(tmp_path: Path) -> None:
    report = under_called_mi_report()
    report_file = tmp_path / "crossval-hybrid.json"
    report_file.write_text(json.dumps(report))
    sha = report["data"]["sha256"]

    plain = card_section(report_file, arch="hybrid", data_sha256=sha)
    decided = card_section(report_file, arch="hybrid", data_sha256=sha, mi_operating_point=True)

    assert "decision" not in plain
    assert decided["decision"] == operating_point(report)
    assert decided["crossval"] == plain["crossval"] and decided["calibration"] == plain["calibration"]
    report_file.write_text(json.dumps(crossval_report("hybrid", 0) | {"out_of_fold": []}))
    with pytest.raises(ValueError, match="no complete out-of-fold rows"):
        card_section(report_file, arch="hybrid", data_sha256=sha, mi_operating_point=True)


def _with_photos(report: dict, photo_rows: dict[str, list[list[float]]]) -> dict:
    rows = [
        {**row, "photo_probabilities": {kind: values[i] for kind, values in photo_rows.items()}}
        for i, row in enumerate(report["out_of_fold"])
    ]
    return report | {"out_of_fold": rows}


def test_photos_are_labelled_by_the_rule_each_fold_chose_on_the_other_folds_scans() -> None:
    report = under_called_mi_report()
    scans = [row["probabilities"] for row in report["out_of_fold"]]
    # Desk photos read like their scans; on screen photos every page looks normal.
    screen = [[0.9, 0.04, 0.03, 0.03] for _ in scans]

    figures = nested_photo_figures(_with_photos(report, {"desk": scans, "screen": screen}), n_resamples=20)

    assert figures["kinds"] == ["desk", "screen"] and figures["method"].startswith("nested")
    pooled = figures["pooled"]
    # The scans score as operating_point's nested figures do: the threshold finds every MI page.
    assert pooled["scans"]["macro_f1"]["value"] == 1.0
    assert pooled["desk"] == pooled["scans"] | {"ece": pooled["desk"]["ece"]}
    assert pooled["screen"]["per_class"]["normal"]["recall"] == 1.0
    assert pooled["screen"]["per_class"]["abnormal"]["recall"] == 0.0
    assert figures["ratio"] == {"desk": 1.0, "screen": round(pooled["screen"]["macro_f1"]["value"], 4)}


def test_photo_figures_with_the_argmax_and_without_photo_rows() -> None:
    report = under_called_mi_report()
    scans = [row["probabilities"] for row in report["out_of_fold"]]

    figures = nested_photo_figures(_with_photos(report, {"desk": scans}), class_name=None, n_resamples=20)

    # The argmax calls the 10 MI pages normal, on scans and photos alike.
    assert figures["pooled"]["desk"]["per_class"]["mi"]["recall"] == 0.0
    assert figures["ratio"] == {"desk": 1.0}
    assert nested_photo_figures(report) is None


def _photos_that_call_mi_less(report: dict) -> dict:
    """Photos of ``under_called_mi_report``'s pages whose MI pages read MI at 0.1, not 0.3:
    below any threshold that scans choose, above every other photo's."""
    photo = {"mi": [0.85, 0.1, 0.05, 0.0], "normal": [0.97, 0.01, 0.02, 0.0]}
    rows = [photo.get(row["label"], row["probabilities"]) for row in report["out_of_fold"]]
    return _with_photos(report, {"desk": rows, "screen": rows})


def test_a_photo_rule_chosen_on_the_other_folds_photos_finds_what_the_scan_rule_misses() -> None:
    report = _photos_that_call_mi_less(under_called_mi_report())

    by_scans = nested_photo_figures(report, n_resamples=20)
    by_photos = nested_photo_figures(report, photo_rule=True, n_resamples=20)

    assert by_scans["pooled"]["desk"]["per_class"]["mi"]["recall"] == 0.0
    assert by_photos["pooled"]["desk"]["per_class"]["mi"]["recall"] == 1.0
    assert by_photos["ratio"] == {"desk": 1.0, "screen": 1.0}
    # The scans are labelled as before: only the photos' threshold is chosen on photos.
    assert by_photos["pooled"]["scans"] == by_scans["pooled"]["scans"]
    assert len(by_photos["photo_thresholds_per_fold"]) == 2 and "other folds' photos" in by_photos["method"]


def test_the_photo_operating_point_is_a_card_entry_the_photo_rule_reads() -> None:
    report = _photos_that_call_mi_less(under_called_mi_report())

    entry = photo_operating_point(report, n_resamples=20)

    assert entry["rule"] == "threshold" and entry["class"] == "mi"
    assert "80 photos (desk, screen) of 40 pages" in entry["chosen_by"]
    assert entry["crossval"] == nested_photo_figures(report, photo_rule=True, n_resamples=20)
    card = {"decision": {"rule": "threshold", "class": "mi", "threshold": 0.3}, "decision_photos": entry}
    assert rule_from_card(card) == DecisionRule("mi", 0.3)
    assert rule_from_card(card, photographed=True) == DecisionRule("mi", entry["threshold"])
    assert rule_from_card({"decision": card["decision"]}, photographed=True) == DecisionRule("mi", 0.3)
    assert photo_operating_point(under_called_mi_report()) is None
    probabilities = {"normal": 0.85, "mi": 0.1, "history_mi": 0.05, "abnormal": 0.0}
    photo_note = label_note("mi", probabilities, card, photographed=True)
    assert f"this model's threshold for photographed pages of {entry['threshold']:.1%}" in photo_note
    assert "this model's threshold of 30.0%" in label_note("mi", probabilities, card)


def test_a_card_section_from_a_report_with_photos_carries_the_photo_rule(tmp_path: Path) -> None:
    report = _photos_that_call_mi_less(under_called_mi_report())
    report_file = tmp_path / "crossval-hybrid-photos.json"
    report_file.write_text(json.dumps(report))
    sha = report["data"]["sha256"]

    decided = card_section(report_file, arch="hybrid", data_sha256=sha, mi_operating_point=True)

    assert decided["decision"] == operating_point(report)
    assert decided["decision_photos"] == photo_operating_point(report)
    assert decided["decision_photos"]["threshold"] < decided["decision"]["threshold"]
    assert "decision_photos" not in card_section(report_file, arch="hybrid", data_sha256=sha)
