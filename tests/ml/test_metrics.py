"""Metric maths on tiny hand-computed examples, including the degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from ml.labels import CLASSES
from ml.metrics import (
    accuracy,
    bootstrap_macro_f1,
    calibration_bins,
    confusion_matrix,
    evaluation_report,
    expected_calibration_error,
    macro_f1,
    nested_operating_point,
    scores_from_confusion,
    threshold_decisions,
)

Y_TRUE = np.array([0, 0, 1, 2, 3, 3])
Y_PRED = np.array([0, 3, 1, 0, 3, 3])


def test_confusion_matrix_counts_rows_true_columns_predicted() -> None:
    counts = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert counts.tolist() == [[1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 2]]


def test_accuracy_is_the_fraction_of_equal_labels() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert accuracy(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def test_per_class_scores_match_hand_computation() -> None:
    scores = scores_from_confusion(confusion_matrix(Y_TRUE, Y_PRED, 4))
    # normal: 1 of 2 found, 1 of 2 predicted right; abnormal: 2 of 2 found, 2 of 3 right.
    np.testing.assert_allclose(scores["precision"], [0.5, 1.0, 0.0, 2 / 3])
    np.testing.assert_allclose(scores["recall"], [0.5, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(scores["f1"], [0.5, 1.0, 0.0, 0.8])
    assert scores["support"].tolist() == [2, 1, 1, 2]
    assert macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx(0.575)


def test_a_class_never_predicted_gets_precision_and_f1_zero() -> None:
    scores = scores_from_confusion(confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 0]), 2))
    np.testing.assert_allclose(scores["precision"], [1 / 3, 0.0])
    np.testing.assert_allclose(scores["f1"], [0.5, 0.0])
    assert macro_f1(np.array([0, 1, 1]), np.array([0, 0, 0]), 2) == pytest.approx(0.25)


def test_a_class_absent_from_y_true_counts_against_macro_f1() -> None:
    scores = scores_from_confusion(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 2))
    np.testing.assert_allclose(scores["recall"], [0.5, 0.0])
    np.testing.assert_allclose(scores["f1"], [2 / 3, 0.0])
    # A class neither present nor predicted also scores 0: a missing class is not flattering.
    assert macro_f1(np.array([0, 0]), np.array([0, 0]), 2) == pytest.approx(0.5)


def test_labels_outside_the_classes_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)


def test_bootstrap_of_perfect_predictions_is_a_point_interval() -> None:
    labels = np.repeat(np.arange(4), 5)
    result = bootstrap_macro_f1(labels, labels, 4, n_resamples=50, seed=0)
    assert (result["value"], result["low"], result["high"]) == (1.0, 1.0, 1.0)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    y_true = np.repeat(np.arange(4), [20, 6, 12, 30])
    y_pred = np.where(rng.random(len(y_true)) < 0.7, y_true, rng.integers(0, 4, len(y_true)))
    first = bootstrap_macro_f1(y_true, y_pred, 4, n_resamples=300, seed=5)
    assert first == bootstrap_macro_f1(y_true, y_pred, 4, n_resamples=300, seed=5)
    assert first != bootstrap_macro_f1(y_true, y_pred, 4, n_resamples=300, seed=6)
    assert first["low"] < first["value"] < first["high"]
    assert first["n_resamples"] == 300


def test_bootstrap_matches_a_naive_loop_over_the_same_resamples() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 0, 1, 2, 2, 0, 2, 2])
    result = bootstrap_macro_f1(y_true, y_pred, 3, n_resamples=40, confidence=0.9, seed=11)
    rng = np.random.default_rng(11)
    draws = [rng.choice(np.flatnonzero(y_true == c), size=(40, (y_true == c).sum())) for c in range(3)]
    resamples = np.concatenate(draws, axis=1)
    naive = [macro_f1(y_true[row], y_pred[row], 3) for row in resamples]
    assert result["low"] == pytest.approx(np.quantile(naive, 0.05))
    assert result["high"] == pytest.approx(np.quantile(naive, 0.95))


def test_bootstrap_validates_the_resample_count() -> None:
    with pytest.raises(ValueError, match="'n_resamples' must be an integer >= 1"):
        bootstrap_macro_f1(Y_TRUE, Y_PRED, 4, n_resamples=0)


PROBABILITIES = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
CALIBRATION_TRUE = np.array([0, 1, 1, 0])  # right, wrong, right, right


def test_ece_with_ten_bins_matches_hand_computation() -> None:
    # Each sample alone in its bin: (|1-0.9| + |0-0.6| + |1-0.7| + |1-0.55|) / 4.
    assert expected_calibration_error(CALIBRATION_TRUE, PROBABILITIES, 10) == pytest.approx(0.3625)


def test_ece_with_two_bins_pools_confidences() -> None:
    # All confidences in [0.5, 1]: accuracy 3/4, mean confidence 0.6875.
    assert expected_calibration_error(CALIBRATION_TRUE, PROBABILITIES, 2) == pytest.approx(0.0625)


def test_calibration_bins_put_full_confidence_in_the_last_bin() -> None:
    bins = calibration_bins(np.array([0, 1]), np.array([[1.0, 0.0], [0.5, 0.5]]), n_bins=4)
    assert [row["count"] for row in bins] == [0, 0, 1, 1]
    assert bins[3]["accuracy"] == 1.0 and bins[2]["accuracy"] == 0.0  # argmax ties pick class 0


def test_a_perfectly_calibrated_model_has_zero_ece() -> None:
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(np.array([0, 0, 0, 1]), probabilities) == pytest.approx(0.0)


def test_evaluation_report_has_the_documented_keys_and_values() -> None:
    probabilities = np.eye(4)[Y_PRED] * 0.7 + 0.075
    report = evaluation_report(Y_TRUE, probabilities, CLASSES, n_resamples=100, seed=0)
    assert set(report) == {"n", "accuracy", "macro_f1", "per_class", "confusion_matrix", "ece"}
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(0.6667)
    assert report["macro_f1"]["value"] == pytest.approx(0.575)
    assert report["per_class"]["abnormal"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert report["confusion_matrix"]["counts"][2] == [1, 0, 0, 0]
    # Confidence 0.775 everywhere, accuracy 4/6.
    assert report["ece"]["value"] == pytest.approx(abs(0.775 - 4 / 6), abs=1e-4)


def test_evaluation_report_scores_given_predictions_and_keeps_the_probabilities_ece() -> None:
    """A decision rule's labels are scored instead of the argmax; the ECE is unchanged."""
    probabilities = np.eye(4)[Y_PRED] * 0.7 + 0.075
    argmax = evaluation_report(Y_TRUE, probabilities, CLASSES, n_resamples=100, seed=0)
    decided = evaluation_report(Y_TRUE, probabilities, CLASSES, n_resamples=100, seed=0, predictions=Y_TRUE)
    assert decided["accuracy"] == 1.0 and decided["macro_f1"]["value"] == 1.0
    assert decided["confusion_matrix"]["counts"] == np.diag(np.bincount(Y_TRUE, minlength=4)).tolist()
    assert decided["ece"] == argmax["ece"]
    with pytest.raises(ValueError, match="'predictions' has shape"):
        evaluation_report(Y_TRUE, probabilities, CLASSES, predictions=Y_TRUE[:-1])


