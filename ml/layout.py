"""Page geometry of the printed 12-lead ECG reports, measured on the khan-ecg scans.

All positions are in pixels of the 1200x852 reference page; code that works on other
resolutions scales them proportionally (see ``scale_x``/``scale_y``). Shared by the
preprocessing crop and the synthetic page generator so the two always agree.
"""

from __future__ import annotations

REFERENCE_WIDTH = 1200
REFERENCE_HEIGHT = 852

# The pink grid box that holds all traces; above it is the printed header (title,
# patient fields, technician), below it the footer (filters, heart rate, speed, date).
GRID_LEFT = 37
GRID_TOP = 153
GRID_RIGHT = 1180
GRID_BOTTOM = 822

# Baselines of the three lead rows and the rhythm strip.
ROW_BASELINES: tuple[int, ...] = (252, 415, 577, 741)
# Borders of the four 2.5 s columns; the rhythm strip spans the first to the last.
COLUMN_EDGES: tuple[int, ...] = (82, 349, 616, 883, 1150)
PIXELS_PER_SECOND = 267 / 2.5  # 25 mm/s paper speed
PIXELS_PER_MV = 43.5  # 10 mm/mV gain
PIXELS_PER_MM = PIXELS_PER_SECOND / 25.0  # one small grid square, about 4.3 px

# Lead names per column (top to bottom); the rhythm strip shows lead II.
COLUMN_LEADS: tuple[tuple[str, str, str], ...] = (
    ("I", "II", "III"),
    ("aVR", "aVL", "aVF"),
    ("V1", "V2", "V3"),
    ("V4", "V5", "V6"),
)
RHYTHM_LEAD = "II"
# The twelve leads in the printout's order, column by column: I, II, III, aVR, ..., V6.
LEAD_NAMES: tuple[str, ...] = tuple(name for column in COLUMN_LEADS for name in column)

# Crop box of the trace area as fractions of the page (left, top, right, bottom): the grid
# box with a 1 px margin, so the crop works on any resolution of the same layout.
TRACE_BOX_FRACTIONS: tuple[float, float, float, float] = (
    (GRID_LEFT - 1) / REFERENCE_WIDTH,
    (GRID_TOP - 1) / REFERENCE_HEIGHT,
    (GRID_RIGHT + 2) / REFERENCE_WIDTH,
    (GRID_BOTTOM + 2) / REFERENCE_HEIGHT,
)


def scale_x(x: float, width: int) -> float:
    """Map a reference x coordinate onto a page ``width`` pixels wide."""
    return x * width / REFERENCE_WIDTH


def scale_y(y: float, height: int) -> float:
    """Map a reference y coordinate onto a page ``height`` pixels high."""
    return y * height / REFERENCE_HEIGHT
