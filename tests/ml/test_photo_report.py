"""``python -m ml.photo_report`` on synthetic pages: photos refused as taken, read once straightened."""

from __future__ import annotations

import json

from ml import photo_report
from ml.synthetic import render_ecg
from tests.model_cards import under_called_mi_report


def test_photos_of_pages_are_refused_as_taken_and_accepted_and_read_once_rectified(tmp_path, capsys) -> None:
    for index, label in enumerate(("normal", "mi")):
        (tmp_path / "pages" / label).mkdir(parents=True)
        render_ecg(label, index).save(tmp_path / "pages" / label / f"{label}_{index}.png")
    out = tmp_path / "photos.json"

    assert photo_report.main(["--data", str(tmp_path / "pages"), "--every", "1", "--out", str(out)]) == 0

    report = json.loads(out.read_text())
    assert report["pages"] == 2
    for kind in ("desk", "screen"):
        figures = report["kinds"][kind]
        assert figures["photos"] == 2
        assert figures["page_found"] == 2
        assert figures["guard_accepts_rectified"] == 2
        assert figures["guard_accepts_as_taken"] < figures["guard_accepts_rectified"]
        assert figures["physiology_rectified"]["einthoven"]["median"] > 0.8
        # The straightened photo's leads are the scan's.
        assert figures["leads_against_scan"]["median"] > 0.8
        assert figures["leads_against_scan"]["below_0_5"] == 0
    assert "leads against the scan's median" in capsys.readouterr().out


def _guard_report() -> dict:
    def row(images: int, rejected: int, **extra: int) -> dict:
        return {"images": images, "rejected": rejected, **extra}

    return {
        "command": "python -m ml.guard_report ...",
        "real_ecg": row(367, 0),
        "real_ecg_photos": {"desk": row(367, 4), "screen": row(367, 0)},
        "non_ecg": row(900, 900),
        "near_misses": row(400, 400),
        "real_ecg_photos_unreadable": {"blurred": row(367, 360, refused_as_unreadable=300)},
    }


def _photos_report() -> dict:
    einthoven = {"einthoven": {"median": 0.97}}
    return {
        "command": "python -m ml.photo_report",
        "pages": 62,
        "physiology_scans": einthoven,
        "kinds": {"desk": {"physiology_rectified": {"einthoven": {"median": 0.96}}}},
    }


def test_the_card_section_puts_photos_beside_scans_with_the_guard_and_digitiser_figures(
    tmp_path, capsys
) -> None:
    crossval = under_called_mi_report()
    crossval["out_of_fold"] = [
        {**row, "photo_probabilities": {"desk": row["probabilities"]}} for row in crossval["out_of_fold"]
    ]
    crossval["photos"] = {"generator": "ml.photos", "read_as": "as an upload is"}
    model = tmp_path / "m.keras"
    model.write_bytes(b"weights")
    (tmp_path / "m.json").write_text(
        json.dumps({"name": "m", "decision": {"rule": "threshold", "class": "mi"}})
    )
    reports = {"crossval": crossval, "guard": _guard_report(), "photos": _photos_report()}
    for name, report in reports.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(report))

    argv = ["--card", str(model), "--crossval-report", str(tmp_path / "crossval.json")]
    argv += ["--guard-report", str(tmp_path / "guard.json"), "--out", str(tmp_path / "photos.json")]
    assert photo_report.main(argv) == 0

    section = json.loads((tmp_path / "m.json").read_text())["photos"]
    classification = section["classification"]
    assert classification["method"].startswith("nested") and "folds by page" in classification["method"]
    assert classification["scans"]["macro_f1"]["value"] == classification["desk"]["macro_f1"]["value"] == 1.0
    assert classification["ratio_to_scans"] == {"desk": 1.0}
    assert section["guard"]["photos_accepted"] == {"desk": "363/367", "screen": "367/367"}
    assert section["guard"]["non_ecg_refused"] == "900/900" and section["guard"]["scans_refused"] == "0/367"
    assert section["guard"]["unreadable_photos_told_unreadable"] == {"blurred": "300/367"}
    assert section["digitiser"]["einthoven_median"] == {"scans": 0.97, "desk": 0.96}
    assert "wrote the photos section" in capsys.readouterr().out


def test_the_card_section_scores_photos_by_the_cards_photo_rule_where_it_has_one() -> None:
    crossval = under_called_mi_report()
    # The photos of MI pages read MI at 0.1: below the scans' threshold, which misses them.
    crossval["out_of_fold"] = [
        {
            **row,
            "photo_probabilities": {
                "desk": [0.85, 0.1, 0.05, 0.0] if row["label"] == "mi" else row["probabilities"]
            },
        }
        for row in crossval["out_of_fold"]
    ]
    crossval["photos"] = {"generator": "ml.photos", "read_as": "as an upload is"}
    scan_rule = {"decision": {"rule": "threshold", "class": "mi", "threshold": 0.3}}
    photo_rule = scan_rule | {"decision_photos": {"rule": "threshold", "class": "mi", "threshold": 0.1}}

    by_scans = photo_report.card_section(scan_rule, crossval, _guard_report(), _photos_report())
    by_photos = photo_report.card_section(photo_rule, crossval, _guard_report(), _photos_report())

    assert by_scans["classification"]["desk"]["per_class_f1"]["mi"] == 0.0
    assert by_photos["classification"]["desk"]["per_class_f1"]["mi"] == 1.0
    assert "other folds' photos" in by_photos["classification"]["method"]


def test_the_card_section_needs_a_crossval_run_with_photos(tmp_path, capsys) -> None:
    model = tmp_path / "m.keras"
    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "crossval.json").write_text(json.dumps(under_called_mi_report()))
    (tmp_path / "guard.json").write_text(json.dumps(_guard_report()))
    (tmp_path / "photos.json").write_text(json.dumps(_photos_report()))
    argv = ["--card", str(model), "--crossval-report", str(tmp_path / "crossval.json")]
    argv += ["--guard-report", str(tmp_path / "guard.json"), "--out", str(tmp_path / "photos.json")]

    assert photo_report.main(argv) == 2
    assert "run python -m ml.crossval --photos" in capsys.readouterr().err
    assert json.loads((tmp_path / "m.json").read_text()) == {}


def test_the_card_section_refuses_photo_figures_of_another_configuration(tmp_path, capsys) -> None:
    """A photo-trained model's card takes the figures of a photo-trained cross-validation only."""
    crossval = under_called_mi_report()
    crossval["out_of_fold"] = [
        {**row, "photo_probabilities": {"desk": row["probabilities"]}} for row in crossval["out_of_fold"]
    ]
    crossval["photos"] = {"generator": "ml.photos", "read_as": "as an upload is"}
    model = tmp_path / "m.keras"
    card = {"name": "m", "crossval": {"training": {**crossval.get("training", {}), "photo_augment": 1}}}
    (tmp_path / "m.json").write_text(json.dumps(card))
    for name, report in {"crossval": crossval, "guard": _guard_report(), "photos": _photos_report()}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    argv = ["--card", str(model), "--crossval-report", str(tmp_path / "crossval.json")]
    argv += ["--guard-report", str(tmp_path / "guard.json"), "--out", str(tmp_path / "photos.json")]

    assert photo_report.main(argv) == 2
    assert "'photo_augment': 0" in capsys.readouterr().err
    assert "photos" not in json.loads((tmp_path / "m.json").read_text())