def test_paired_difference_of_a_model_with_itself_is_exactly_zero() -> None:
    from ml.metrics import paired_bootstrap_macro_f1_difference

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 80)
    pred = np.where(rng.random(80) < 0.7, y, rng.integers(0, 4, 80))
    result = paired_bootstrap_macro_f1_difference(y, pred, pred, 4, n_resamples=200)
    assert (result["value"], result["low"], result["high"], result["fraction_positive"]) == (0, 0, 0, 0)


def test_paired_difference_is_signed_antisymmetric_and_tighter_than_two_intervals() -> None:
    from ml.metrics import bootstrap_macro_f1, macro_f1, paired_bootstrap_macro_f1_difference

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 200)
    noise = rng.random(200)
    better = np.where(noise < 0.85, y, (y + 1) % 4)
    worse = np.where(noise < 0.75, y, (y + 1) % 4)  # wrong wherever better is, and more
    ab = paired_bootstrap_macro_f1_difference(y, better, worse, 4, n_resamples=500, seed=3)
    ba = paired_bootstrap_macro_f1_difference(y, worse, better, 4, n_resamples=500, seed=3)
    assert ab["value"] == pytest.approx(macro_f1(y, better, 4) - macro_f1(y, worse, 4))
    assert 0 < ab["low"] <= ab["value"] <= ab["high"] and ab["fraction_positive"] == 1.0
    assert ab["low"] == pytest.approx(-ba["high"]) and ab["high"] == pytest.approx(-ba["low"])
    # The separate intervals overlap more than the paired one suggests.
    a, b = bootstrap_macro_f1(y, better, 4, seed=3), bootstrap_macro_f1(y, worse, 4, seed=3)
    assert ab["high"] - ab["low"] < (a["high"] - a["low"]) + (b["high"] - b["low"])


