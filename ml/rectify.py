"""Find a photographed printout's page and straighten it, so the rest of the pipeline reads it as
it reads a scan.

A scan is the page: the image's edges are the paper's, upright and evenly lit. A phone photo of a
printout is not: the page lies on a desk, seen at an angle and turned a little, lit unevenly and
tinted by the room's light. ``rectify`` turns such a photo back into a scan-like page:

1. Find the page (``find_page``): on a copy about ``WORK_WIDTH`` px wide, the paper is the large
   bright region (Otsu's threshold on the smoothed brightness, closed so that traces and grid
   lines do not cut it); its convex hull, reduced to four corners, is the page.
2. Straighten it: a perspective transform maps those corners onto the reference page
   (``ml.layout``, 1200x852 px), reading the photo at full resolution.
3. Flatten the light (``flatten_light``): each channel is divided by a smooth estimate of the
   paper under the ink (a closing lifts the traces and grid lines to the paper's level, a blur
   smooths it), so gradients, shadows and the tint go and the paper is white again.

An image whose page fills it (a scan, or a photo cropped to the page) is left as it is.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from ml import layout

WORK_WIDTH = 600  # the page is looked for on a copy about this wide
MIN_PAGE_FRACTION = 0.2  # of the photo's area: a smaller bright region is not the page
# A page region covering this much of the image is the image itself: a scan, left as it is.
FILLS_IMAGE_FRACTION = 0.9
PAPER_WHITE = 250.0  # the level flattened paper is brought to, as on the scans
BACKGROUND_SCALE = 4  # the paper level is estimated on a copy this many times smaller
BACKGROUND_CLOSING_PX = 7  # at that scale: wider than a trace or a grid line, narrower than the page
BACKGROUND_BLUR_SIGMA = 4.0
EDGE_SAMPLES = 32  # points per side where the page's edge is found again at full resolution
EDGE_MIN_STEP = 6.0  # grey levels lost in one pixel: a real paper edge, not noise


class Rectification(NamedTuple):
    """The page to read and where it was found: ``corners`` (4x2, x and y in the photo's pixels,
    clockwise from the top left) is None when the image was left as it is."""

    image: Image.Image
    corners: np.ndarray | None


def rectify(image: Image.Image) -> Rectification:
    """The page of a photographed printout, straightened and evenly lit at the reference size;
    an image that is already the page (a scan) comes back unchanged."""
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    corners = find_page(rgb)
    if corners is None:
        return Rectification(image, None)
    size = (layout.REFERENCE_WIDTH, layout.REFERENCE_HEIGHT)
    target = np.array([[0, 0], [size[0] - 1, 0], [size[0] - 1, size[1] - 1], [0, size[1] - 1]], np.float32)
    transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    page = cv2.warpPerspective(rgb, transform, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Rectification(Image.fromarray(flatten_light(page)), corners)


def find_page(rgb: np.ndarray) -> np.ndarray | None:
    """The corners (4x2 float, clockwise from the top left, in ``rgb``'s pixels) of the largest
    bright quadrilateral in ``rgb`` (H x W x 3 uint8); None when no region is large enough, or
    when it fills the image (the image is the page)."""
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # A whole factor: area averaging over whole blocks is several times cheaper than over parts.
    factor = max(1, round(width / WORK_WIDTH))
    small = cv2.resize(
        grey, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    _, paper = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Traces, grid lines and printed text would cut the paper into pieces: close them.
    reach = max(3, round(0.02 * small.shape[1])) | 1
    paper = cv2.morphologyEx(
        paper, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach))
    )
    contours, _ = cv2.findContours(paper, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    if cv2.contourArea(largest) < MIN_PAGE_FRACTION * small.shape[0] * small.shape[1]:
        return None
    corners = _clockwise(_four_corners(cv2.convexHull(largest))) * factor
    if _area(corners) >= FILLS_IMAGE_FRACTION * width * height:
        return None  # the image is the page
    # The small copy places the edges to a pixel or two of it, a few of the photo's: enough to
    # shift the leads by a sample. Each edge is found again in the photo itself.
    return _refined(corners, grey, reach=2.0 * factor + 4)


def _refined(corners: np.ndarray, grey: np.ndarray, reach: float) -> np.ndarray:
    """``corners`` moved onto the page's edges in ``grey``: along each side, the steepest fall
    from paper to background within ``reach`` px across it; a line through those points per
    side; the corners where the lines meet. Sides that cannot be refined keep their corners."""
    centre = corners.mean(axis=0)
    lines = []
    for start, end in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        along = end - start
        normal = np.array([along[1], -along[0]]) / max(float(np.hypot(*along)), 1e-9)
        if np.dot((start + end) / 2 - centre, normal) < 0:
            normal = -normal  # outwards, from the paper to the background
        points = start + np.linspace(0.1, 0.9, EDGE_SAMPLES)[:, None] * along
        offsets = np.arange(-reach, reach + 1.0)
        across = points[:, None, :] + offsets[None, :, None] * normal
        profile = cv2.remap(
            grey,
            across[..., 0].astype(np.float32),
            across[..., 1].astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        fall = profile[:, :-1] - profile[:, 1:]  # brightness lost one pixel further out
        steepest = np.argmax(fall, axis=1)
        found = points + (offsets[steepest] + 0.5)[:, None] * normal
        # Only where the fall is a real edge: the paper is much brighter than what lies outside.
        sharp = fall[np.arange(len(found)), steepest] >= EDGE_MIN_STEP
        if sharp.sum() < EDGE_SAMPLES // 2:
            lines.append(None)
            continue
        vx, vy, x0, y0 = cv2.fitLine(found[sharp].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], np.float64), np.array([vx, vy], np.float64)))
    refined = corners.copy()
    for index in range(4):
        before, after = lines[index - 1], lines[index]  # the sides meeting at this corner
        if before is None or after is None:
            continue
        meeting = _intersection(before, after)
        if meeting is not None and np.hypot(*(meeting - corners[index])) <= 2 * reach:
            refined[index] = meeting
    return refined


def _intersection(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    (p, u), (q, v) = first, second
    determinant = u[0] * v[1] - u[1] * v[0]
    if abs(determinant) < 1e-6:
        return None
    t = ((q[0] - p[0]) * v[1] - (q[1] - p[1]) * v[0]) / determinant
    return p + t * u


def flatten_light(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (a page, H x W x 3 uint8) with each channel divided by its paper level and brought
    to ``PAPER_WHITE``: uneven light, shadows and a colour cast are gone, the ink stays."""
    height, width = rgb.shape[:2]
    small = cv2.resize(
        rgb,
        (max(1, width // BACKGROUND_SCALE), max(1, height // BACKGROUND_SCALE)),
        interpolation=cv2.INTER_AREA,
    )
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (BACKGROUND_CLOSING_PX, BACKGROUND_CLOSING_PX))
    paper = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel), (0, 0), BACKGROUND_BLUR_SIGMA)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    flat = rgb.astype(np.float32) * (PAPER_WHITE / np.maximum(paper, 1.0))
    return np.clip(flat + 0.5, 0, 255).astype(np.uint8)


def _four_corners(hull: np.ndarray) -> np.ndarray:
    """Four points of a convex hull: its polygon simplified until four vertices are left, or its
    smallest enclosing rectangle when no tolerance gives four."""
    perimeter = cv2.arcLength(hull, True)
    for fraction in (0.01, 0.02, 0.03, 0.05, 0.08, 0.12):
        polygon = cv2.approxPolyDP(hull, fraction * perimeter, True)
        if len(polygon) == 4:
            return polygon.reshape(4, 2).astype(np.float64)
        if len(polygon) < 4:
            break
    return cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)


def _clockwise(points: np.ndarray) -> np.ndarray:
    """The four points ordered top left, top right, bottom right, bottom left."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ordered = points[np.argsort(angles)]  # clockwise on screen (y grows downwards), from the left
    first = int(np.argmin(ordered.sum(axis=1)))  # the top left has the smallest x + y
    return np.roll(ordered, -first, axis=0)


def _area(corners: np.ndarray) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
