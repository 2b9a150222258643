"""Services and selectors take typed arguments (the acting user, an AuditContext), never a request:
the web layer reads requests, the core does not. (Which module may import which is checked by
import-linter: tests/test_import_contracts.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("source", ["classifier/services.py", "classifier/selectors.py"])
def test_no_service_or_selector_takes_a_request(source):
    tree = ast.parse((ROOT / source).read_text())
    takes_request = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and "request" in {arg.arg for arg in (*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs)}
    ]
    assert takes_request == []
