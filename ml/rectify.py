"""Find a photographed printout's page and straighten it, so the rest of the pipeline reads it as
it reads a scan.

A scan is the page: the image's edges are the paper's, upright and evenly lit. A phone photo of a
printout is not: the page lies on a desk, seen at an angle and turned a little, lit unevenly and
tinted by the room's light. ``rectify`` turns such a photo back into a scan-like page:

1. Find the page (``find_page``): on a copy about ``WORK_WIDTH`` px wide, the paper is the large
   bright region (Otsu's threshold on the smoothed brightness, closed so that traces and grid
   lines do not cut it); its convex hull, reduced to four corners, is the page. A corner lost in
   a shadow is found where the page's sides, extended, meet.
2. Straighten it: a perspective transform maps those corners onto the reference page
   (``ml.layout``, 1200x852 px), reading the photo at full resolution. A page shown on a screen
   is then found inside the straightened screen, by brightness or, on a screen nearly as light
   as paper, by the rise at its edges.
3. Flatten the light (``flatten_light``): each channel is divided by a smooth estimate of the
   paper under the ink (a closing lifts the traces and grid lines to the paper's level, a blur
   smooths it), so gradients, shadows and the tint go and the paper is white again.
4. Put the traces where they belong (``_grid_box_correction``): the pink outline printed around
   the grid is found near its place and the page warped once more so that it lies where it does
   on the reference. The page's outline alone places the traces to a per cent or so, less well
   where a margin is cut off and its size only estimated; the leads are read at fixed places.

An image whose page fills it (a scan, or a photo cropped to the page) is left as it is.

A page that runs off the photo (``cut_sides``: a side of its outline lies on the photo's edge) is
placed where its visible part belongs: how much is missing is estimated from the page's aspect
ratio and the sides that are whole. A cut within the margin (the header, say) leaves the traces
to read; a cut through the trace area, or across two sides, makes the page unreadable
(``Rectification.unreadable`` says why), which the upload guard reports as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
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
SIDES = ("top", "right", "bottom", "left")  # of the outline, from corners[i] to corners[i + 1]
# What each side's margin holds before the grid box begins (fractions of the page).
MARGINS = dict(
    zip(
        SIDES,
        (
            layout.TRACE_BOX_FRACTIONS[1],
            1 - layout.TRACE_BOX_FRACTIONS[2],
            1 - layout.TRACE_BOX_FRACTIONS[3],
            layout.TRACE_BOX_FRACTIONS[0],
        ),
        strict=True,
    )
)
# How far an estimate of the missing part may overshoot a margin (perspective makes the page's
# sides differ in length by several per cent) before the cut counts as through the traces.
CUT_TOLERANCE = 0.05
CUT_EDGE_FRACTION = 0.02  # a side this close to the photo's edge (of its width or height) is cut
PAPER_FILL = (255, 255, 255)  # what stands in for a cut-off margin
# Grey levels: the screen around a page shown on it is plain (9-16 on the project's screen photos);
# a page's own margins, shadows and traces inside the first outline vary more (over 22).
SCREEN_BORDER_MAX_STD = 18.0
SCREEN_BEZEL_SLIVER = 0.005  # of the straightened screen's size, left out of the border's spread
# The page inside has the page's proportions; the first outline's perspective and the screen's
# shape leave them within this of 1200/852 (1.29-1.45 on the project's screen photos).
SCREEN_PAGE_ASPECT_TOLERANCE = 0.15
# A screen nearly as light as the paper (175-236 grey on the project's screen photos): the page's
# sides are looked for within this much of the straightened screen (the screen is 1.03-1.15 times
# the page), as a rise of at least SCREEN_EDGE_MIN_RISE grey levels across 2 x this many pixels,
# along each side.
SCREEN_MAX_MARGIN = 0.15
SCREEN_EDGE_DIFFERENCE_PX = 2
SCREEN_EDGE_MIN_RISE = 6.0
SCREEN_EDGE_SPAN = (0.15, 0.85)  # of each side's length, in SCREEN_EDGE_STRETCHES equal stretches
SCREEN_EDGE_STRETCHES = 5
SCREEN_EDGE_AGREEMENT_PX = 4.0  # from the line through most stretches: a stretch that found the side
SCREEN_BEZEL_LEVEL = 0.5  # of the band's median brightness: darker is the bezel (the screen is over 0.65)
# The centre line of the pink outline printed around the grid on the reference page (left, top,
# right, bottom), as measured on the development scans (within 0.3 px on every one tried). It is
# looked for within GRID_SEARCH_PX of its place, at GRID_STRETCHES stretches along each side
# (within GRID_SPAN of its length): a line at least GRID_MIN_PINK (red less green, grey levels)
# and GRID_MIN_CONTRAST times the stretch's median, within GRID_AGREEMENT_PX of a line through
# most stretches.
GRID_OUTLINE = np.array([37.3, 154.0, 1178.5, 821.4])
GRID_SEARCH_PX = 70
GRID_SPAN = (0.2, 0.8)
GRID_STRETCHES = 5
GRID_MIN_PINK = 5.0
GRID_MIN_CONTRAST = 3.0
GRID_AGREEMENT_PX = 4.0
GRID_PEAK_HALF_WIDTH = 8  # the blurred line's half width at most
GRID_LINE_CLEARANCE = 12  # this far from the line, either side, the paper is plain
GRID_EDGE_PX = 6
GRID_MAX_SIDES_MISSING = 1  # a side not found stays where the page's outline put it
# Ink on a scan is near black; on a photo it is grey and blurred. Levels up to INK_KNEE are
# stretched so that the darkest ink (INK_PERCENTILE of the page) becomes black; paper and grid,
# lighter than the knee, stay as they are.
INK_PERCENTILE = 1.0
INK_KNEE = 200.0
# A shadow that hides a corner of the page: the page's sides are the hull's long edges within this
# of the first outline's sides, and the corner they meet at lies within this of the page's size.
SIDE_MAX_TILT_DEGREES = 12.0
MAX_CORNER_SHIFT = 0.3
SIDE_MAX_DISTANCE = 0.25  # of the side's length, from the first outline's side to an edge of it


class Rectification(NamedTuple):
    """The page to read and where it was found: ``corners`` (4x2, x and y in the photo's pixels,
    clockwise from the top left) is None when the image was left as it is. ``cut_sides`` names
    the sides of the page that run off the photo; ``unreadable`` is why the page cannot be read
    (None when it can)."""

    image: Image.Image
    corners: np.ndarray | None
    cut_sides: tuple[str, ...] = ()
    unreadable: str | None = None


def rectify(image: Image.Image) -> Rectification:
    """The page of a photographed printout, straightened and evenly lit at the reference size;
    an image that is already the page (a scan) comes back unchanged."""
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    corners = find_page(rgb)
    if corners is None:
        return Rectification(image, None)
    width, height = layout.REFERENCE_WIDTH, layout.REFERENCE_HEIGHT
    cut = cut_sides(corners, rgb.shape[1], rgb.shape[0])
    unreadable = None
    # Where the outline's corners go on the reference page: its corners, unless a side is cut.
    left, top, right, bottom = 0.0, 0.0, 1.0, 1.0
    if len(cut) > 1:
        unreadable = f"the page runs off the photo on {len(cut)} sides"
    elif cut:
        side = cut[0]
        missing = missing_fraction(corners, side)
        if missing > MARGINS[side] + CUT_TOLERANCE:
            unreadable = f"the photo cuts off the {side} of the page, through the traces"
        left, top, right, bottom = {
            "top": (0.0, missing, 1.0, 1.0),
            "right": (0.0, 0.0, 1.0 - missing, 1.0),
            "bottom": (0.0, 0.0, 1.0, 1.0 - missing),
            "left": (missing, 0.0, 1.0, 1.0),
        }[side]
    target = box_corners(left * (width - 1), top * (height - 1), right * (width - 1), bottom * (height - 1))
    target = target.astype(np.float32)
    transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    # A cut-off margin is blank paper; elsewhere the photo's edge pixels stand in for the few
    # outside it that the outline's corners may reach.
    border = (
        {"borderMode": cv2.BORDER_CONSTANT, "borderValue": PAPER_FILL}
        if cut
        else {"borderMode": cv2.BORDER_REPLICATE}
    )

    def straightened(transform: np.ndarray) -> np.ndarray:
        """The page read from the photo itself, at full resolution, through ``transform``."""
        return cv2.warpPerspective(rgb, transform, (width, height), flags=cv2.INTER_LINEAR, **border)

    page = straightened(transform)
    if not cut:
        # A page shown on a screen: the bright region was the screen, the page lies inside it on a
        # plain border. Found there, it is read again from the photo itself.
        inner = _page_on_screen(page)
        if inner is not None:
            corners = cv2.perspectiveTransform(inner.reshape(1, 4, 2), np.linalg.inv(transform)).reshape(4, 2)
            transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
            page = straightened(transform)
    flat = flatten_light(page)
    # The outline's corners place the page to within a per cent or so, less well where a margin
    # is cut off and its size only estimated: the printed grid box puts the traces where they
    # belong.
    correction = _grid_box_correction(flat)
    if correction is not None:
        flat = flatten_light(straightened(correction @ transform))
    return Rectification(Image.fromarray(darken_ink(flat)), corners, cut, unreadable)


def _grid_box_correction(page: np.ndarray) -> np.ndarray | None:
    """The perspective transform (3x3) that moves the grid box printed on ``page`` (a straightened,
    flattened page at the reference size) onto the reference's, or None where its outline is
    missing on more than ``GRID_MAX_SIDES_MISSING`` sides (a missing side stays where it is). The
    outline is the pink line around the grid; each side is the
    strongest pink line within ``GRID_SEARCH_PX`` of its place on the reference, found at several
    stretches along the side; where most agree, a line through them is the side."""
    red, green = page[:, :, 0].astype(np.float32), page[:, :, 1].astype(np.float32)
    pink = np.maximum(red - green, 0.0)
    expected = dict(zip(("left", "top", "right", "bottom"), GRID_OUTLINE, strict=True))
    lines, missing = [], []
    for side in SIDES:
        crosswise = pink.T if side in ("left", "right") else pink  # rows run across the side
        depth, extent = crosswise.shape
        # Not at the page's edge: a coloured desk left along it is pink too.
        low = max(GRID_EDGE_PX, round(expected[side]) - GRID_SEARCH_PX)
        high = min(depth - GRID_EDGE_PX, round(expected[side]) + GRID_SEARCH_PX + 1)
        bounds = np.linspace(*GRID_SPAN, GRID_STRETCHES + 1) * extent
        found = np.full(GRID_STRETCHES, np.nan)
        for index, (first, last) in enumerate(pairwise(bounds)):
            profile = crosswise[low:high, round(first) : round(last)].mean(axis=1)
            peak = int(np.argmax(profile))
            if profile[peak] < GRID_MIN_PINK or profile[peak] < GRID_MIN_CONTRAST * float(np.median(profile)):
                continue
            # A line, paper on both sides of it; not a band of colour reaching further.
            outside = [
                i for i in (peak - GRID_LINE_CLEARANCE, peak + GRID_LINE_CLEARANCE) if 0 <= i < len(profile)
            ]
            if max(profile[outside]) > profile[peak] / 2:
                continue
            # The line's centre: the centroid of the peak above half its height.
            near = np.arange(
                max(0, peak - GRID_PEAK_HALF_WIDTH), min(len(profile), peak + GRID_PEAK_HALF_WIDTH + 1)
            )
            weights = np.maximum(profile[near] - profile[peak] / 2, 0.0)
            found[index] = low + float(np.dot(near, weights) / weights.sum())
        along = (bounds[:-1] + bounds[1:]) / 2
        fitted = _line_through_most(along, found, GRID_AGREEMENT_PX)
        if fitted is None:
            missing.append(side)
            fitted = (0.0, float(expected[side]))  # where the page is placed now: not moved
        lines.append(_side_line(side, along, *fitted))
    found_box = _corners_of(lines)
    if len(missing) > GRID_MAX_SIDES_MISSING or found_box is None:
        return None
    reference_box = box_corners(*GRID_OUTLINE).astype(np.float32)
    return cv2.getPerspectiveTransform(found_box.astype(np.float32), reference_box).astype(np.float64)


def _line_through_most(along: np.ndarray, across: np.ndarray, tolerance: float) -> tuple[float, float] | None:
    """(slope, offset) of the line ``across = offset + slope * along`` through more than half of
    the points (NaN where none was found), each within ``tolerance``; None when there is no such
    line. The point furthest from the line through those left is dropped until all fit."""
    keep = ~np.isnan(across)
    while keep.sum() * 2 > len(across):
        slope, offset = np.polyfit(along[keep], across[keep], 1)
        residuals = np.where(keep, np.abs(across - (offset + slope * along)), -1.0)
        worst = int(np.argmax(residuals))
        if residuals[worst] <= tolerance:
            return float(slope), float(offset)
        keep[worst] = False
    return None


def _side_line(side: str, along: np.ndarray, slope: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """A side of an upright quadrilateral, ``across = offset + slope * along`` (``along`` runs
    along the side: x for the top and bottom, y for the left and right), as a point on it and its
    unit direction, over the span of ``along``."""
    ends_along = along[[0, -1]]
    ends_across = offset + slope * ends_along
    ends = np.stack(
        [ends_across, ends_along] if side in ("left", "right") else [ends_along, ends_across], axis=1
    )
    direction = ends[1] - ends[0]
    return ends[0], direction / float(np.hypot(*direction))


def _corners_of(lines: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Where the sides (top, right, bottom, left) meet, clockwise from the top left; None if two
    adjacent sides are parallel."""
    top, right, bottom, left = lines
    corners = [_intersection(*pair) for pair in ((left, top), (top, right), (right, bottom), (bottom, left))]
    if any(corner is None for corner in corners):
        return None
    return np.array(corners, np.float64)


