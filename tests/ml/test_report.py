"""python -m ml.report: docs/MODELS.md from the cards and reports, the same bytes every time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml import report
from tests.model_cards import crossval_card, crossval_report, validation_card


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two shipped models (one cross-validated), a card without weights, three crossval reports, a guard."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    for card in (validation_card("hybrid-v1"), crossval_card("hybrid-v2", "hybrid")):
        _write(models / f"{card['name']}.json", card)
        (models / f"{card['name']}.keras").write_bytes(b"weights")
    _write(models / "draft.json", crossval_card("draft", "cnn"))  # no .keras: not shipped
    for architecture, seed in (("hybrid", 0), ("cnn", 1), ("densenet", 2)):
        _write(reports / f"crossval-{architecture}.json", crossval_report(architecture, seed))
    _write(
        reports / "guard.json",
        {
            "method": "ml.guard.check_page",
            "dev_pages": 367,
            "rejected": {"shape": 0, "no_grid": 2},
            "list": [1],
        },
    )
    return models, reports


def _render(dirs: tuple[Path, Path]) -> str:
    return report.render(*dirs)


def test_the_comparison_table_has_one_row_per_shipped_model(dirs):
    document = _render(dirs)
    shipped = document.split("## Shipped models")[1].split("###")[0]

    rows = [line for line in shipped.splitlines() if line.startswith("| hybrid")]
    assert [row.split(" | ")[0] for row in rows] == ["| hybrid-v1", "| hybrid-v2"]
    assert "| default |" in rows[0]  # ml.models.DEFAULT_MODEL_NAME
    assert "not cross-validated (held-out validation split)" in rows[0]
    assert "5-fold cross-validation" in rows[1]
    assert "draft" not in shipped


def test_each_model_has_a_section_with_command_data_and_confusion_matrix(dirs):
    document = _render(dirs)
    section = document.split("### hybrid-v2")[1].split("###")[0]

    assert "`python -m ml.train --arch hybrid --name hybrid-v2`" in section
    assert "normal 10, mi 10, history_mi 10, abnormal 10 (40 images)" in section
    assert "5 folds, seed 42" in section
    assert "T = 1.700" in section
    assert "| true \\ predicted | normal | mi | history_mi | abnormal |" in section
    assert "| class | precision | recall | F1 | support |" in section
    assert "Dev evaluation (`python -m ml.evaluate --data dev`)" in section


def test_every_crossval_report_is_listed_with_the_model_it_backs(dirs):
    document = _render(dirs)
    runs = document.split("## Cross-validation runs")[1].split("## Out-of-distribution guard")[0]

    assert "| crossval-cnn | `" in runs and "| not shipped |" in runs
    assert "- Architecture: `cnn`, 54,321 parameters, input `page`" in runs
    assert "T = 1.40)" in runs
    assert "crossval-hybrid.json` | hybrid-v2 |" in runs
    assert runs.count("### crossval-") == 3


def test_the_guard_report_shows_its_numbers_generically(dirs):
    document = _render(dirs)
    guard = document.split("## Out-of-distribution guard")[1].split("## Data credit")[0]

    assert "| dev_pages | 367 |" in guard
    assert "| rejected.no_grid | 2 |" in guard
    assert "- method: ml.guard.check_page" in guard
    assert "list" not in guard


def test_the_data_credit_closes_the_document(dirs):
    assert (
        _render(dirs)
        .rstrip()
        .endswith(
            "Khan & Hussain 2021, ECG Images dataset of Cardiac Patients, Mendeley Data V2, "
            "doi:10.17632/gwbz3fsgp8.2, CC BY 4.0."
        )
    )


def test_main_writes_the_same_bytes_twice(dirs, tmp_path, capsys):
    models, reports = dirs
    out = tmp_path / "docs" / "MODELS.md"
    args = ["--models-dir", str(models), "--reports-dir", str(reports), "--out", str(out)]

    assert report.main(args) == 0
    first = out.read_bytes()
    assert report.main(args) == 0

    assert out.read_bytes() == first
    assert f"wrote {out}" in capsys.readouterr().out


def test_empty_folders_give_a_document_that_says_so(tmp_path):
    document = report.render(tmp_path / "none", tmp_path / "nothing")

    assert "No shipped models in" in document
    assert "No cross-validation reports in" in document
    assert "Out-of-distribution guard" not in document


def test_a_broken_card_is_an_error_naming_the_file(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "bad.keras").write_bytes(b"")

    code = report.main(
        ["--models-dir", str(tmp_path), "--reports-dir", str(tmp_path), "--out", str(tmp_path / "o.md")]
    )

    assert code == 2
    assert "bad.json" in capsys.readouterr().err


def test_a_pipe_in_a_value_does_not_break_the_table(tmp_path):
    card = validation_card("odd|name")
    _write(tmp_path / "odd.json", card)
    (tmp_path / "odd.keras").write_bytes(b"")

    assert "| odd\\|name |" in report.render(tmp_path, tmp_path / "none")
