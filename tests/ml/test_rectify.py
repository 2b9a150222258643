"""Finding a photographed page and straightening it (``ml.rectify``), on synthetic pages."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
import pytest
from PIL import Image

from ml.leads import page_signal
from ml.photos import photograph
from ml.rectify import darken_ink, find_page, flatten_light, missing_fraction, rectify
from ml.synthetic import render_ecg

DESK = (92, 74, 58)
# Where the page's corners land in the photo, clockwise from the top left: seen at an angle.
CORNERS = np.array([[180, 140], [1420, 170], [1450, 1010], [150, 980]], np.float64)
PHOTO_SIZE = (1600, 1150)


@cache
def scan() -> Image.Image:
    return render_ecg("normal", 3)


def _photograph(page: Image.Image, corners: np.ndarray = CORNERS) -> Image.Image:
    """The page on a desk, seen at an angle, lit from one side by a warm light."""
    rgb = np.asarray(page.convert("RGB"))
    height, width = rgb.shape[:2]
    source = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    transform = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
    photo = cv2.warpPerspective(rgb, transform, PHOTO_SIZE, borderValue=DESK)
    light = np.linspace(0.6, 1.0, PHOTO_SIZE[0])[None, :, None] * np.array([1.05, 1.0, 0.85])
    return Image.fromarray(np.clip(photo * light, 0, 255).astype(np.uint8))


def _lead_correlations(first: Image.Image, second: Image.Image, max_lag: int = 0) -> list[float]:
    """Per lead, the correlation of the two pages' leads, the best within ``max_lag`` samples."""
    a, b = page_signal(first), page_signal(second)
    correlations = []
    for lead in a["leads"]:
        x, y = np.asarray(a["leads"][lead], float), np.asarray(b["leads"][lead], float)
        inner = slice(max_lag, len(x) - max_lag)
        lags = range(-max_lag, max_lag + 1)
        correlations.append(max(float(np.corrcoef(x[inner], np.roll(y, lag)[inner])[0, 1]) for lag in lags))
    return correlations


def test_a_scan_is_the_page_already_and_comes_back_unchanged() -> None:
    page = scan()

    result = rectify(page)

    assert result.image is page
    assert result.corners is None


def test_the_corners_of_a_photographed_page_are_found_to_a_pixel_or_two() -> None:
    corners = find_page(np.asarray(_photograph(scan())))

    assert corners is not None
    assert np.abs(corners - CORNERS).max() <= 2.5


def test_a_corner_hidden_in_a_shadow_is_found_where_the_page_s_sides_meet() -> None:
    photo = np.asarray(_photograph(scan())).astype(np.float32)
    # A hand's shadow over the top-left corner, on desk and paper alike: the paper there is
    # darker than the lit desk, so the bright region lacks the corner.
    shadow = np.ones(photo.shape[:2], np.float32)
    cv2.fillPoly(shadow, [np.array([[0, 0], [520, 0], [520, 330], [0, 420]], np.int32)], 0.45)
    shadowed = np.clip(photo * cv2.GaussianBlur(shadow, (0, 0), 6)[:, :, None], 0, 255).astype(np.uint8)

    corners = find_page(shadowed)

    assert corners is not None
    assert np.abs(corners - CORNERS).max() <= 4.0


def _on_screen(
    page: Image.Image, grey: int, margins: tuple[int, int, int, int]
) -> tuple[Image.Image, np.ndarray]:
    """``page`` shown on a screen of ``grey`` paper-like light, with ``margins`` (left, top, right,
    bottom) of screen around it and a dark bezel, photographed at an angle: the photo and where
    the page's corners landed in it."""
    left, top, right, bottom = margins
    bezel = 24
    sheet = Image.new(
        "RGB", (page.width + left + right + 2 * bezel, page.height + top + bottom + 2 * bezel), (18,) * 3
    )
    sheet.paste(
        Image.new("RGB", (page.width + left + right, page.height + top + bottom), (grey,) * 3), (bezel, bezel)
    )
    sheet.paste(page, (bezel + left, bezel + top))
    width, height = sheet.size
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    transform = cv2.getPerspectiveTransform(source, CORNERS.astype(np.float32))
    page_box = np.float32(
        [[bezel + left, bezel + top], [bezel + left + page.width, bezel + top],
         [bezel + left + page.width, bezel + top + page.height], [bezel + left, bezel + top + page.height]]
    )  # fmt: skip
    landed = cv2.perspectiveTransform(page_box.reshape(1, 4, 2), transform).reshape(4, 2)
    rgb = cv2.warpPerspective(np.asarray(sheet), transform, PHOTO_SIZE, borderValue=(30, 30, 34))
    return Image.fromarray(rgb), landed.astype(np.float64)


def test_a_page_on_a_screen_nearly_as_light_as_paper_is_found_by_its_edges() -> None:
    # The screen (232 grey) and the paper differ less than ink and paper: no brightness threshold
    # separates them, the rise at the page's edge does.
    photo, landed = _on_screen(scan().convert("RGB"), 232, (40, 30, 70, 25))

    result = rectify(photo)

    assert result.corners is not None
    assert np.abs(result.corners - landed).max() <= 4.0
    assert np.median(_lead_correlations(scan(), result.image)) >= 0.9