def box_corners(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    """The corners of a box, clockwise from the top left, as a float64 (4, 2) array."""
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float64)


def _page_on_screen(page: np.ndarray) -> np.ndarray | None:
    """The corners of a page inside ``page`` (a straightened screen), or None: a brighter
    quadrilateral of about a page's proportions on a plain border (a page's own margin or shadow
    is not plain, and a patch of it seldom has the page's proportions). It is looked for as the
    bright region on a darker screen, then as the rise from a screen nearly as light as paper."""
    grey = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)
    aspect = layout.REFERENCE_WIDTH / layout.REFERENCE_HEIGHT
    for find in (lambda: find_page(page, extend_sides=False), lambda: _light_screen_page(grey)):
        inner = find()
        if inner is None:
            continue
        top, right, bottom, left = np.linalg.norm(np.roll(inner, -1, axis=0) - inner, axis=1)
        if abs((top + bottom) / (left + right) - aspect) > SCREEN_PAGE_ASPECT_TOLERANCE:
            continue
        inside = np.zeros(grey.shape, np.uint8)
        cv2.fillConvexPoly(inside, np.round(inner).astype(np.int32), 1)
        # The straightened screen's outermost pixels may hold a sliver of the bezel: not the screen.
        edge = max(1, round(SCREEN_BEZEL_SLIVER * min(grey.shape)))
        border = grey[edge:-edge, edge:-edge][inside[edge:-edge, edge:-edge] == 0]
        if border.size and float(border.std()) <= SCREEN_BORDER_MAX_STD:
            return inner
    return None


