"""The house's dependency rules hold: import-linter checks the contracts in pyproject.toml
(web -> core -> ml, worker -> core and ml, ml a library, accounts below classifier), with
imports inside functions counted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert found, "import-linter is not installed: it is in requirements-dev.txt (make venv)"
    return found


def test_every_import_contract_is_kept():
    result = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_a_core_module_that_imports_the_worker(tmp_path):
    """The check itself works: a core module that reaches into the worker breaks a contract."""
    copy = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv*", "var", "node_modules", "tests", "*.keras"),
    )
    services = copy / "classifier" / "services.py"
    services.write_text(services.read_text() + "\n\ndef _reach_in():\n    import worker.tasks  # noqa\n")

    result = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo"], cwd=copy, capture_output=True, text=True, timeout=300
    )

    assert result.returncode != 0
    assert "classifier.services is not allowed to import worker" in result.stdout
