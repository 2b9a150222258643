"""A prediction's explanation as the service stores and serves it: which lead and which seconds
drove the label (``ml.explain``), checked before it is stored, and drawn over the job's page."""

from __future__ import annotations

import io
import math
from typing import Any, TypedDict

import numpy as np
from PIL import Image

from classifier.models import Job
from ml import explain


class ExplanationRecord(TypedDict):
    """``ml.explain.Explanation.as_dict()``: stored as ``Prediction.explanation``."""

    lead: str
    start_s: float
    end_s: float
    share: float
    text: str
    weights: list[list[float]]  # (explain.ROWS, explain.STEPS)
    method: str


def explanation_check(explanation: dict[str, Any] | None) -> None:
    """Raise ValueError unless ``explanation`` is None or an ``ExplanationRecord``."""
    if explanation is None:
        return
    if set(explanation) != set(ExplanationRecord.__annotations__):
        raise ValueError(f"an explanation has the keys {sorted(ExplanationRecord.__annotations__)}")
    weights = np.asarray(explanation["weights"], dtype=np.float64)
    shaped = weights.shape == (explain.ROWS, explain.STEPS)
    if not shaped or not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"an explanation's weights are {explain.ROWS} x {explain.STEPS} finite values >= 0")
    if not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-3):
        raise ValueError("an explanation's weights sum to 1")


def overlay_png(job: Job, explanation: ExplanationRecord) -> bytes:
    """The job's stored page with the explanation's map laid over its traces, as PNG."""
    with job.image.open("rb") as stored:
        page = Image.open(stored)
        page.load()
    drawn = explain.overlay(page, np.asarray(explanation["weights"], dtype=np.float64))
    out = io.BytesIO()
    drawn.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()
