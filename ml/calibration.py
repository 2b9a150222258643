"""Temperature scaling: one scalar T that calibrates a classifier's softmax (Guo et al. 2017).

Plain numpy. Fit T on *out-of-fold* outputs (``ml.crossval`` writes them), never on the
images the model trained on: in-sample outputs are over-confident in a way held-out ones
are not. The calibrated probabilities are ``softmax(logits / T)``; argmax, and so accuracy
and macro-F1, do not change. A model that outputs softmax probabilities can be calibrated
from ``log(p)``: it differs from the logits by a per-row constant, which softmax ignores.
"""

from __future__ import annotations

import math

import numpy as np

# T is searched in [exp(-LOG_T_RANGE), exp(LOG_T_RANGE)] = about [0.05, 20].
LOG_T_RANGE = 3.0
PROBABILITY_FLOOR = 1e-12


def logits_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``log(p)`` with p floored at 1e-12, usable as logits for temperature scaling."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR, None))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, numerically stable."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer ``labels`` under ``softmax(logits / T)``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    labels = np.asarray(labels, dtype=np.int64)
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, tolerance: float = 1e-6) -> float:
    """The T > 0 minimising the NLL of ``labels`` under ``softmax(logits / T)``.

    1. Work in u = log T, searched in [-3, 3]: T stays positive and the NLL is smooth in u.
    2. Golden-section search to ``tolerance`` in u. The NLL is convex in 1 / T (a
       log-sum-exp of linear functions of it, minus a linear term), so it is unimodal in u
       and the search finds the global minimum inside the range; at the range's edge
       (e.g. separable data, where the NLL keeps falling as T -> 0) the edge is returned.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"'logits' must be (n, k) with n = len(labels) > 0. Received: {logits.shape}, {len(labels)}"
        )
    ratio = (math.sqrt(5) - 1) / 2
    low, high = -LOG_T_RANGE, LOG_T_RANGE

    def loss(u: float) -> float:
        return negative_log_likelihood(logits, labels, math.exp(u))

    left, right = high - ratio * (high - low), low + ratio * (high - low)
    loss_left, loss_right = loss(left), loss(right)
    while high - low > tolerance:
        if loss_left < loss_right:
            high, right, loss_right = right, left, loss_left
            left = high - ratio * (high - low)
            loss_left = loss(left)
        else:
            low, left, loss_left = left, right, loss_right
            right = low + ratio * (high - low)
            loss_right = loss(right)
    return math.exp((low + high) / 2)
