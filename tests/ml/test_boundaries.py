"""ml/ is a library: no Django, and cheap to import. (Which ml module may import which, and that
none imports Django, is checked statically by import-linter: tests/test_import_contracts.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ML_DIR = Path(__file__).resolve().parents[2] / "ml"
MODULES = (
    "ml",
    "ml.labels",
    "ml.layout",
    "ml.preprocess",
    "ml.synthetic",
    "ml.metrics",
    "ml.models",
    "ml.inference",
    "ml.predict",
    "ml.network",
    "ml.device",
    "ml.train",
    "ml.crossval",
    "ml.evaluate",
    "ml.guard",
    "ml.calibration",
    "ml.cards",
    "ml.report",
    "ml.nonecg",
    "ml.traces",
    "ml.measurements",
    "ml.leads",
    "ml.representations",
    "ml.crossval_card",
    "ml.guard_report",
    "ml.timing",
    "ml.rebuild",
    "ml.digitise",
    "ml.digitiser_report",
    "ml.rectify",
    "ml.photos",
    "ml.photo_report",
)


# What the web process and the worker load (``ml/__init__.py``): none of it may import the
# training and reporting modules, so those stay out of serving processes.
@pytest.mark.slow
def test_importing_every_ml_module_loads_no_django() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ML_DIR.parent,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_light_modules_do_not_import_tensorflow() -> None:
    # Web processes validate uploads with these; TF must load only in workers, after fork.
    code = (
        "import sys, ml, ml.labels, ml.preprocess, ml.synthetic, ml.models, ml.inference\n"
        "import ml.guard, ml.metrics, ml.calibration, ml.evaluate, ml.crossval, ml.cards, ml.report\n"
        "import ml.nonecg, ml.traces, ml.representations, ml.train, ml.timing, ml.rebuild, ml.predict\n"
        "import ml.crossval_card, ml.guard_report, ml.measurements, ml.leads, ml.digitise\n"
        "import ml.digitiser_report\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ML_DIR.parent,
    )
    assert result.stdout.strip() == "False False"
