"""The model a worker process runs: loaded once, on first use, after any fork.

TensorFlow is not fork-safe, so nothing here runs at import time; Celery's prefork children and
the embedded worker thread each load the model the first time they need it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from classifier.services import ModelIdentity

if TYPE_CHECKING:
    from ml.inference import Classifier

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_classifier: Classifier | None = None


def model_path() -> Path | None:
    """The configured model: a shipped model's name, a path to a .keras file, or the default."""
    from ml.models import MODELS_DIR

    choice = settings.ECGSITE_MODEL
    if not choice:
        return None
    as_path = Path(choice)
    if as_path.suffix == ".keras":
        return as_path
    return MODELS_DIR / f"{choice}.keras"


def get_classifier() -> Classifier:
    """This process's classifier, loading it on the first call."""
    global _classifier
    if _classifier is None:
        with _lock:
            if _classifier is None:
                from ml.inference import Classifier

                classifier = Classifier.load(model_path())
                logger.info(
                    "loaded model %s (%s) on %s", classifier.name, classifier.architecture, classifier.device
                )
                _classifier = classifier
    return _classifier


def model_identity(classifier: Classifier) -> ModelIdentity:
    """What the database needs to know about the loaded model."""
    return ModelIdentity(
        name=classifier.name,
        architecture=classifier.architecture,
        file_sha256=classifier.file_sha256,
        card=classifier.card,
    )