def _light_screen_page(grey: np.ndarray) -> np.ndarray | None:
    """The corners of a page shown on a screen nearly as light as the paper, inside ``grey`` (the
    straightened screen), or None. Page and screen lie in one plane, so the page is upright in the
    straightened screen: each side is found as the first rise in brightness from the screen into
    the page, at several stretches along it; where most agree, a line through them is the side
    (moiré fools a few). The corners are where the four sides meet."""
    grey = grey.astype(np.float32)
    reach = SCREEN_EDGE_DIFFERENCE_PX
    lines = []
    for side in SIDES:  # top, right, bottom, left, as _corners_of takes them
        # Brightness profiles running from the screen's edge inwards, one per stretch along it.
        crosswise = grey.T if side in ("left", "right") else grey
        if side in ("right", "bottom"):
            crosswise = crosswise[::-1]
        depth, extent = crosswise.shape
        band = max(2 * reach + 2, round(SCREEN_MAX_MARGIN * depth))
        bounds = np.linspace(*SCREEN_EDGE_SPAN, SCREEN_EDGE_STRETCHES + 1) * extent
        found = np.array([_first_rise(crosswise[:band, round(a) : round(b)]) for a, b in pairwise(bounds)])
        if side in ("right", "bottom"):
            found = depth - found
        along = (bounds[:-1] + bounds[1:]) / 2
        fitted = _line_through_most(along, found, SCREEN_EDGE_AGREEMENT_PX)
        if fitted is None:
            return None
        lines.append(_side_line(side, along, *fitted))
    return _corners_of(lines)


