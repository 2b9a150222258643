"""Temperature scaling on small synthetic logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.calibration import (
    fit_temperature,
    logits_from_probabilities,
    negative_log_likelihood,
    softmax,
)
from ml.metrics import expected_calibration_error


def sampled(temperature: float, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 4))
    probabilities = softmax(logits, temperature)
    labels = (probabilities.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return logits, labels


def test_nll_of_a_uniform_prediction_is_log_k() -> None:
    assert negative_log_likelihood(np.zeros((3, 4)), np.array([0, 1, 3])) == pytest.approx(math.log(4))


def test_temperature_keeps_the_argmax_and_softens_the_probabilities() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    hot, cool = softmax(logits, 1.0), softmax(logits, 2.0)
    assert np.array_equal(hot.argmax(axis=1), cool.argmax(axis=1))
    assert (cool.max(axis=1) < hot.max(axis=1)).all()
    np.testing.assert_allclose(cool.sum(axis=1), 1.0)


def test_fit_recovers_the_temperature_that_generated_the_labels() -> None:
    logits, labels = sampled(temperature=2.0)
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)


def test_fitted_temperature_is_a_minimum_of_the_nll() -> None:
    logits, labels = sampled(temperature=0.7, n=2000, seed=1)
    best = fit_temperature(logits, labels)
    nll = negative_log_likelihood(logits, labels, best)
    assert nll <= negative_log_likelihood(logits, labels, best * 1.05)
    assert nll <= negative_log_likelihood(logits, labels, best / 1.05)


def test_scaling_an_overconfident_model_lowers_its_ece() -> None:
    logits, labels = sampled(temperature=3.0, n=5000, seed=2)
    temperature = fit_temperature(logits, labels)
    before = expected_calibration_error(labels, softmax(logits))
    after = expected_calibration_error(labels, softmax(logits, temperature))
    assert temperature > 2.5
    assert after < before / 3


def test_log_probabilities_stand_in_for_logits() -> None:
    logits = np.array([[1.0, -2.0, 0.5, 0.0]])
    np.testing.assert_allclose(softmax(logits_from_probabilities(softmax(logits)), 2.0), softmax(logits, 2.0))


def test_fit_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="'logits' must be"):
        fit_temperature(np.zeros((3, 4)), np.array([0, 1]))
