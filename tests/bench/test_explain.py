"""bench.explain: an explanation's cost beside the classification of the same pages."""

from __future__ import annotations

import json

import pytest

from bench.explain import main

pytestmark = pytest.mark.slow


def test_the_figures_name_the_model_and_machine_and_give_the_ratio(tmp_path, capsys):
    argv = ["--data", str(tmp_path), "--pages", "2", "--batch", "2", "--repeats", "1", "--json"]

    assert main(argv) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["machine"]["cpu"] and "synthetic" in printed["source"]
    assert printed["classify_ms"] > 0 and printed["explain_ms"] > 0
    assert printed["ratio"] == pytest.approx(printed["explain_ms"] / printed["classify_ms"])


def test_a_model_that_gives_no_explanations_is_refused_with_a_reason(capsys):
    assert main(["--model", "cnn-v1", "--pages", "1"]) == 2
    assert "cnn-v1 gives no explanations" in capsys.readouterr().err