def _first_rise(band: np.ndarray) -> float:
    """Where, along the rows of ``band`` (the screen's edge at row 0), brightness first rises by
    ``SCREEN_EDGE_MIN_RISE`` past the bezel (in pixel-edge coordinates), or NaN: the first rise, not
    the steepest, for beyond the page's edge the ink falls and rises again."""
    reach = SCREEN_EDGE_DIFFERENCE_PX
    profile = np.median(band, axis=1)
    rise = profile[2 * reach :] - profile[: -2 * reach]
    # The straightened screen may keep a sliver of the dark bezel at its edge: skip it, and the
    # rise from it to the screen.
    bezel = int(np.argmax(profile >= SCREEN_BEZEL_LEVEL * float(np.median(profile))))
    while bezel < len(rise) and rise[bezel] >= SCREEN_EDGE_MIN_RISE:
        bezel += 1
    rise[:bezel] = 0.0
    rising = np.flatnonzero(rise >= SCREEN_EDGE_MIN_RISE)
    # A fall before it is ink: the page reaches the screen's edge here, and the rise is inside it.
    if rising.size == 0 or (rise[: rising[0]] <= -SCREEN_EDGE_MIN_RISE).any():
        return float("nan")
    run = rising[: int(np.argmax(np.diff(np.append(rising, rising[-1] + 2)) > 1)) + 1]
    return float(run[np.argmax(rise[run])]) + reach + 0.5  # the rise is centred between two pixels


