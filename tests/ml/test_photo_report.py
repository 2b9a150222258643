"""``python -m ml.photo_report`` on synthetic pages: photos refused as taken, read once straightened."""

from __future__ import annotations

import json

from ml import photo_report
from ml.synthetic import render_ecg


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
    assert "guard accepts" in capsys.readouterr().out
