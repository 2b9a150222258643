"""ml/ is a library: no Django, and cheap to import."""

from __future__ import annotations

import re
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
    "ml.representations",
)


def test_no_ml_source_file_imports_django() -> None:
    pattern = re.compile(r"^\s*(import django|from django)\b", re.MULTILINE)
    sources = list(ML_DIR.rglob("*.py"))
    assert len(sources) >= 10
    offenders = [str(path) for path in sources if pattern.search(path.read_text())]
    assert offenders == []


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
        "import ml.nonecg, ml.traces, ml.representations\n"
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