def test_a_page_whose_outline_is_found_off_is_put_right_by_its_printed_grid_box(monkeypatch) -> None:
    photo = _photograph(scan())
    # The outline as a shadow over the bottom-left corner would leave it: that corner 40 px high.
    off = CORNERS + np.array([[0, 0], [0, 0], [0, 0], [0, -40]])
    # Only in the photo itself: the straightened page holds no page inside it.
    monkeypatch.setattr(
        "ml.rectify.find_page", lambda rgb, **_: off.copy() if rgb.shape[1] == PHOTO_SIZE[0] else None
    )
    width, height = scan().size
    target = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    straightened_by_outline = cv2.warpPerspective(
        np.asarray(photo), cv2.getPerspectiveTransform(off.astype(np.float32), target), (width, height)
    )
    assert np.median(_lead_correlations(scan(), Image.fromarray(straightened_by_outline))) < 0.5

    result = rectify(photo)

    assert np.median(_lead_correlations(scan(), result.image)) >= 0.9


def test_a_photographed_page_is_straightened_and_reads_as_the_scan_does() -> None:
    result = rectify(_photograph(scan()))

    assert result.corners is not None
    assert result.image.size == scan().size
    # The digitiser, which reads leads at fixed places on the page, finds the same leads.
    assert np.median(_lead_correlations(scan(), result.image)) >= 0.9


def test_flattening_evens_out_the_light_and_removes_the_tint() -> None:
    page = np.asarray(scan().convert("RGB")).astype(np.float32)
    gradient = np.linspace(0.55, 1.0, page.shape[1])[None, :, None] * np.array([1.0, 0.93, 0.8])
    lit = np.clip(page * gradient, 0, 255).astype(np.uint8)
    paper = page.min(axis=2) > 200  # neither ink nor grid in the original

    flat = flatten_light(lit).astype(np.float32)

    # Left and right thirds of the paper: as bright as each other, and grey-white, not orange.
    width = page.shape[1]
    left = flat[:, : width // 3][paper[:, : width // 3]].mean(axis=0)
    right = flat[:, -width // 3 :][paper[:, -width // 3 :]].mean(axis=0)
    assert np.abs(left - right).max() < 8
    assert np.ptp(left) < 8 and left.min() > 235
    # The traces stay dark.
    ink = page.max(axis=2) < 80
    assert flat[ink].mean() < 120


@pytest.mark.parametrize(
    "image",
    [Image.new("RGB", (800, 600), DESK), Image.new("RGB", (800, 600), (250, 250, 250))],
    ids=["only-desk", "only-paper"],
)
def test_an_image_without_a_page_on_a_background_is_left_as_it_is(image: Image.Image) -> None:
    result = rectify(image)

    assert result.image is image and result.corners is None


def test_a_photo_with_part_of_its_header_cut_off_puts_the_traces_where_they_belong() -> None:
    # The top 10% of the page (inside its 18% header) lies above the photo's top edge.
    photo = _photograph(scan(), np.array([[170, -90], [1430, -80], [1440, 820], [160, 810]], np.float64))

    result = rectify(photo)

    assert result.cut_sides == ("top",) and result.unreadable is None
    assert 0.05 <= missing_fraction(result.corners, "top") <= 0.15
    # The cut edge is a line across the photo, not quite one across the page: the leads come out
    # up to a few samples (tens of ms) late towards the right, their shape intact.
    assert np.median(_lead_correlations(scan(), result.image, max_lag=4)) >= 0.9


@pytest.mark.parametrize(("keep", "side"), [((0, 0, 0.7, 1), "right"), ((0, 0, 1, 0.65), "bottom")])
def test_a_photo_cut_through_the_traces_is_unreadable(keep: tuple[float, ...], side: str) -> None:
    photo = _photograph(scan())
    photo = photo.crop(tuple(round(f * size) for f, size in zip(keep, photo.size * 2, strict=True)))

    result = rectify(photo)

    assert result.cut_sides == (side,)
    assert result.unreadable == f"the photo cuts off the {side} of the page, through the traces"


def test_a_page_shown_on_a_screen_is_found_inside_the_bright_screen() -> None:
    errors = []
    for seed in range(3):
        photo, truth = photograph(scan(), np.random.default_rng(seed), "screen")
        result = rectify(photo)
        errors.append(np.abs(result.corners - np.asarray(truth.corners)).max())

    # The screen around the page is about as bright as paper; the page itself is found to a few px.
    assert max(errors) <= 4.0, errors


def test_a_page_on_a_desk_is_not_looked_for_inside_itself() -> None:
    photo, truth = photograph(scan(), np.random.default_rng(7), "desk")

    result = rectify(photo)

    assert np.abs(result.corners - np.asarray(truth.corners)).max() <= 12.0


def test_grey_ink_is_brought_to_black_and_paper_and_grid_stay() -> None:
    levels = np.array([[90, 150, 199, 230, 250]], np.uint8)
    page = np.repeat(np.repeat(levels, 40, axis=0)[:, :, None], 3, axis=2)
    page[:, :1] = 90  # the darkest ink: more than 1% of the page

    out = darken_ink(page)[0, :, 0]

    # Stretched away from the knee (200): 150 lies 50 below it, and 50 * 200 / 110 is 91 below.
    assert (out[0], out[1]) == (0, 109) and out[2] >= 197
    assert (out[3], out[4]) == (230, 250)