def cut_sides(corners: np.ndarray, width: int, height: int) -> tuple[str, ...]:
    """The sides of the outline ``corners`` that lie along the edge of a ``width`` x ``height``
    photo: there the page goes on beyond the photo."""
    # The outline is traced on a smaller copy and its corners simplified, so a side along the edge
    # lies up to about a per cent inside it. Flagging a real edge that close costs nothing: the
    # estimate then finds no part of the page missing.
    sides = []
    for name, start, end in zip(SIDES, corners, np.roll(corners, -1, axis=0), strict=True):
        for axis, edge in ((0, 0.0), (0, width - 1.0), (1, 0.0), (1, height - 1.0)):
            tolerance = CUT_EDGE_FRACTION * (width, height)[axis]
            if abs(start[axis] - edge) <= tolerance and abs(end[axis] - edge) <= tolerance:
                sides.append(name)
                break
    return tuple(sides)


def missing_fraction(corners: np.ndarray, side: str) -> float:
    """How much of the page (a fraction of its height for the top or bottom, of its width for a
    side) lies beyond the cut ``side`` of the outline ``corners``, judged by the page's aspect
    ratio against the whole sides: 0 when none is missing."""
    top, right, bottom, left = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    aspect = layout.REFERENCE_WIDTH / layout.REFERENCE_HEIGHT
    visible = {
        # The visible height over the height the whole opposite side implies, and so on.
        "top": (left + right) / 2 / (bottom / aspect),
        "bottom": (left + right) / 2 / (top / aspect),
        "left": (top + bottom) / 2 / (right * aspect),
        "right": (top + bottom) / 2 / (left * aspect),
    }[side]
    return float(np.clip(1.0 - visible, 0.0, 0.95))


