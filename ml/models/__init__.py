"""Shipped models: ``<name>.keras`` weights beside a ``<name>.json`` model card."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR: Path = Path(__file__).resolve().parent
DEFAULT_MODEL_NAME = "hybrid-v6"


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a prediction came from: what the service records as a model version."""

    name: str
    architecture: str
    file_sha256: str
    card: dict

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> ModelIdentity:
        """The identity a model card states; ValueError when the card lacks any part of it."""
        missing = [key for key in ("name", "architecture", "file_sha256") if not card.get(key)]
        if missing:
            raise ValueError(f"Model card {card.get('name', '?')!r} lacks {', '.join(missing)}.")
        return cls(
            name=card["name"], architecture=card["architecture"], file_sha256=card["file_sha256"], card=card
        )


def model_path(name: str) -> Path:
    """Path of the shipped model called ``name`` (it may not exist)."""
    return MODELS_DIR / f"{name}.keras"


def default_model_path() -> Path:
    """Path of the model that ``Classifier.load()`` uses when given no path."""
    return model_path(DEFAULT_MODEL_NAME)


def resolve_model(name_or_path: str | None) -> Path:
    """The model file for a shipped model's name or a path (None or "": the default model)."""
    if not name_or_path:
        return default_model_path()
    candidate = Path(name_or_path)
    if candidate.suffix == ".keras" or candidate.is_file():
        return candidate
    return model_path(name_or_path)


def card_path(model_file: str | Path) -> Path:
    """Path of the model card that belongs beside ``model_file``."""
    return Path(model_file).with_suffix(".json")


def read_card(model_file: str | Path) -> dict[str, Any]:
    """The model card of ``model_file``, or an empty dict when there is none."""
    path = card_path(model_file)
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as handle:
        card: dict[str, Any] = json.load(handle)
    return card


def list_model_cards() -> list[dict[str, Any]]:
    """Cards of all shipped models that have their weights file, sorted by name."""
    cards = []
    for path in sorted(MODELS_DIR.glob("*.json")):
        if path.with_suffix(".keras").is_file():
            cards.append(read_card(path.with_suffix(".keras")))
    return cards
