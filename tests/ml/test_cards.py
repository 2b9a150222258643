"""ml.cards: any card or cross-validation report becomes the same summary, missing numbers as None."""

from __future__ import annotations

import pytest

from ml.cards import (
    MISSING,
    SOURCE_CROSSVAL,
    SOURCE_VALIDATION,
    evaluated_on,
    summary_from_card,
    summary_from_crossval_report,
    table_columns,
    table_row,
)
from tests.model_cards import crossval_card, crossval_report, validation_card


def test_a_cross_validated_card_gives_pooled_numbers_with_interval_and_both_eces():
    card = crossval_card()
    pooled = card["crossval"]["pooled"]

    summary = summary_from_card(card)

    assert (summary.source, summary.cross_validated, summary.n_folds) == (SOURCE_CROSSVAL, True, 5)
    assert summary.n == pooled["n"] == 40
    assert summary.macro_f1 == pooled["macro_f1"]["value"]
    assert (summary.macro_f1_low, summary.macro_f1_high) == (
        pooled["macro_f1"]["low"],
        pooled["macro_f1"]["high"],
    )
    assert summary.per_class["mi"].recall == pooled["per_class"]["mi"]["recall"]
    assert summary.confusion == pooled["confusion_matrix"]["counts"]
    assert summary.ece == pooled["ece"]["value"]
    assert summary.ece_calibrated == card["crossval"]["pooled_calibrated"]["ece"]["value"]
    assert summary.temperature == 1.7
    assert len(summary.bins) == 10 and len(summary.bins_calibrated) == 10
    assert (summary.ms_per_image, summary.training_seconds, summary.file_bytes) == (12.3, 600.0, 2_500_000)


def test_a_card_with_a_decision_rule_shows_its_nested_labels_and_the_probabilities_ece():
    from tests.model_cards import report

    card = crossval_card()
    decided = report(seed=7)
    nested = {"pooled": decided, "fold_macro_f1": {"mean": 0.61, "std": 0.05}}
    card["decision"] = {"rule": "threshold", "class": "mi", "threshold": 0.2, "crossval": nested}

    summary = summary_from_card(card)

    assert summary.decision == "mi if p ≥ 0.200, else argmax"
    assert summary.accuracy == decided["accuracy"] and summary.macro_f1 == decided["macro_f1"]["value"]
    assert summary.per_class["mi"].recall == decided["per_class"]["mi"]["recall"]
    assert summary.confusion == decided["confusion_matrix"]["counts"]
    assert (summary.fold_macro_f1_mean, summary.fold_macro_f1_std) == (0.61, 0.05)
    assert summary.ece == card["crossval"]["pooled"]["ece"]["value"]  # the rule changes no probability
    assert summary.ece_calibrated == card["crossval"]["pooled_calibrated"]["ece"]["value"]
    assert table_row(summary)["decision"] == "mi if p ≥ 0.200, else argmax"
    assert summary_from_card(crossval_card()).decision == "argmax"
    card["decision_photos"] = {"rule": "threshold", "class": "mi", "threshold": 0.25}
    assert summary_from_card(card).decision == "mi if p ≥ 0.200 (photos 0.250), else argmax"


def test_a_validation_only_card_is_not_cross_validated_but_keeps_its_numbers():
    summary = summary_from_card(validation_card())

    assert (summary.source, summary.cross_validated) == (SOURCE_VALIDATION, False)
    assert (summary.accuracy, summary.macro_f1, summary.macro_f1_low) == (0.75, 0.5925, None)
    assert summary.per_class["mi"].recall == 0.25
    assert summary.per_class["history_mi"].support == 2  # from the confusion row
    assert summary.ece is None
    assert evaluated_on(summary) == "not cross-validated (held-out validation split)"


def test_the_shipped_hybrid_v1_card_reads_as_a_validation_split():
    from ml.models import MODELS_DIR, read_card

    card = read_card(MODELS_DIR / "hybrid-v1.keras")
    if not card:
        pytest.skip("hybrid-v1 is not shipped in this checkout")

    summary = summary_from_card(card)

    assert summary.name == "hybrid-v1"
    assert summary.macro_f1 is not None
    assert summary.confusion is not None


@pytest.mark.parametrize(
    "card",
    [
        {"name": "x", "architecture": "cnn"},
        {"name": "x", "crossval": "oops", "metrics": [1, 2], "parameters": "many"},
        {"name": "x", "crossval": {"pooled": {"macro_f1": {"value": "high"}, "ece": 3, "per_class": []}}},
        {"name": "x", "metrics": {"validation": {"confusion_matrix": {"counts": [[1, 2]]}}}},
        {"name": "x", "training_seconds": True, "ms_per_image": float("nan")},
    ],
)
def test_odd_cards_give_missing_numbers_instead_of_errors(card):
    summary = summary_from_card(card)
    row = table_row(summary)

    assert summary.name == "x"
    assert summary.parameters is None and summary.training_seconds is None and summary.ms_per_image is None
    assert set(row) >= {column.key for column in table_columns()}


def test_a_crossval_report_summary_averages_training_over_folds():
    summary = summary_from_crossval_report(crossval_report("cnn"), "crossval-cnn")

    assert (summary.name, summary.architecture, summary.cross_validated) == ("crossval-cnn", "cnn", True)
    assert summary.training_seconds == 110.0
    assert summary.temperature == 1.4
    assert summary.ece_calibrated is not None


def test_a_table_row_formats_every_column_and_marks_the_default():
    summary = summary_from_card(validation_card())

    row = table_row(summary, is_default=True)

    assert row["default"] == "default"
    assert row["macro_f1"] == "0.593"
    assert row["recall_mi"] == "0.250"
    assert row["ece"] == MISSING
    assert row["parameters"] == "525,444"


def test_the_interval_is_printed_when_known():
    row = table_row(summary_from_card(crossval_card()))

    assert row["macro_f1"].count("[") == 1 and row["macro_f1"].endswith("]")


def test_compact_metrics_are_json_without_bins_or_matrix():
    import json

    compact = summary_from_card(crossval_card()).compact()

    assert "bins" not in compact and "confusion" not in compact
    assert json.loads(json.dumps(compact))["per_class"]["mi"]["recall"] is not None


MACHINE = {"cpu": "AMD EPYC", "arch": "x86_64", "flags": ["avx2", "fma"], "cores": 2}
MACHINE["onednn"] = "off (default)"


def test_every_timing_names_the_machine_it_was_taken_on():
    card = {**crossval_card("hybrid-v4", "hybrid"), "machine": MACHINE}
    summary = summary_from_card(card)
    assert summary.timed_on == "AMD EPYC (x86_64; avx2, fma), 2 cores, oneDNN off (default)"
    assert table_row(summary)["timed_on"] == summary.timed_on
    assert [column.key for column in table_columns()].index("timed_on") == [
        column.key for column in table_columns()
    ].index("ms_per_image") + 1
    assert summary_from_card(crossval_card("old", "cnn")).timed_on == "not recorded"
    report_summary = summary_from_crossval_report({**crossval_report("cnn"), "machine": MACHINE})
    assert report_summary.timed_on.startswith("AMD EPYC")
