"""Phone photos of printed ECG pages, to build photo sets for evaluation and augmentation.

Clinicians photograph paper ECGs with a phone. ``photograph(page, rng, kind)`` turns a scanned
page (any size, RGB) into such a photo and says where the page went (``PhotoTruth``);
``photograph_bytes(page, seed, kind)`` gives the JPEG a phone would store. The same page, seed
and kind give the same bytes; the page is not modified. Numpy, Pillow and OpenCV only. Every
distortion is scaled to the page, so any page size works; the photo's long side is 1500-1700 px,
like a phone photo downsized.

A ``desk`` photo (``PHOTO_KINDS``), each strength drawn at random within the range given:

- The page lies on a desk: a muted colour, darker than the paper, with blotchy or grained
  low-frequency texture; the frame is 1.15-1.35x the page on each axis, so the desk shows
  around it.
- Perspective and rotation: each page corner moves independently, in x and y, by up to a limit
  drawn in 1-6 % of the page's width and height, and the page turns by up to 3 degrees either
  way; the page is shrunk if needed so that 2 % of the frame stays free around it.
- Page curl: the page's columns shift vertically by a smooth bulge of up to 1 % of its height
  (zero at the left and right edges), before the perspective.
- Uneven light: a linear gradient in a random direction (up to 25 % darker) and a vignette (5-20 %),
  a brightness factor of 0.55-1.05 over the photo; half the photos also carry a soft shadow,
  a blurred polygon entering from one side of the photo and darkening to 0.55-0.85, over at
  most 30 % of the page.
- White balance: warm or cool per-channel gains of 0.85-1.1.
- Optics and sensor: Gaussian blur of 0.4-1.2 px, then Gaussian noise of sigma 2-6 grey
  levels per pixel and channel.
- Cropped margin (tried on 30 % of photos; about 27 % get one): the frame cuts off part of one
  page edge's margin (the header, the footer, the left or the right margin) with at least one
  page corner, never the grid box (``ml.layout.TRACE_BOX_FRACTIONS``), which stays whole in the
  photo; the photo keeps its orientation.
- JPEG at quality 55-80.

A ``screen`` photo is the page shown on a monitor: a dark room and bezel around a bright screen
area (grey 175-235) that holds the page, the same perspective and rotation, the whole photo
darker (gain 0.75-0.95) and bluish, a lens vignette (3-12 %), blur as above, then moiré (the
monitor's pixel grid, its pitch near one photo pixel, aliases against the camera's into fringes
7-25 px apart, of 3-15 grey levels, slightly coloured), noise and JPEG as above. No curl,
shadow or crop.

Command line (photos of ``ml.synthetic`` pages, or of every ``<class>/<image>`` of a folder)::

    python -m ml.photos --out DIR --per-class N [--seed S] [--kind desk|screen]
    python -m ml.photos --out DIR --from DIR [--seed S] [--kind desk|screen]
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ml.labels import CLASSES
from ml.layout import TRACE_BOX_FRACTIONS
from ml.preprocess import IMAGE_SUFFIXES, InvalidImageError, decode_image
from ml.rectify import box_corners
from ml.synthetic import dataset_pages

PHOTO_KINDS: tuple[str, ...] = ("desk", "screen")

PHOTO_LONG_SIDE = (1500, 1700)
DESK_FRAME = (1.15, 1.35)  # the photo's size over the page's, per axis
SCREEN_FRAME = (1.04, 1.15)  # the photo's size over the monitor's (bezel included)
MIN_BORDER = 0.02  # of the photo's size: what is left at least between an uncropped page and the edge
CORNER_SHIFT = (0.01, 0.06)  # largest corner move, of the page's size, drawn per photo
MAX_ROTATION_DEGREES = 3.0
MAX_CURL = 0.01  # of the page's height
CROP_PROBABILITY = 0.3
MIN_CROPPED_ASPECT = 1.2  # long side over short side, at least, after a margin crop
SHADOW_PROBABILITY = 0.5
SHADOW_LEVEL = (0.55, 0.85)
MAX_SHADOW_COVER = 0.3  # of the page's area
LIGHT_RANGE = (0.55, 1.05)
TINT_RANGE = (0.85, 1.1)
NOISE_SIGMA = (2.0, 6.0)
BLUR_SIGMA = (0.4, 1.2)
JPEG_QUALITY = (55, 80)
SCREEN_GAIN = (0.75, 0.95)
MOIRE_AMPLITUDE = (3.0, 15.0)
MOIRE_FRINGE_FREQUENCY = (0.04, 0.15)  # cycles per photo pixel: fringes 7-25 px apart
# Light, shadow and moiré are smooth: they are computed on a grid this many times coarser.
COARSE = 4
# Page i of a run with seed S is photographed with seed S * SEEDS_PER_RUN + i.
SEEDS_PER_RUN = 1_000_000


@dataclass(frozen=True)
class PhotoTruth:
    """Where the page went: its four corners in the photo, clockwise from top-left, in photo pixels
    (x, y) (they may lie outside the photo when the margin was cropped), and the settings drawn.

    Coordinates are continuous: (0, 0) is the top-left corner of the photo's top-left pixel, and
    a corner is where the page's outer corner (not its corner pixel's centre) landed.
    ``rotation_degrees`` is the turn drawn, positive counter-clockwise (the corners' independent
    moves skew the page's edges a little more).
    """

    corners: tuple[tuple[float, float], ...]
    kind: str
    rotation_degrees: float
    jpeg_quality: int
    margin_cropped: bool


@dataclass(frozen=True)
class _Sheet:
    """What lies in front of the camera: the page alone (desk) or the monitor showing it (screen).

    Sizes and positions in page pixels; ``page_box`` is the page inside the sheet and
    ``screen_box`` the lit screen area (left, top, right, bottom).
    """

    width: float
    height: float
    page_box: tuple[float, float, float, float]
    screen_box: tuple[float, float, float, float]
    screen_colour: tuple[int, int, int] = (0, 0, 0)
    bezel_colour: tuple[int, int, int] = (0, 0, 0)

    @property
    def is_page(self) -> bool:
        """Whether the sheet is the page itself (a desk photo)."""
        return self.page_box == (0.0, 0.0, self.width, self.height)


def _transform(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)


def _homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    return cv2.getPerspectiveTransform(source.astype(np.float32), target.astype(np.float32)).astype(
        np.float64
    )


def _screen_sheet(rng: np.random.Generator, width: int, height: int) -> _Sheet:
    """A monitor showing the page: a bright screen area a little larger than the page, in a bezel."""
    screen_width = width * float(rng.uniform(1.03, 1.15))
    screen_height = height * float(rng.uniform(1.03, 1.15))
    bezel = width * float(rng.uniform(0.015, 0.04))
    left = bezel + (screen_width - width) * float(rng.uniform(0.3, 0.7))
    top = bezel + (screen_height - height) * float(rng.uniform(0.3, 0.7))
    grey = int(rng.integers(175, 236))
    dark = int(rng.integers(8, 31))
    return _Sheet(
        width=screen_width + 2 * bezel,
        height=screen_height + 2 * bezel,
        page_box=(left, top, left + width, top + height),
        screen_box=(bezel, bezel, bezel + screen_width, bezel + screen_height),
        screen_colour=(grey, grey, min(255, grey + int(rng.integers(0, 8)))),
        bezel_colour=(dark, dark, dark),
    )


def _place(
    rng: np.random.Generator, sheet: _Sheet, frame: tuple[float, float]
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Where the sheet's corners fall on a canvas ``frame`` times its size, and the canvas size.

    Each corner moves independently, the sheet turns, and then the whole is shrunk if needed so
    that ``MIN_BORDER`` of the canvas stays free on every side, and shifted at random within it.
    """
    canvas_width = sheet.width * float(rng.uniform(*frame))
    canvas_height = sheet.height * float(rng.uniform(*frame))
    corners = box_corners(-sheet.width / 2, -sheet.height / 2, sheet.width / 2, sheet.height / 2)
    shift = float(rng.uniform(*CORNER_SHIFT))
    corners += rng.uniform(-shift, shift, (4, 2)) * (sheet.width, sheet.height)
    rotation = float(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    cosine, sine = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    # Image y points down, so this turns the sheet counter-clockwise as seen.
    corners = corners @ np.array([[cosine, -sine], [sine, cosine]])
    room = np.array([canvas_width, canvas_height]) * (1 - 2 * MIN_BORDER)
    extent = corners.max(axis=0) - corners.min(axis=0)
    corners /= max(1.0, float(np.max(extent / room)))
    low, high = corners.min(axis=0), corners.max(axis=0)
    slack = (room - (high - low)) / 2
    centre = np.array([canvas_width, canvas_height]) / 2 + rng.uniform(-1, 1, 2) * slack
    corners += centre - (low + high) / 2
    return corners, rotation, (canvas_width, canvas_height)


def _margin_crop(
    rng: np.random.Generator,
    page_corners: np.ndarray,
    grid_corners: np.ndarray,
    canvas: tuple[float, float],
    safety: tuple[float, float],
) -> tuple[float, float, float, float] | None:
    """A canvas box (left, top, right, bottom) that leaves out part of one page edge's margin but
    none of the grid box, or None when no side allows it.

    Sides are tried in a random order. A side's cut must pass the page's outermost corner on that
    side, stop ``safety`` (x, y) short of the grid box, and keep the photo's orientation, at
    least ``MIN_CROPPED_ASPECT`` long (a landscape photo stays landscape).
    """
    size = np.array(canvas)
    long_axis = 0 if size[0] >= size[1] else 1
    min_aspect = min(MIN_CROPPED_ASPECT, size[long_axis] / size[1 - long_axis])
    for side in rng.permutation(4):
        axis = int(side % 2)  # 0: the left or right side, 1: the top or bottom
        far = side >= 2  # the right and bottom sides: distances are measured from the far edge
        page_depth = size[axis] - page_corners[:, axis] if far else page_corners[:, axis]
        grid_depth = size[axis] - grid_corners[:, axis] if far else grid_corners[:, axis]
        least = float(page_depth.min())  # past the outermost corner...
        most = float(grid_depth.min()) - safety[axis]  # ...but short of the grid box
        if axis == long_axis:
            most = min(most, float(size[axis] - min_aspect * size[1 - axis]))
        if most - least < safety[axis]:
            continue
        cut = least + (most - least) * float(rng.uniform(0.15, 0.85))
        box = [0.0, 0.0, float(size[0]), float(size[1])]
        if far:
            box[axis + 2] -= cut
        else:
            box[axis] = cut
        return box[0], box[1], box[2], box[3]
    return None


def _desk(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A muted desk colour with blotchy or grained low-frequency texture (uint8, size given)."""
    width, height = size
    coarse_width, coarse_height = max(2, width // COARSE), max(2, height // COARSE)
    hue = float(rng.uniform(0, 360))
    saturation = float(rng.uniform(0.08, 0.45))
    value = float(rng.uniform(0.25, 0.62))
    hsv = np.array([[[hue / 2, saturation * 255, value * 255]]], dtype=np.float32)
    colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    blotches = rng.normal(
        0, float(rng.uniform(0.03, 0.12)), (int(rng.integers(2, 6)), int(rng.integers(2, 8)))
    )
    texture = cv2.resize(
        blotches.astype(np.float32), (coarse_width, coarse_height), interpolation=cv2.INTER_CUBIC
    )
    if rng.random() < 0.5:  # wood or fabric grain along one axis
        grain = rng.normal(
            0, float(rng.uniform(0.02, 0.06)), (int(rng.integers(40, 90)), int(rng.integers(3, 7)))
        )
        if rng.random() < 0.5:
            grain = grain.T
        texture += cv2.resize(
            grain.astype(np.float32), (coarse_width, coarse_height), interpolation=cv2.INTER_CUBIC
        )
    texture += rng.normal(0, float(rng.uniform(0.01, 0.04)), texture.shape).astype(np.float32)
    pixels = colour[np.newaxis, np.newaxis, :] * (1 + texture[:, :, np.newaxis])
    coarse = np.clip(pixels, 0, 255).astype(np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _room(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """The dark surroundings of a monitor, a little uneven (uint8, size given)."""
    width, height = size
    coarse = (max(2, width // COARSE), max(2, height // COARSE))
    colour = float(rng.uniform(15, 60)) * rng.uniform(0.85, 1.15, 3)
    blotches = rng.normal(0, 0.15, (int(rng.integers(2, 5)), int(rng.integers(2, 6)))).astype(np.float32)
    texture = cv2.resize(blotches, coarse, interpolation=cv2.INTER_CUBIC)
    pixels = colour[np.newaxis, np.newaxis, :] * (1 + texture[:, :, np.newaxis])
    return cv2.resize(np.clip(pixels, 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_LINEAR)


def _curl(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift the sheet's columns down (or up) by a smooth bulge, zero at the left and right edges.

    Pixels uncovered at the top or bottom edge become transparent, so the paper's edge bends.
    """
    height, width = sheet.shape[:2]
    bulge = height * float(rng.uniform(0.2, 1.0)) * MAX_CURL * float(rng.choice([-1.0, 1.0]))
    skew = float(rng.uniform(0.7, 1.4))  # moves the bulge's peak left or right
    across = ((np.arange(width, dtype=np.float64) + 0.5) / width) ** skew
    shift = (bulge * np.sin(np.pi * across)).astype(np.float32)
    map_x = np.broadcast_to(np.arange(width, dtype=np.float32)[np.newaxis, :], (height, width))
    map_y = np.arange(height, dtype=np.float32)[:, np.newaxis] - shift[np.newaxis, :]
    return cv2.remap(
        sheet,
        np.ascontiguousarray(map_x),
        np.ascontiguousarray(map_y),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )


def _coarse_grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Pixel-centre coordinates (x, y) of a grid ``COARSE`` times coarser than the photo, placed
    where ``cv2.resize`` (INTER_LINEAR) takes its samples when it enlarges it to the photo."""
    width, height = size
    coarse = (max(2, math.ceil(width / COARSE)), max(2, math.ceil(height / COARSE)))
    xs = (np.arange(coarse[0]) + 0.5) * width / coarse[0] - 0.5
    ys = (np.arange(coarse[1]) + 0.5) * height / coarse[1] - 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    return grid_x, grid_y, coarse


def _light(
    rng: np.random.Generator,
    size: tuple[int, int],
    page_corners: np.ndarray,
    kind: str,
) -> np.ndarray:
    """The brightness factor of every coarse-grid point: a gradient, a vignette and perhaps a
    shadow over part of the page (float32, coarse grid of ``_coarse_grid``)."""
    grid_x, grid_y, coarse = _coarse_grid(size)
    width, height = size
    across, down = grid_x / width * 2 - 1, grid_y / height * 2 - 1
    if kind == "desk":
        base, gradient, vignette = rng.uniform(0.92, 1.05), rng.uniform(0, 0.25), rng.uniform(0.05, 0.2)
    else:  # a screen lights itself: only the lens's vignette and a little glare
        base, gradient, vignette = rng.uniform(0.97, 1.03), rng.uniform(0, 0.08), rng.uniform(0.03, 0.12)
    direction = float(rng.uniform(0, 2 * np.pi))
    along = across * math.cos(direction) + down * math.sin(direction)
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-9)
    centre = rng.uniform(-0.3, 0.3, 2)
    radius = (across - centre[0]) ** 2 + (down - centre[1]) ** 2
    radius /= radius.max()
    light = np.clip(base * (1 - gradient * along) * (1 - vignette * radius), *LIGHT_RANGE)
    if kind == "desk" and rng.random() < SHADOW_PROBABILITY:
        light = light * _shadow(rng, size, coarse, page_corners)
    return light.astype(np.float32)


def _shadow(
    rng: np.random.Generator, size: tuple[int, int], coarse: tuple[int, int], page_corners: np.ndarray
) -> np.ndarray:
    """A soft shadow (of a hand or a phone) entering from one side of the photo, as a brightness
    factor on the coarse grid; shrunk until it covers at most ``MAX_SHADOW_COVER`` of the page."""
    width, height = size
    scale = np.array([coarse[0] / width, coarse[1] / height])
    page = np.zeros((coarse[1], coarse[0]), np.uint8)
    cv2.fillPoly(page, [np.round(page_corners * scale).astype(np.int32)], 1)
    page_area = max(int(page.sum()), 1)
    side = int(rng.integers(0, 4))
    along_length, across_length = (height, width) if side % 2 == 0 else (width, height)
    span = float(rng.uniform(0.25, 0.7))
    start = float(rng.uniform(0, 1 - span))
    depth = float(rng.uniform(0.15, 0.5))
    bends = rng.uniform(0.6, 1.0, 3)
    level = float(rng.uniform(*SHADOW_LEVEL))
    softness = float(rng.uniform(0.01, 0.04)) * min(coarse)
    mask = np.zeros_like(page)
    for _ in range(12):
        # (along the side, into the photo) pairs, then turned into (x, y) for the side chosen.
        lengths = np.array([along_length, across_length])
        outline = (
            np.array(
                [
                    (start, -0.05),
                    (start + span, -0.05),
                    (start + span * 0.95, depth * bends[0]),
                    (start + span * 0.5, depth * bends[1]),
                    (start + span * 0.05, depth * bends[2]),
                ]
            )
            * lengths
        )
        if side in (1, 2):  # the right and bottom sides: measured in from the far edge
            outline[:, 1] = across_length - outline[:, 1]
        points = outline if side % 2 == 1 else outline[:, ::-1]
        mask[:] = 0
        cv2.fillPoly(mask, [np.round(points * scale).astype(np.int32)], 1)
        if (mask & page).sum() <= MAX_SHADOW_COVER * page_area:
            break
        depth *= 0.8
        span *= 0.85
    else:
        return np.ones(page.shape, np.float64)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(softness, 0.5))
    return 1 - (1 - level) * soft.astype(np.float64)


def _white_balance(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Per-channel (R, G, B) gains: a warm or cool cast (desk), or a darker bluish screen."""
    if kind == "desk":
        warmth = float(rng.uniform(-1, 1))
        gains = np.array([1 + 0.06 * warmth, 1.0, 1 - 0.08 * warmth]) + rng.uniform(-0.02, 0.02, 3)
        return np.clip(gains, *TINT_RANGE)
    blue = np.array([rng.uniform(0.86, 0.95), rng.uniform(0.93, 1.0), 1.0])
    return blue * float(rng.uniform(*SCREEN_GAIN))


def _moire(
    rng: np.random.Generator,
    size: tuple[int, int],
    to_sheet: np.ndarray,
    screen_box: tuple[float, float, float, float],
) -> np.ndarray:
    """The moiré of the monitor's pixel grid, sampled by the camera's, on the screen area
    (float32 (height, width, 3) grey levels, zero elsewhere).

    The grid is ``cos(2 pi u / pitch) + cos(2 pi v / pitch)`` in sheet coordinates (u, v), so it
    follows the perspective; its pitch is near one photo pixel, and sampled at the photo's pixels
    it shows only its alias: smooth fringes. The alias (the grid's phase less the whole cycles per
    pixel, which vanish when sampled) is computed on a coarse grid and enlarged, and the cosine
    taken per pixel. The channels' amplitudes differ a little (the red, green and blue
    sub-pixels), so the fringes are slightly coloured.
    """
    width, height = size
    grid_x, grid_y, _ = _coarse_grid(size)
    points = np.stack([grid_x.ravel() + 0.5, grid_y.ravel() + 0.5], axis=1)
    u, v = _transform(to_sheet, points).T.reshape(2, *grid_x.shape)
    # Sheet pixels per photo pixel at the photo's centre: the grid's pitch is set against it.
    centre = np.array([[width / 2, height / 2], [width / 2 + 1, height / 2], [width / 2, height / 2 + 1]])
    mapped = _transform(to_sheet, centre)
    sheet_per_pixel = math.sqrt(abs(float(np.linalg.det(mapped[1:] - mapped[0]))))
    fringes = float(rng.uniform(*MOIRE_FRINGE_FREQUENCY)) * float(rng.choice([-1.0, 1.0]))
    pitch = sheet_per_pixel / (1 + fringes)
    amplitude = float(rng.uniform(*MOIRE_AMPLITUDE))
    tint = 1 + rng.uniform(-0.35, 0.35, 3)
    left, top, right, bottom = screen_box
    on_screen = ((u > left) & (u < right) & (v > top) & (v < bottom)).astype(np.float32)
    pattern = np.zeros((height, width), np.float32)
    for coordinate in (u, v):
        phase = 2 * np.pi * coordinate / pitch
        cycles_x = np.round(np.median(np.gradient(phase, axis=1) / np.gradient(grid_x, axis=1)) / (2 * np.pi))
        cycles_y = np.round(np.median(np.gradient(phase, axis=0) / np.gradient(grid_y, axis=0)) / (2 * np.pi))
        alias = phase - 2 * np.pi * (cycles_x * grid_x + cycles_y * grid_y)
        alias -= alias.mean()
        smooth = cv2.resize(alias.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        pattern += np.cos(smooth, out=smooth)
    pattern *= cv2.resize(on_screen, size, interpolation=cv2.INTER_LINEAR)
    return cv2.merge([pattern * np.float32(amplitude / 2 * gain) for gain in tint])


def _normal_quantiles(count: int) -> np.ndarray:
    """Quantiles of the standard normal distribution at (i + 0.5) / count, i < count."""
    grid = np.linspace(-6.0, 6.0, 4001)
    cdf = 0.5 * (1 + np.array([math.erf(value / math.sqrt(2)) for value in grid]))
    return np.interp((np.arange(count) + 0.5) / count, cdf, grid)


# Gaussian noise by table lookup from random 16-bit integers: several times faster than drawing
# normal floats for every pixel and channel, and as Gaussian at 8-bit depth.
_NORMAL_QUANTILES = _normal_quantiles(2**16).astype(np.float32)


def _sensor_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    sigma = np.float32(rng.uniform(*NOISE_SIGMA))
    table = _NORMAL_QUANTILES * sigma
    return table[rng.integers(0, 2**16, shape, dtype=np.uint16)]


def _rgba(page: Image.Image) -> np.ndarray:
    """An RGB page as an opaque RGBA array (a new one: the page is not touched)."""
    return cv2.cvtColor(np.asarray(page), cv2.COLOR_RGB2RGBA)


def _render_sheet(
    page: Image.Image, sheet: _Sheet, scale: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The sheet as an opaque RGBA array at ``scale`` times page pixels, the page's corners in it
    (clockwise from top-left, pixel-edge coordinates) and its screen area's box."""
    if scale != 1.0:
        page = page.resize(
            (max(1, round(page.width * scale)), max(1, round(page.height * scale))), Image.Resampling.BILINEAR
        )
    if sheet.is_page:
        return _rgba(page), box_corners(0, 0, page.width, page.height), (0.0, 0.0, page.width, page.height)
    width, height = round(sheet.width * scale), round(sheet.height * scale)
    pixels = np.empty((height, width, 4), np.uint8)
    pixels[:] = (*sheet.bezel_colour, 255)
    left, top, right, bottom = (round(v * scale) for v in sheet.screen_box)
    pixels[top:bottom, left:right] = (*sheet.screen_colour, 255)
    x, y = round(sheet.page_box[0] * scale), round(sheet.page_box[1] * scale)
    pixels[y : y + page.height, x : x + page.width] = _rgba(page)
    return pixels, box_corners(x, y, x + page.width, y + page.height), (left, top, right, bottom)


def _encode(pixels: np.ndarray, quality: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _photograph_jpeg(page: Image.Image, rng: np.random.Generator, kind: str) -> tuple[bytes, PhotoTruth]:
    """The JPEG bytes of a photo of ``page`` and its truth (see ``photograph``)."""
    if kind not in PHOTO_KINDS:
        raise ValueError(f"'kind' must be one of {PHOTO_KINDS}. Received: kind={kind!r}")
    page = page if page.mode == "RGB" else page.convert("RGB")
    page_width, page_height = page.size
    desk = kind == "desk"
    if desk:
        page_box = (0.0, 0.0, float(page_width), float(page_height))
        sheet = _Sheet(float(page_width), float(page_height), page_box, page_box)
    else:
        sheet = _screen_sheet(rng, page_width, page_height)

    # Geometry first, in page pixels on a nominal canvas; then one scale to the photo's size.
    corners, rotation, canvas = _place(rng, sheet, DESK_FRAME if desk else SCREEN_FRAME)
    crop = (0.0, 0.0, *canvas)
    margin_cropped = False
    if desk and rng.random() < CROP_PROBABILITY:
        to_canvas = _homography(box_corners(0, 0, sheet.width, sheet.height), corners)
        left, top, right, bottom = TRACE_BOX_FRACTIONS
        grid = _transform(
            to_canvas,
            box_corners(left * page_width, top * page_height, right * page_width, bottom * page_height),
        )
        # The curl moves the grid box's edges by up to MAX_CURL of the page's height.
        safety = (0.004 * page_width + 2, (MAX_CURL + 0.004) * page_height + 2)
        margin = _margin_crop(rng, corners, grid, canvas, safety)
        if margin is not None:
            crop, margin_cropped = margin, True
    long_side = int(rng.integers(PHOTO_LONG_SIDE[0], PHOTO_LONG_SIDE[1] + 1))
    crop_width, crop_height = crop[2] - crop[0], crop[3] - crop[1]
    zoom = long_side / max(crop_width, crop_height)
    size = (round(crop_width * zoom), round(crop_height * zoom))
    placed = (corners - crop[:2]) * zoom

    # A large page is shrunk with Pillow first: the warp alone would alias when shrinking much.
    pixels, page_in_sheet, screen_box = _render_sheet(page, sheet, zoom if zoom < 0.75 else 1.0)
    if desk:
        pixels = _curl(pixels, rng)
    sheet_height, sheet_width = pixels.shape[:2]
    to_photo = _homography(box_corners(0, 0, sheet_width, sheet_height), placed)
    page_corners = _transform(to_photo, page_in_sheet)
    # OpenCV puts pixel centres at whole coordinates; the homography is in pixel-edge coordinates.
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    warped = cv2.warpPerspective(
        pixels,
        np.linalg.inv(half) @ to_photo @ half,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    background = _desk(rng, size) if desk else _room(rng, size)
    # Bilinear sampling against the transparent border leaves the colour premultiplied by alpha.
    photo = background.astype(np.float32)
    photo *= 1 - warped[:, :, 3:4] * np.float32(1 / 255)
    photo += warped[:, :, :3]

    light = _light(rng, size, page_corners, kind)
    gains = _white_balance(rng, kind).astype(np.float32)
    photo *= cv2.resize(light[:, :, np.newaxis] * gains, size, interpolation=cv2.INTER_LINEAR)
    photo = cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(*BLUR_SIGMA)), dst=photo)
    if not desk:  # moiré arises where the camera samples, after the lens's blur
        photo += _moire(rng, size, np.linalg.inv(to_photo), screen_box)
    photo += _sensor_noise(rng, photo.shape)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    np.maximum(photo, 0, out=photo)
    data = _encode(cv2.convertScaleAbs(photo), quality)  # rounds and saturates at 255
    truth = PhotoTruth(
        corners=tuple((float(x), float(y)) for x, y in page_corners),
        kind=kind,
        rotation_degrees=rotation,
        jpeg_quality=quality,
        margin_cropped=margin_cropped,
    )
    return data, truth


def photograph(
    page: Image.Image, rng: np.random.Generator, kind: str = "desk"
) -> tuple[Image.Image, PhotoTruth]:
    """A phone-style photo of ``page`` (RGB) of ``kind`` (``PHOTO_KINDS``), its settings drawn from
    ``rng`` (see the module docstring); returns the decoded photo (RGB, after the JPEG round trip,
    so the JPEG artefacts are in it) and the truth: where the page went and what was drawn."""
    data, truth = _photograph_jpeg(page, rng, kind)
    with Image.open(io.BytesIO(data)) as photo:
        return photo.convert("RGB"), truth


def photograph_bytes(page: Image.Image, seed: int, kind: str = "desk") -> bytes:
    """The JPEG bytes of ``photograph(page, np.random.default_rng(seed), kind)`` as a phone would
    store them."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"'seed' must be a non-negative integer. Received: seed={seed!r}")
    return _photograph_jpeg(page, np.random.default_rng(seed), kind)[0]


def page_seed(seed: int, index: int) -> int:
    """The photo seed of the ``index``-th page of a run with ``seed``: one stream per page."""
    if not 0 <= index < SEEDS_PER_RUN:
        raise ValueError(f"'index' must be in [0, {SEEDS_PER_RUN}). Received: index={index!r}")
    return seed * SEEDS_PER_RUN + index


def _progress(written: int, total: int, path: Path) -> None:
    print(f"\r{written}/{total} {path}", end="", file=sys.stderr, flush=True)


def photograph_synthetic(out: Path, per_class: int, seed: int = 0, kind: str = "desk") -> int:
    """Write ``out/<label>/<label>_<i>.jpg``: photos of ``ml.synthetic`` pages, ``per_class`` for
    every class (the pages of ``python -m ml.synthetic`` with the same seed); return the count."""
    total = per_class * len(CLASSES)
    written = 0
    for stem, page in dataset_pages(out, per_class, seed):
        path = stem.with_suffix(".jpg")
        path.write_bytes(photograph_bytes(page, page_seed(seed, written), kind))
        written += 1
        _progress(written, total, path)
    print(file=sys.stderr)
    return written


def photograph_folder(source: Path, out: Path, seed: int = 0, kind: str = "desk") -> int:
    """Write a photo of every ``source/<class>/<image>`` (JPEG or PNG) to the same relative path
    under ``out``, as ``.jpg``; return the count. Raises ValueError when there is nothing to
    photograph, two images would land on one file, or an image cannot be read."""
    if not source.is_dir():
        raise ValueError(f"{source} is not a folder.")
    files = sorted(
        path for path in source.glob("*/*") if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(f"{source} holds no <class>/<image> files.")
    targets = [out / path.relative_to(source).with_suffix(".jpg") for path in files]
    if len(set(targets)) < len(targets):
        raise ValueError(
            f"{source} holds images that differ only in their suffix; their photos would collide."
        )
    for index, (path, target) in enumerate(zip(files, targets, strict=True)):
        try:
            page = decode_image(path.read_bytes(), min_trace_width=None)
        except InvalidImageError as error:
            raise ValueError(f"{path}: {error.reason}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(photograph_bytes(page, page_seed(seed, index), kind))
        _progress(index + 1, len(files), target)
    print(file=sys.stderr)
    return len(files)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ml.photos``."""
    parser = argparse.ArgumentParser(prog="python -m ml.photos", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    pages = parser.add_mutually_exclusive_group(required=True)
    pages.add_argument("--per-class", type=int, help="photograph this many synthetic pages per class")
    pages.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="photograph every <class>/<image> of this folder instead",
    )
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument(
        "--kind",
        choices=PHOTO_KINDS,
        default="desk",
        help="a printout on a desk, or the page on a monitor (default desk)",
    )
    args = parser.parse_args(argv)
    if args.per_class is not None and args.per_class < 1:
        parser.error("--per-class must be >= 1")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.source is not None:
        try:
            count = photograph_folder(args.source, args.out, args.seed, args.kind)
        except ValueError as error:
            parser.error(str(error))
    else:
        count = photograph_synthetic(args.out, args.per_class, args.seed, args.kind)
    print(f"wrote {count} {args.kind} photos under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
