"""The out-of-distribution guard: synthetic ECG pages pass, other images are rejected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.guard import Rejection, check_bytes, check_page, measure_page
from ml.labels import CLASSES
from ml.synthetic import _draw_grid, render_ecg
from tests.ml.helpers import encode

LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt " * 2


def text_page(background: Image.Image | None = None) -> Image.Image:
    page = background or Image.new("RGB", (1200, 852), "white")
    draw = ImageDraw.Draw(page)
    for line in range(40):
        draw.text((40, 20 + line * 20), LOREM, fill="black")
    return page


@pytest.mark.parametrize("label", CLASSES)
def test_synthetic_ecg_pages_are_accepted_as_jpeg(label: str) -> None:
    assert check_bytes(encode(render_ecg(label, 11), "JPEG", quality=75)) is None


def test_a_smaller_scan_of_the_same_layout_is_accepted() -> None:
    assert check_page(render_ecg("normal", 12, width=900, height=639)) is None


def rejection(image: Image.Image) -> Rejection:
    result = check_page(image)
    assert result is not None
    return result


def test_noise_is_not_paper() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (852, 1200, 3), dtype=np.uint8)
    assert rejection(Image.fromarray(noise)).code == "not_paper"


def test_a_photo_like_gradient_is_not_paper() -> None:
    pixels = np.zeros((852, 1200, 3), np.uint8)
    pixels[..., 0] = np.linspace(40, 220, 1200)[np.newaxis, :]
    pixels[..., 1] = np.linspace(200, 60, 852)[:, np.newaxis]
    pixels[..., 2] = 120
    result = rejection(Image.fromarray(pixels))
    assert result.code == "not_paper" and "photos" in result.message


def test_a_blank_page_is_blank() -> None:
    assert rejection(Image.new("RGB", (1200, 852), "white")).code == "blank"


def test_an_empty_ecg_grid_is_blank() -> None:
    assert rejection(Image.fromarray(_draw_grid(1200, 852))).code == "blank"


def test_a_page_of_text_has_no_grid() -> None:
    result = rejection(text_page())
    assert result.code == "no_grid" and "pink millimetre grid" in result.message


def test_a_grey_screenshot_with_text_has_no_grid() -> None:
    assert rejection(text_page(Image.new("RGB", (1200, 852), (235, 235, 240)))).code == "no_grid"


def test_text_on_ecg_grid_paper_has_no_traces() -> None:
    assert rejection(text_page(Image.fromarray(_draw_grid(1200, 852)))).code == "no_traces"


def test_a_portrait_page_has_the_wrong_shape() -> None:
    result = rejection(render_ecg("normal", 1).resize((852, 1200)))
    assert result.code == "shape" and "852x1200" in result.message


def test_measured_features_separate_ecg_from_text() -> None:
    ecg, text = measure_page(render_ecg("mi", 2)), measure_page(text_page())
    assert ecg.grid_periodicity > 20 > text.grid_periodicity
    assert min(ecg.trace_coverage) > 0.8 > max(text.trace_coverage)
