"""bench.digitiser: the digitiser's cost beside a plain decode, measured in one run."""

from __future__ import annotations

import json

from bench.digitiser import main, synthetic_pages
from ml.digitiser_report import measure_cost, page_files


def test_the_figures_name_the_machine_and_give_the_ratio_of_the_two_costs():
    figures = measure_cost(synthetic_pages(2), repeats=1)

    assert figures["pages"] == 2
    assert figures["machine"]
    assert figures["pillow_decode_ms"] > 0 and figures["digitise_ms"] > 0
    assert abs(figures["ratio"] - figures["digitise_ms"] / figures["pillow_decode_ms"]) < 0.02


def test_without_images_it_falls_back_to_synthetic_pages(tmp_path, capsys):
    assert page_files(tmp_path, 10) == []

    assert main(["--data", str(tmp_path), "--pages", "2", "--repeats", "1", "--json"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["pages"] == 2 and "synthetic" in printed["source"]
