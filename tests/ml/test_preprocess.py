"""Decoding, cropping and normalising uploaded pages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml import layout
from ml.preprocess import (
    INPUT_SIZE,
    InvalidImageError,
    crop_trace_area,
    decode_image,
    preprocess,
    preprocess_bytes,
)
from ml.synthetic import render_ecg
from tests.ml.helpers import encode


def test_preprocess_returns_float32_square_input_in_unit_range(synthetic_jpeg: bytes) -> None:
    array = preprocess_bytes(synthetic_jpeg)
    assert array.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert array.dtype == np.float32
    assert -1.0 <= array.min() < -0.5  # dark ink is present
    assert 0.9 < array.max() <= 1.0  # white paper is present
    assert np.array_equal(array[..., 0], array[..., 2])


def test_crop_removes_header_and_footer_of_reference_page(synthetic_page: Image.Image) -> None:
    cropped = crop_trace_area(synthetic_page)
    # The crop spans the grid box with a pixel of margin: nothing of the header text (y<150)
    # or footer text (y>825) survives.
    assert cropped.size == (
        layout.GRID_RIGHT - layout.GRID_LEFT + 3,
        layout.GRID_BOTTOM - layout.GRID_TOP + 3,
    )
    assert layout.GRID_TOP - 1 > 140 and layout.GRID_BOTTOM + 2 < 830


def test_crop_scales_with_page_resolution() -> None:
    small = render_ecg("normal", seed=1, width=600, height=426)
    large = render_ecg("normal", seed=1)
    small_box = crop_trace_area(small).size
    large_box = crop_trace_area(large).size
    assert abs(small_box[0] * 2 - large_box[0]) <= 2
    assert abs(small_box[1] * 2 - large_box[1]) <= 2


def test_header_text_does_not_reach_the_network_input() -> None:
    # Two pages that differ only in header and footer must give the same network input.
    page = render_ecg("normal", seed=3)
    blanked = page.copy()
    blanked.paste((255, 255, 255), (0, 0, page.width, layout.GRID_TOP - 2))
    blanked.paste((255, 255, 255), (0, layout.GRID_BOTTOM + 3, page.width, page.height))
    assert np.array_equal(preprocess(page), preprocess(blanked))


def test_decode_uses_jpeg_draft_mode_near_twice_the_input_size(synthetic_jpeg: bytes) -> None:
    image = decode_image(synthetic_jpeg)
    assert image.mode == "RGB"
    assert image.size == (600, 426)  # 1/2 scale of 1200x852, trace width still >= 448


def test_decode_accepts_png_at_full_size(synthetic_page: Image.Image) -> None:
    image = decode_image(encode(synthetic_page, "PNG"))
    assert image.size == synthetic_page.size


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"%PDF-1.4\n1 0 obj\n", b"GIF89a" + bytes(100)],
    ids=["empty", "text", "pdf", "gif"],
)
def test_decode_rejects_non_images_with_invalid_image_error(data: bytes) -> None:
    with pytest.raises(InvalidImageError) as error:
        decode_image(data)
    assert str(error.value)  # a human message, not an empty error


def test_decode_rejects_truncated_jpeg(synthetic_jpeg: bytes) -> None:
    with pytest.raises(InvalidImageError, match="is damaged or truncated and cannot be read"):
        decode_image(synthetic_jpeg[: len(synthetic_jpeg) // 2])


def test_decode_rejects_tiny_image() -> None:
    with pytest.raises(InvalidImageError, match="too small"):
        decode_image(encode(Image.new("RGB", (40, 30), "white"), "PNG"))


def test_decode_rejects_formats_other_than_jpeg_and_png(synthetic_page: Image.Image) -> None:
    with pytest.raises(InvalidImageError, match="not a JPEG or PNG"):
        decode_image(encode(synthetic_page.resize((300, 213)), "BMP"))


def test_invalid_image_error_is_a_value_error() -> None:
    assert issubclass(InvalidImageError, ValueError)


def test_decode_applies_exif_orientation(synthetic_page: Image.Image) -> None:
    # A phone photo stored sideways: pixels rotated, EXIF orientation 8 says "rotate back".
    sideways = synthetic_page.rotate(-90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(sideways, "JPEG", quality=90, exif=exif.tobytes())
    image = decode_image(data)
    assert image.size == (600, 426)  # upright landscape page, draft-decoded at 1/2 scale
    upright = preprocess_bytes(encode(synthetic_page, "JPEG", quality=90))
    assert float(np.abs(preprocess(image) - upright).mean()) < 0.05