def test_threshold_decisions_call_the_class_at_the_threshold_else_the_argmax() -> None:
    probabilities = np.array([[0.7, 0.3, 0.0, 0.0], [0.6, 0.2, 0.2, 0.0], [0.1, 0.1, 0.8, 0.0]])
    assert threshold_decisions(probabilities, 1, 0.3).tolist() == [1, 0, 2]
    assert threshold_decisions(probabilities, 1, 0.2).tolist() == [1, 1, 2]
    assert threshold_decisions(probabilities, 1, 0.5).tolist() == [0, 0, 2]


def test_nested_operating_point_picks_each_folds_threshold_on_the_other_folds() -> None:
    # Class 1 is under-called: its true samples have p1 0.3 (folds 0 and 1) or 0.15 (fold 2).
    # On folds {1, 2} and {0, 2} the best threshold is 0.3 (0.15 would also call the negatives
    # with p1 0.2); on folds {0, 1} 0.3 too. So fold 2's positives are missed: recall 2/3.
    p = [[0.7, 0.3, 0.0, 0.0], [0.8, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    fold_rows = {0: p, 1: p, 2: [[0.85, 0.15, 0.0, 0.0], [0.8, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]}
    probabilities = np.array([row for fold in (0, 1, 2) for row in fold_rows[fold]])
    truth = [1, 0, 3] * 3
    folds = np.repeat([0, 1, 2], 3)

    point = nested_operating_point(truth, probabilities, folds, 1, [0.1, 0.15, 0.3, 0.5], n_resamples=50)

    assert point["thresholds_per_fold"] == [0.3, 0.3, 0.3]
    assert point["threshold_all_folds"] == 0.3
    assert point["recall"][1] == pytest.approx(2 / 3) and point["precision"][1] == 1.0
    assert point["confusion_matrix"][1] == [1, 2, 0, 0]
    assert point["accuracy"] == pytest.approx(8 / 9)
    assert point["macro_f1"]["low"] <= point["macro_f1"]["value"] <= point["macro_f1"]["high"]


def test_nested_operating_point_breaks_ties_towards_the_higher_threshold_and_checks_input() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0]] * 2)
    point = nested_operating_point([0, 1, 0, 1], probabilities, [0, 0, 1, 1], 1, [0.2, 0.5])
    assert point["thresholds_per_fold"] == [0.5, 0.5]  # both perfect: the one calling MI least
    with pytest.raises(ValueError, match="'thresholds' must be"):
        nested_operating_point([0, 1, 0, 1], probabilities, [0, 0, 1, 1], 1, [0.0])
    with pytest.raises(ValueError, match="'folds' has shape"):
        nested_operating_point([0, 1, 0, 1], probabilities, [0, 1], 1, [0.5])


def test_a_calibrated_operating_point_fits_each_folds_temperature_on_the_other_folds() -> None:
    """With ``calibrate`` the choice sees temperature-scaled probabilities, T fitted where the
    threshold is chosen; the held-out decisions come from the held-out fold's calibrated rows."""
    from ml.calibration import fit_temperature, logits_from_probabilities, softmax

    rng = np.random.default_rng(3)
    truth = np.arange(60) % 4
    logits = rng.normal(size=(60, 4))
    logits[np.arange(60), truth] += 1.5
    probabilities = softmax(logits)
    folds = np.arange(60) % 3

    point = nested_operating_point(
        truth, probabilities, folds, 1, [0.1, 0.2, 0.3, 0.5], calibrate=True, n_resamples=20
    )

    log_p = logits_from_probabilities(probabilities)
    for fold, temperature in enumerate(point["temperatures_per_fold"]):
        assert temperature == round(fit_temperature(log_p[folds != fold], truth[folds != fold]), 4)
        held_out = folds == fold
        expected = softmax(log_p[held_out], fit_temperature(log_p[~held_out], truth[~held_out]))
        assert point["probabilities"][held_out] == pytest.approx(expected)
        threshold = point["thresholds_per_fold"][fold]
        assert point["decisions"][held_out].tolist() == threshold_decisions(expected, 1, threshold).tolist()
    assert point["temperature_all_folds"] == round(fit_temperature(log_p, truth), 4)
    assert "temperatures_per_fold" not in nested_operating_point(
        truth, probabilities, folds, 1, [0.5], n_resamples=20
    )
