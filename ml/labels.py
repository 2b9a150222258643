"""Class labels of the ECG classifier, in model output order."""

from __future__ import annotations

# The order is the order of the model's softmax outputs; changing it invalidates every
# shipped model, so append new classes only together with a new model.
CLASSES: tuple[str, ...] = ("normal", "mi", "history_mi", "abnormal")

# Human-readable meaning of each label key, for docs and user interfaces.
DESCRIPTIONS: dict[str, str] = {
    "normal": "normal ECG",
    "mi": "acute myocardial infarction",
    "history_mi": "history of myocardial infarction",
    "abnormal": "abnormal heartbeat (arrhythmia)",
}


def class_index(label: str) -> int:
    """Return the output index of ``label``; raise ValueError naming the valid labels."""
    try:
        return CLASSES.index(label)
    except ValueError:
        raise ValueError(f"Unknown label {label!r}; expected one of {', '.join(CLASSES)}.") from None
