"""python -m ml.report: docs/MODELS.md from the cards and reports, the same bytes every time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml import report
from tests.model_cards import crossval_card, crossval_report, under_called_mi_report, validation_card


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Two shipped models (one cross-validated), a card without weights, three crossval reports, a guard."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    for card in (validation_card("hybrid-v1"), crossval_card("hybrid-v4", "hybrid")):
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


def test_the_comparison_table_has_one_row_per_shipped_model(dirs, monkeypatch):
    monkeypatch.setattr(report, "DEFAULT_MODEL_NAME", "hybrid-v4")  # whichever ships as the default
    document = _render(dirs)
    shipped = document.split("## Shipped models")[1].split("###")[0]

    rows = [line for line in shipped.splitlines() if line.startswith("| hybrid")]
    assert [row.split(" | ")[0] for row in rows] == ["| hybrid-v1", "| hybrid-v4"]
    assert "| default |" in rows[1] and "| default |" not in rows[0]
    assert "not cross-validated (held-out validation split)" in rows[0]
    assert "5-fold cross-validation" in rows[1]
    assert "draft" not in shipped


def test_each_model_has_a_section_with_command_data_and_confusion_matrix(dirs):
    document = _render(dirs)
    section = document.split("### hybrid-v4")[1].split("###")[0]

    assert "`python -m ml.train --arch hybrid --name hybrid-v4`" in section
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
    assert "crossval-hybrid.json` | hybrid-v4 |" in runs
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


def _out_of_fold(labels: list[str], predicted: list[int]) -> list[dict]:
    return [
        {
            "sha256": f"{index:064x}",
            "label": label,
            "fold": index % 2,
            "probabilities": [0.7 if k == guess else 0.1 for k in range(4)],
        }
        for index, (label, guess) in enumerate(zip(labels, predicted, strict=True))
    ]


def test_the_best_run_is_compared_with_each_other_run_on_the_same_images(tmp_path):
    """A paired bootstrap over images matched by sha256: the better run's advantage is shown
    with an interval, and the runs' own order of rows does not matter."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    models.mkdir()
    labels = ["normal", "mi", "history_mi", "abnormal"] * 10
    truth = [index % 4 for index in range(40)]
    perfect = crossval_report("hybrid", 0) | {"out_of_fold": _out_of_fold(labels, truth)}
    perfect["pooled"] = {**perfect["pooled"], "macro_f1": {"value": 1.0, "low": 1.0, "high": 1.0}}
    half = [t if index % 2 else (t + 1) % 4 for index, t in enumerate(truth)]
    worse = crossval_report("cnn", 1) | {"out_of_fold": list(reversed(_out_of_fold(labels, half)))}
    worse["pooled"] = {**worse["pooled"], "macro_f1": {"value": 0.5, "low": 0.4, "high": 0.6}}
    _write(reports / "crossval-hybrid.json", perfect)
    _write(reports / "crossval-cnn.json", worse)

    document = report.render(models, reports)
    section = document.split("### Paired differences")[1].split("###")[0]
    row = next(line for line in section.splitlines() if line.startswith("| crossval-hybrid - crossval-cnn"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "40"
    assert float(cells[2]) > 0.4  # perfect minus half right
    low, high = (float(v) for v in cells[3].strip("[]").split(","))
    assert 0 < low <= float(cells[2]) <= high


def test_a_class_another_model_recalls_clearly_better_is_named_under_the_table(tmp_path):
    from ml.cards import summary_from_card

    default, other = crossval_card("hybrid-v2", "hybrid", seed=0), crossval_card("cnn-v1", "cnn", seed=1)
    recalls = {
        name: summary_from_card(card).per_class["mi"].recall for name, card in (("d", default), ("o", other))
    }
    # Make the other model's MI recall higher than the default's by 0.3.
    other["crossval"]["pooled"]["per_class"]["mi"]["recall"] = min(1.0, recalls["d"] + 0.3)
    lines = report.recall_gaps([summary_from_card(default), summary_from_card(other)], "hybrid-v2")
    mi_lines = [line for line in lines if "`mi`" in line]
    assert len(mi_lines) == 1 and "higher in cnn-v1" in mi_lines[0]
    # No gap, no paragraph; and nothing without a cross-validated default.
    assert report.recall_gaps([summary_from_card(default)], "hybrid-v2") == []
    assert report.recall_gaps([summary_from_card(other)], "hybrid-v2") == []


def test_an_ensemble_shows_how_it_was_made_and_each_member_alone(tmp_path):
    models, reports = tmp_path / "models", tmp_path / "reports"
    members = [
        {
            "seed": seed,
            "accuracy": accuracy,
            "macro_f1": {"value": f1, "low": f1 - 0.05, "high": f1 + 0.05},
            "recall": {"normal": 0.9, "mi": mi, "history_mi": 0.8, "abnormal": 0.9},
            "ece": 0.03,
        }
        for seed, accuracy, f1, mi in ((42, 0.9, 0.87, 0.68), (43, 0.88, 0.85, 0.73))
    ]
    ensemble = {"members": 2, "seeds": [42, 43], "combination": "mean of the members' probabilities"}
    card = crossval_card("hybrid-v3", "hybrid")
    card["crossval"] |= {"ensemble": ensemble, "members": members}
    _write(models / "hybrid-v3.json", card)
    (models / "hybrid-v3.keras").write_bytes(b"weights")
    _write(
        reports / "crossval-hybrid-ens2.json",
        crossval_report("hybrid", 0) | {"ensemble": ensemble, "members": members},
    )

    document = report.render(models, reports)

    expected = [
        "- Ensemble: 2 members (seeds 42, 43), mean of the members' probabilities",
        "  - seed 42 alone (pooled out-of-fold): accuracy 0.900, macro-F1 0.870 [0.820, 0.920], "
        "recall normal 0.900 / mi 0.680 / history_mi 0.800 / abnormal 0.900",
        "  - seed 43 alone (pooled out-of-fold): accuracy 0.880, macro-F1 0.850 [0.800, 0.900], "
        "recall normal 0.900 / mi 0.730 / history_mi 0.800 / abnormal 0.900",
    ]
    model_part = document.split("### hybrid-v3")[1].split("###")[0]
    run_part = document.split("### crossval-hybrid-ens2")[1].split("###")[0]
    for part in (model_part, run_part):
        lines = part.splitlines()
        start = lines.index(expected[0])
        assert lines[start : start + 3] == expected


def test_each_run_shows_the_nested_mi_operating_point_beside_its_argmax(tmp_path):
    """MI pages the argmax misses with MI at 0.3 are found by a threshold chosen on the other fold.

    Calibration flattens their probabilities (T > 1, as the argmax is wrong on them) to a
    p(mi) between 0.45 and 0.5; every threshold up to 0.45 then finds them all on the other
    fold, and ties go to the highest."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    models.mkdir()
    _write(reports / "crossval-hybrid.json", under_called_mi_report())

    document = report.render(models, reports)

    section = document.split("### MI operating point")[1].split("###")[0]
    row = next(line for line in section.splitlines() if line.startswith("| crossval-hybrid |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == "0.450 / 0.450" and cells[2] == "0.450"
    assert cells[3] == "1.000" and cells[4] == "1.000 [1.000, 1.000]"
    assert cells[5] == "1.000 (10/10)" and cells[6] == "1.000"
    assert cells[8] == "none"  # no shipped card applies it


def test_a_run_with_photos_shows_them_against_its_scans_under_each_rule(tmp_path):
    """MI photos read MI at 0.1: the scans' threshold misses them, one chosen on photos does not."""
    models, reports = tmp_path / "models", tmp_path / "reports"
    models.mkdir()
    crossval = under_called_mi_report()
    crossval["out_of_fold"] = [
        {
            **row,
            "photo_probabilities": {
                "desk": [0.85, 0.1, 0.05, 0.0] if row["label"] == "mi" else row["probabilities"]
            },
        }
        for row in crossval["out_of_fold"]
    ]
    _write(reports / "crossval-hybrid-photos.json", crossval)
    _write(reports / "crossval-hybrid.json", under_called_mi_report())

    document = report.render(models, reports)

    section = document.split("### Photos against scans")[1].split("###")[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| crossval-"):
            run, rule, scans, desk, screen = (cell.strip() for cell in line.strip("|").split("|"))
            rows[rule] = (run, scans, desk, screen)
    assert {run for run, *_ in rows.values()} == {"crossval-hybrid-photos"}  # the run without photos: none
    assert rows["MI threshold chosen on photos"][1:] == ("1.000", "1.000 (1.00x)", "—")
    assert rows["MI threshold chosen on scans"][1] == "1.000"
    assert rows["MI threshold chosen on scans"][2] < "1.000"  # its MI photos are missed
    assert rows["argmax"][2].endswith("(1.00x)")  # the argmax misses MI on scans and photos alike


def test_a_shipped_model_applying_the_operating_point_is_named_and_compared_with_its_nested_labels(
    tmp_path,
):
    """hybrid-v2 (argmax) and hybrid-v4 (its MI threshold) share one report: the run lists both,
    the operating point names hybrid-v4, and the paired comparison scores hybrid-v4's nested
    labels (every MI page found) against the run's argmax (none found)."""
    from ml.decision import operating_point

    models, reports = tmp_path / "models", tmp_path / "reports"
    run = under_called_mi_report()
    _write(reports / "crossval-hybrid.json", run)
    for name in ("hybrid-v2", "hybrid-v4"):
        card = crossval_card(name, "hybrid")
        card["crossval"]["report"] = "ml/reports/crossval-hybrid.json"
        if name == "hybrid-v4":
            card["decision"] = operating_point(run, n_resamples=50)
        _write(models / f"{name}.json", card)
        (models / f"{name}.keras").write_bytes(b"weights")

    document = report.render(models, reports)

    assert "crossval-hybrid.json` | hybrid-v2, hybrid-v4 |" in document
    model_part = document.split("### hybrid-v4")[1].split("###")[0]
    assert "- Decision: label mi when its calibrated probability reaches 0.450" in model_part
    assert "| mi | 1.000 | 1.000 | 1.000 | 10 |" in model_part  # the nested labels' figures
    paired = document.split("### Paired differences")[1].split("###")[0]
    assert "Macro-F1 of the best run (hybrid-v4)" in paired
    assert "| hybrid-v4 - crossval-hybrid | 40 |" in paired
    operating = document.split("### MI operating point")[1].split("###")[0]
    row = next(line for line in operating.splitlines() if line.startswith("| crossval-hybrid |"))
    assert row.strip("|").split("|")[-1].strip() == "hybrid-v4"  # applied by


def test_a_models_section_says_where_it_was_timed_how_it_was_rebuilt_and_its_gpu_check(tmp_path):
    models, reports = tmp_path / "models", tmp_path / "reports"
    reports.mkdir(parents=True)
    card = crossval_card("hybrid-v4", "hybrid") | {
        "machine": {"cpu": "AMD EPYC", "arch": "x86_64", "flags": ["avx2"], "cores": 2, "onednn": "off"},
        "rebuilt": {
            "date": "2026-12-02",
            "command": "python -m ml.rebuild hybrid-v4 --check-data DIR",
            "from_file_sha256": "b" * 64,
            "how": "the same weights on plain kernels",
            "check": {"images": 367, "data": "khan-ecg", "same_label": 367},
        },
        "gpu_check": {
            "gpu": "NVIDIA H200", "date": "2026-12-03", "pages": 32, "max_abs_difference_vs_cpu": 3.1e-06,
            "ms_per_image_batch_1": 2.5, "ms_per_image_batch_32": 0.4,
        },
    }  # fmt: skip
    card["rebuilt"]["check"]["max_abs_probability_difference"] = 1.79e-07
    _write(models / "hybrid-v4.json", card)
    (models / "hybrid-v4.keras").write_bytes(b"weights")
    text = report.render(models, reports)
    assert "- Timed on: AMD EPYC (x86_64; avx2), 2 cores, oneDNN off" in text
    assert "from sha256 `" + "b" * 64 + "`: the same weights on plain kernels" in text
    assert "differ by at most 1.8e-07 in any probability and give the same label on 367" in text
    assert "- GPU: NVIDIA H200, 2026-12-03: max |difference| 3.1e-06 from the CPU's probabilities; " in text
    assert "2.50 ms/image at batch 1, 0.40 at batch 32" in text


def test_a_model_never_checked_on_a_gpu_says_so(dirs):
    assert "- GPU: not yet checked on a GPU (`make gpu-check`" in _render(dirs)


def test_a_model_with_photo_figures_shows_them_beside_the_scans(dirs):
    models, _ = dirs
    card = crossval_card("hybrid-v4", "hybrid")
    card["photos"] = {
        "classification": {
            "method": "nested: ...",
            "crossval_command": "python -m ml.crossval --photos",
            "scans": {"n": 367, "macro_f1": {"value": 0.88, "low": 0.84, "high": 0.92}},
            "desk": {"n": 367, "macro_f1": {"value": 0.86, "low": 0.81, "high": 0.9}},
            "ratio_to_scans": {"desk": 0.9773},
        },
        "guard": {
            "scans_refused": "0/367",
            "photos_accepted": {"desk": "360/367"},
            "non_ecg_refused": "900/900",
        },
        "digitiser": {"einthoven_median": {"scans": 0.974, "desk": 0.964}},
    }
    _write(models / "hybrid-v4.json", card)

    section = _render(dirs).split("### hybrid-v4")[1].split("###")[0]

    assert "Photos of printouts (nested: ...; `python -m ml.crossval --photos`)" in section
    assert "| scans | 367 | 0.880 [0.840, 0.920] | 1 |" in section
    assert "| desk | 367 | 0.860 [0.810, 0.900] | 0.977 |" in section
    assert (
        "photos accepted desk 360/367" in section and "Einthoven median: scans 0.974, desk 0.964" in section
    )
