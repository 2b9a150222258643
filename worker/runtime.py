"""The models a worker process runs: each loaded once, on first use, after any fork.

TensorFlow is not fork-safe, so nothing here runs at import time; Celery's prefork children and
the embedded worker thread each load a model the first time they need it. A job re-run on
another model version names that model; a few models stay loaded per process, the least
recently used going first.

Before a worker takes its first job it proves its default model (``prove_default_model``):
loading includes a self-test, one page the project renders classified end to end
(``ml.inference.Classifier.self_test``). The outcome is this process's ``ModelStatus``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ml.device import configure_tensorflow, usable_cores
from ml.inference import Classifier  # TensorFlow itself loads only in Classifier.load
from ml.models import ModelIdentity, resolve_model

logger = logging.getLogger(__name__)
# Each loaded model holds its weights in memory (a few MB for the shipped ones; more on a GPU).
MAX_LOADED_MODELS = 3
_lock = threading.Lock()
_classifiers: OrderedDict[Path, Classifier] = OrderedDict()
# Processes of this worker that run models side by side (Celery's --concurrency; set at start-up).
_concurrency = 1


def set_concurrency(processes: int) -> None:
    """Record how many processes of this worker share its cores (before any model loads)."""
    global _concurrency
    _concurrency = max(1, processes)


def tensorflow_threads() -> int:
    """TensorFlow's threads in this process: ECGSITE_TF_THREADS, else this worker's share of the
    cores it may run on, so that its processes do not fight over them."""
    return settings.ECGSITE_TF_THREADS or max(1, usable_cores() // _concurrency)


def model_path(name: str | None = None) -> Path:
    """The .keras file for shipped model `name`; with no name, the configured default model.

    The default is ECGSITE_MODEL (a shipped model's name or a path to a .keras file), or
    ml.models.DEFAULT_MODEL_NAME when that is empty.
    """
    return resolve_model(name or settings.ECGSITE_MODEL)


def _load(path: Path) -> Classifier:
    threads = tensorflow_threads()
    configure_tensorflow(threads=threads)  # before TensorFlow starts: the first call decides
    classifier = Classifier.load(path)
    logger.info(
        "loaded model %s (%s) on %s, %s TensorFlow threads",
        classifier.name,
        classifier.architecture,
        classifier.device,
        threads,
    )
    return classifier


def get_classifier(name: str | None = None) -> Classifier:
    """This process's classifier for shipped model `name` (default: the configured model).

    Loaded on the first call for that model, under a lock, so concurrent first calls load once.
    Keyed by file path, so naming the default model explicitly finds the one already loaded.
    """
    path = model_path(name)
    with _lock:
        classifier = _classifiers.get(path)
        if classifier is None:
            classifier = _load(path)
            _classifiers[path] = classifier
            while len(_classifiers) > MAX_LOADED_MODELS:
                evicted, _ = _classifiers.popitem(last=False)
                logger.info("unloaded model %s: more than %s models loaded", evicted, MAX_LOADED_MODELS)
        else:
            _classifiers.move_to_end(path)
    return classifier


@dataclass(frozen=True)
class ModelStatus:
    """Whether this process can classify: ``loading`` (not proven yet), ``ready`` or
    ``unavailable``: then which model, and why (for the log: it may name server paths)."""

    state: str
    model: str = ""
    reason: str = ""

    @property
    def unavailable(self) -> bool:
        return self.state == "unavailable"


LOADING = ModelStatus("loading")
_status = LOADING


def model_status() -> ModelStatus:
    return _status


def prove_default_model() -> ModelStatus:
    """Load the configured default model, which runs its self-test, and record the outcome.

    Never raises: a failure is logged with its reason and becomes an ``unavailable`` status.
    """
    global _status
    try:
        classifier = get_classifier()
    except Exception as error:  # whatever stops the model, this worker must not take jobs
        model = model_path().stem
        _status = ModelStatus("unavailable", model, f"the model {model!r} cannot run here: {error}")
        logger.critical("classification unavailable, this worker takes no job: %s", _status.reason)
    else:
        _status = ModelStatus("ready")
        logger.info("model %s passed its self-test on %s; taking jobs", classifier.name, classifier.device)
    return _status


def model_identity(classifier: Classifier) -> ModelIdentity:
    """What the database needs to know about the loaded model."""
    return ModelIdentity(
        name=classifier.name,
        architecture=classifier.architecture,
        file_sha256=classifier.file_sha256,
        card=classifier.card,
    )
