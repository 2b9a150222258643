"""The out-of-distribution guard: ECG pages pass, also mildly degraded; other images are rejected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from ml import guard, guard_report
from ml.guard import Rejection, check_bytes, check_page, measure_page
from ml.labels import CLASSES
from ml.nonecg import (
    DEGRADATIONS,
    ECG_SCENES,
    EXPECTED_TO_PASS,
    HARD_KINDS,
    KINDS,
    degrade_page,
    render_non_ecg,
)
from ml.synthetic import _draw_grid, render_ecg
from tests.conftest import render_photo_bytes
from tests.ml.helpers import encode

LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt " * 2


def text_page(background: Image.Image | None = None) -> Image.Image:
    page = background or Image.new("RGB", (1200, 852), "white")
    draw = ImageDraw.Draw(page)
    for line in range(40):
        draw.text((40, 20 + line * 20), LOREM, fill="black")
    return page


def rejection(image: Image.Image) -> Rejection:
    result = check_page(image)
    assert result is not None
    return result


# ECG pages are accepted


@pytest.mark.parametrize("label", CLASSES)
def test_synthetic_ecg_pages_are_accepted_as_jpeg(label: str) -> None:
    assert check_bytes(encode(render_ecg(label, 11), "JPEG", quality=75)) is None


@pytest.mark.parametrize(("width", "height"), [(900, 639), (600, 426), (400, 284)])
def test_a_smaller_page_of_the_same_layout_is_accepted(width: int, height: int) -> None:
    assert check_page(render_ecg("normal", 12, width=width, height=height)) is None


@pytest.mark.parametrize("change", [*DEGRADATIONS, "all"])
def test_a_page_with_mild_photo_like_changes_is_still_accepted(change: str) -> None:
    which = DEGRADATIONS if change == "all" else (change,)
    for seed in range(3):
        page = render_ecg(CLASSES[seed], 20 + seed)
        data = degrade_page(page, np.random.default_rng([seed, 1]), which)
        assert check_bytes(data) is None, (change, seed)


@pytest.mark.parametrize("width", [1200, 600])
def test_a_black_and_white_copy_whose_pink_grid_turned_grey_is_accepted(width: int) -> None:
    page = render_ecg("mi", 5, width=width, height=round(width * 852 / 1200)).convert("L")
    assert check_bytes(encode(page, "PNG")) is None


def test_an_overexposed_page_whose_grid_vanished_is_accepted_on_its_traces() -> None:
    page = np.asarray(render_ecg("abnormal", 3), dtype=np.float64)
    washed = Image.fromarray(np.clip(page * 1.5, 0, 255).astype(np.uint8))  # the pink grid turns white
    features = measure_page(washed)

    assert not features.has_grid
    assert check_page(washed) is None


# Other images are rejected, with the reason


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_generated_non_ecg_image_is_rejected(kind: str) -> None:
    for seed in range(3):
        result = check_bytes(encode(render_non_ecg(kind, seed), "JPEG", quality=90))
        assert result is not None, (kind, seed)
        assert result.message.startswith("This does not look like a 12-lead ECG printout: ")


@pytest.mark.parametrize("kind", [kind for kind in HARD_KINDS if kind not in EXPECTED_TO_PASS + ECG_SCENES])
def test_near_misses_are_rejected(kind: str) -> None:
    for seed in range(2):
        assert check_bytes(encode(render_non_ecg(kind, seed), "JPEG", quality=90)) is not None, (kind, seed)


def test_noise_is_not_paper() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (852, 1200, 3), dtype=np.uint8)
    assert rejection(Image.fromarray(noise)).code == "not_paper"


def test_a_photo_like_gradient_is_not_paper() -> None:
    pixels = np.zeros((852, 1200, 3), np.uint8)
    pixels[..., 0] = np.linspace(40, 220, 1200)[np.newaxis, :]
    pixels[..., 1] = np.linspace(200, 60, 852)[:, np.newaxis]
    pixels[..., 2] = 120
    result = rejection(Image.fromarray(pixels))
    assert result.code == "not_paper" and "photo must show the whole printed page" in result.message


def test_a_blank_page_is_blank() -> None:
    result = rejection(Image.new("RGB", (1200, 852), "white"))
    assert result.code == "blank" and "looks blank" in result.message


def test_an_empty_ecg_grid_is_blank() -> None:
    assert rejection(Image.fromarray(_draw_grid(1200, 852))).code == "blank"


def test_a_page_of_text_has_no_grid() -> None:
    result = rejection(text_page())
    assert result.code == "no_grid"
    assert result.message == f"This does not look like a 12-lead ECG printout: {guard.REASONS['no_grid']}."


def test_a_grey_screenshot_with_text_has_no_grid() -> None:
    assert rejection(text_page(Image.new("RGB", (1200, 852), (235, 235, 240)))).code == "no_grid"


def test_text_on_ecg_grid_paper_has_no_traces() -> None:
    assert rejection(text_page(Image.fromarray(_draw_grid(1200, 852)))).code == "no_traces"


def test_a_portrait_page_has_the_wrong_shape() -> None:
    result = rejection(render_ecg("normal", 1).resize((852, 1200)))
    assert result.code == "shape" and "852x1200" in result.message


def test_measured_features_separate_ecg_from_text() -> None:
    ecg, text = measure_page(render_ecg("mi", 2)), measure_page(text_page())
    assert min(ecg.grid_periodicity) > 20 > max(text.grid_periodicity[0], 1.0)
    assert min(ecg.trace_coverage) > 0.9 and ecg.baseline_concentration > 5
    assert text.baseline_concentration < 2.5 and text.gap_coverage > 0.5


# The generator and the measurement


def test_non_ecg_images_are_deterministic_by_seed() -> None:
    first, again, other = (render_non_ecg("screenshot", seed) for seed in (5, 5, 6))
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first.resize(other.size)), np.asarray(other))


def test_an_unknown_kind_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'kind' must be one of .*photo.*Received: kind='selfie'"):
        render_non_ecg("selfie", 0)


@pytest.mark.slow
def test_measure_writes_every_figure_of_the_report(tmp_path: Path, capsys) -> None:
    for label in ("normal", "mi"):
        (tmp_path / "data" / label).mkdir(parents=True)
        render_ecg(label, 3).save(tmp_path / "data" / label / f"{label}.jpg", quality=75)
    out = tmp_path / "guard.json"

    code = guard_report.main(
        [
            "--ecg-data",
            str(tmp_path / "data"),
            "--non-ecg-per-kind",
            "1",
            "--synthetic",
            "2",
            "--json",
            "--out",
            str(out),
        ]
    )

    assert code == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert set(report["non_ecg"]["per_kind"]) == set(KINDS)
    real = report["real_ecg"]
    assert (real["images"], real["rejected"], real["reasons"], real["rejected_files"]) == (2, 0, {}, [])
    assert real["closest_to_thresholds"]["min_trace_coverage"] >= guard.MIN_TRACE_COVERAGE
    assert report["thresholds"]["max_gap_coverage"] == guard.MAX_GAP_COVERAGE
    assert set(report["real_ecg_degraded"]) == {*DEGRADATIONS, "all"}
    assert report["synthetic_ecg"]["images"] == 2
    assert report["ms_per_check"]["real_ecg"]["median"] > 0
    # Photos of the two pages: found and straightened, then accepted.
    assert {kind: row["rejected"] for kind, row in report["real_ecg_photos"].items()} == {
        "desk": 0,
        "screen": 0,
    }
    unreadable = report["real_ecg_photos_unreadable"]
    assert {change: row["images"] for change, row in unreadable.items()} == {
        "blurred": 2,
        "cut_through_traces": 2,
    }
    assert all(row["refused_as_unreadable"] == 2 for row in unreadable.values())
    assert set(report["ecg_scenes"]["per_kind"]) == {"photographed_ecg", "ecg_in_screenshot"}


def test_the_command_line_checks_files_and_exits_1_if_any_is_rejected(tmp_path: Path, capsys) -> None:
    ecg, letter = tmp_path / "ecg.png", tmp_path / "letter.png"
    render_ecg("normal", 4).save(ecg)
    render_non_ecg("letterhead", 0).save(letter)

    code = guard.main([str(ecg), str(letter)])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [(line["accepted"], line["code"]) for line in lines] == [(True, None), (False, lines[1]["code"])]
    assert lines[1]["message"].startswith(guard.LEAD_SENTENCE)


# ECGs that cannot be read are told apart from images that are not ECGs


def test_a_blurred_ecg_is_refused_as_unreadable_not_as_something_else() -> None:
    blurred = render_ecg("normal", 2).filter(ImageFilter.GaussianBlur(4))

    result = rejection(blurred)

    assert result.code == "unreadable"
    assert result.message == f"{guard.UNREADABLE_SENTENCE}: {guard.REASONS['faint']}."
    assert "in focus" in result.message and "not look like" not in result.message


def test_a_photo_cut_through_its_traces_is_refused_as_an_ecg_that_cannot_be_read() -> None:
    result = check_bytes(render_photo_bytes("mi", 4, keep=0.7))

    assert result is not None and result.code == "unreadable"
    assert result.message.startswith(
        f"{guard.UNREADABLE_SENTENCE}: the photo cuts off the right of the page, through the traces"
    )


def test_a_photo_of_a_printout_is_accepted_once_straightened() -> None:
    for kind in ("desk", "screen"):
        assert check_bytes(render_photo_bytes("abnormal", 1, kind=kind)) is None, kind