def find_page(rgb: np.ndarray, *, extend_sides: bool = True) -> np.ndarray | None:
    """The corners (4x2 float, clockwise from the top left, in ``rgb``'s pixels) of the largest
    bright quadrilateral in ``rgb`` (H x W x 3 uint8); None when no region is large enough, or
    when it fills the image (the image is the page). With ``extend_sides``, a corner hidden by a
    shadow is found where the page's sides meet (``_sides_extended``)."""
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
    hull = cv2.convexHull(largest)
    corners = _clockwise(_four_corners(hull))
    # A region running off the image is a page cut by the photo's edge, its outline straight there.
    inside = (
        hull.min() > 1
        and (hull[:, 0, 0].max() < small.shape[1] - 2)
        and (hull[:, 0, 1].max() < small.shape[0] - 2)
    )
    if extend_sides and inside:
        corners = _sides_extended(hull, corners)
    corners = corners * factor
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


def darken_ink(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` (a flattened page) with its darkest ink brought to black as on a scan: each level
    below ``INK_KNEE`` is stretched away from the knee, so the page's ``INK_PERCENTILE`` of grey
    maps to 0; lighter levels (paper and grid) are unchanged."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    darkest = float(np.percentile(grey[::2, ::2], INK_PERCENTILE))
    if darkest >= INK_KNEE - 1:
        return rgb
    levels = np.arange(256, dtype=np.float32)
    stretched = INK_KNEE - (INK_KNEE - levels) * INK_KNEE / (INK_KNEE - darkest)
    table = np.clip(np.where(levels < INK_KNEE, stretched, levels) + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(rgb, table)


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


def _sides_extended(hull: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """``corners`` (clockwise, of ``hull``) replaced by where the page's sides meet when a shadow
    hides a corner: the bright region then lacks it, and its hull cuts across it with a slanted
    chord. Each side of the page is the hull's longest edge near that side's direction (within
    ``SIDE_MAX_TILT_DEGREES`` of the side through ``corners``); the corners are where those edges'
    lines meet. A corner that moves further than ``MAX_CORNER_SHIFT`` of the page's size, or a side
    without such an edge, keeps ``corners``."""
    polygon = (
        cv2.approxPolyDP(hull, 0.004 * cv2.arcLength(hull, True), True).reshape(-1, 2).astype(np.float64)
    )
    starts, ends = polygon, np.roll(polygon, -1, axis=0)
    edges = ends - starts
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    lines = []
    for start, end in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        side = end - start
        cosine = np.abs(edges @ side) / np.maximum(lengths * float(np.hypot(*side)), 1e-9)
        # Near the side: both ends nearer its line than the opposite side is (over half its length).
        normal = np.array([side[1], -side[0]]) / max(float(np.hypot(*side)), 1e-9)
        near = np.maximum(np.abs((starts - start) @ normal), np.abs((ends - start) @ normal))
        fits = (cosine >= np.cos(np.radians(SIDE_MAX_TILT_DEGREES))) & (
            near <= SIDE_MAX_DISTANCE * float(np.hypot(*side))
        )
        if not fits.any():
            return corners
        longest = int(np.argmax(np.where(fits, lengths, 0.0)))
        lines.append((starts[longest], edges[longest] / lengths[longest]))
    extended = corners.copy()
    size = max(np.ptp(corners[:, 0]), np.ptp(corners[:, 1]))
    for index in range(4):
        meeting = _intersection(lines[index - 1], lines[index])
        if meeting is None or np.hypot(*(meeting - corners[index])) > MAX_CORNER_SHIFT * size:
            return corners
        extended[index] = meeting
    return extended


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
