"""Small charts as inline SVG strings, drawn on the server: no JavaScript, nothing fetched.

Each function takes plain numbers and names and returns one ``<svg>`` element. Every piece
of text is escaped here, so a caller may mark the result safe. Missing numbers (None) are
drawn as "n/a", never as zero. Output is deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
FONT = 'font-family="sans-serif" font-size="11"'


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}" {FONT}>'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, value: object, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(value)}</text>'


def _unit_axis(left: float, top: float, width: float, height: float) -> list[str]:
    """Vertical grid lines and labels at 0, 0.25, ..., 1 under a horizontal 0..1 scale."""
    parts = []
    for step in range(5):
        x = left + width * step / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{top + height:.1f}" stroke="#ddd"/>'
        )
        parts.append(_text(x, top + height + 12, f"{step / 4:.2f}", "middle"))
    return parts


@dataclass(frozen=True)
class IntervalItem:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


def interval_chart(items: Sequence[IntervalItem], title: str) -> str:
    """Horizontal bars on a 0..1 scale, one per item, with whiskers from low to high."""
    label_width, plot_width, row_height, top = 150, 360, 26, 8
    height = top + row_height * max(len(items), 1) + 22
    body = _unit_axis(label_width, top, plot_width, row_height * max(len(items), 1))
    for index, item in enumerate(items):
        y = top + index * row_height
        middle = y + row_height / 2
        body.append(_text(label_width - 6, middle + 4, item.label, "end"))
        if item.value is None:
            body.append(_text(label_width + 4, middle + 4, "n/a", extra=' fill="#777"'))
            continue
        bar = plot_width * min(max(item.value, 0.0), 1.0)
        body.append(
            f'<rect x="{label_width}" y="{y + 6:.1f}" width="{bar:.1f}" height="{row_height - 12}" '
            f'fill="{colour(index)}" fill-opacity="0.6"/>'
        )
        if item.low is not None and item.high is not None:
            x_low = label_width + plot_width * min(max(item.low, 0.0), 1.0)
            x_high = label_width + plot_width * min(max(item.high, 0.0), 1.0)
            body.append(
                f'<path d="M{x_low:.1f} {middle:.1f}H{x_high:.1f}'
                f"M{x_low:.1f} {y + 8:.1f}V{y + row_height - 8:.1f}"
                f'M{x_high:.1f} {y + 8:.1f}V{y + row_height - 8:.1f}" stroke="#222" fill="none"/>'
            )
            label = f"{item.value:.3f} [{item.low:.3f}, {item.high:.3f}]"
        else:
            label = f"{item.value:.3f}"
        body.append(_text(label_width + plot_width + 6, middle + 4, label))
    return _svg(label_width + plot_width + 150, height, title, body)


def grouped_bar_chart(
    groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], title: str
) -> str:
    """Vertical bars on a 0..1 scale: one group per entry of `groups`, one bar per series in each."""
    bar_width, gap, left, top, plot_height = 14, 18, 36, 10, 160
    group_width = bar_width * max(len(series), 1) + gap
    plot_width = group_width * max(len(groups), 1)
    body = []
    for step in range(5):
        y = top + plot_height * (1 - step / 4)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_text(left - 4, y + 4, f"{step / 4:.2f}", "end"))
    for group_index, group in enumerate(groups):
        x0 = left + group_index * group_width + gap / 2
        for series_index, (name, values) in enumerate(series):
            value = values[group_index] if group_index < len(values) else None
            x = x0 + series_index * bar_width
            if value is None:
                body.append(
                    _text(
                        x + bar_width / 2,
                        top + plot_height - 3,
                        "n/a",
                        "middle",
                        ' fill="#777" font-size="8"',
                    )
                )
                continue
            bar = plot_height * min(max(value, 0.0), 1.0)
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_height - bar:.1f}" width="{bar_width - 2}" '
                f'height="{bar:.1f}" fill="{colour(series_index)}">'
                f"<title>{escape(name)}, {escape(group)}: {value:.3f}</title></rect>"
            )
        body.append(_text(x0 + (group_width - gap) / 2, top + plot_height + 14, group, "middle"))
    legend_top = top + plot_height + 28
    for series_index, (name, _) in enumerate(series):
        y = legend_top + series_index * 16
        body.append(f'<rect x="{left}" y="{y}" width="10" height="10" fill="{colour(series_index)}"/>')
        body.append(_text(left + 16, y + 9, name))
    height = legend_top + 16 * len(series) + 4
    return _svg(max(left + plot_width + 10, 260), height, title, body)


def confusion_heatmap(classes: Sequence[str], counts: Sequence[Sequence[int]], title: str) -> str:
    """Counts in a rows-true, columns-predicted grid, shaded by each row's share (row-normalised)."""
    cell, left, top = 44, 84, 40
    size = len(classes)
    body = [_text(left + cell * size / 2, 12, "predicted", "middle", ' fill="#555"')]
    body.append(_text(4, top - 6, "true", extra=' fill="#555"'))
    for column, name in enumerate(classes):
        body.append(_text(left + column * cell + cell / 2, top - 6, _short(name), "middle"))
    for row, name in enumerate(classes):
        row_counts = list(counts[row]) if row < len(counts) else []
        total = sum(row_counts)
        y = top + row * cell
        body.append(_text(left - 6, y + cell / 2 + 4, _short(name), "end"))
        for column in range(size):
            count = row_counts[column] if column < len(row_counts) else 0
            share = count / total if total else 0.0
            x = left + column * cell
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#2f5f98" '
                f'fill-opacity="{share:.3f}" stroke="#fff"><title>true {escape(name)}, predicted '
                f"{escape(classes[column])}: {count} ({share:.0%} of the row)</title></rect>"
            )
            fill = "#fff" if share > 0.55 else "#222"
            body.append(_text(x + cell / 2, y + cell / 2 + 4, count, "middle", f' fill="{fill}"'))
    return _svg(left + cell * size + 8, top + cell * size + 8, title, body)


def _short(name: str) -> str:
    return {"history_mi": "hist. MI", "abnormal": "abnorm."}.get(name, name)


@dataclass(frozen=True)
class ReliabilitySeries:
    name: str
    bins: Sequence[dict[str, float]]  # low, high, count, accuracy, confidence (ml.metrics)


def reliability_diagram(series: Sequence[ReliabilitySeries], title: str) -> str:
    """Accuracy against mean confidence per non-empty bin, one line per series, and the diagonal."""
    left, top, size = 40, 10, 200
    body = []
    for step in range(5):
        offset = size * step / 4
        body.append(
            f'<line x1="{left}" y1="{top + size - offset:.1f}" x2="{left + size}" '
            f'y2="{top + size - offset:.1f}" stroke="#eee"/>'
        )
        body.append(_text(left - 4, top + size - offset + 4, f"{step / 4:.2f}", "end"))
        body.append(_text(left + offset, top + size + 12, f"{step / 4:.2f}", "middle"))
    body.append(
        f'<line x1="{left}" y1="{top + size}" x2="{left + size}" y2="{top}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    )
    body.append(_text(left + size / 2, top + size + 26, "confidence", "middle", ' fill="#555"'))
    for index, line in enumerate(series):
        points = [
            (left + size * row["confidence"], top + size * (1 - row["accuracy"]), row)
            for row in line.bins
            if row.get("count", 0) > 0
        ]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour(index)}" stroke-width="1.5"/>')
        for x, y, row in points:
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour(index)}"><title>{escape(line.name)}: '
                f"confidence {row['confidence']:.2f}, accuracy {row['accuracy']:.2f}, "
                f"{int(row['count'])} images</title></circle>"
            )
    legend_top = top + size + 36
    for index, line in enumerate(series):
        y = legend_top + index * 16
        body.append(f'<rect x="{left}" y="{y}" width="10" height="10" fill="{colour(index)}"/>')
        body.append(_text(left + 16, y + 9, line.name))
    if not any(row.get("count", 0) > 0 for line in series for row in line.bins):
        body.append(_text(left + size / 2, top + size / 2, "no calibration bins", "middle", ' fill="#777"'))
    return _svg(left + size + 20, legend_top + 16 * len(series) + 4, title, body)


def bar_chart(items: Sequence[tuple[str, float | None]], title: str, unit: str = "") -> str:
    """Horizontal bars scaled to the largest value, with each value printed beside its bar."""
    label_width, plot_width, row_height, top = 150, 300, 24, 6
    known = [value for _, value in items if value is not None and value > 0]
    largest = max(known) if known else 1.0
    body = []
    for index, (label, value) in enumerate(items):
        y = top + index * row_height
        body.append(_text(label_width - 6, y + row_height / 2 + 4, label, "end"))
        if value is None:
            body.append(_text(label_width + 4, y + row_height / 2 + 4, "n/a", extra=' fill="#777"'))
            continue
        bar = plot_width * max(value, 0.0) / largest
        body.append(
            f'<rect x="{label_width}" y="{y + 5}" width="{bar:.1f}" height="{row_height - 10}" '
            f'fill="{colour(index)}" fill-opacity="0.7"/>'
        )
        body.append(_text(label_width + bar + 6, y + row_height / 2 + 4, f"{value:.1f}{unit}"))
    return _svg(label_width + plot_width + 90, top + row_height * max(len(items), 1) + 6, title, body)


# The twelve leads as printed: 25 mm/s and 10 mm/mV on paper, so a second is 2.5 times as wide
# as a millivolt is tall; one big box of the grid is 0.2 s by 0.5 mV.
ECG_PX_PER_S = 80.0
ECG_PX_PER_MV = ECG_PX_PER_S / 2.5
ECG_ROW_MV = 3.5  # each row's height; a taller wave is cut at the row's edge, as overlapping ink
ECG_GRID = "#f4c2cb"
ECG_INK = "#1d2430"


def twelve_lead_chart(
    rows: Sequence[Sequence[str]],
    leads: dict[str, Sequence[float]],
    start_s: dict[str, float],
    rhythm: tuple[str, Sequence[float]],
    fs: float,
    title: str,
) -> str:
    """An ECG printout redrawn: ``rows`` of lead names (each lead from its ``start_s``, in mV at
    ``fs`` samples per second), then the ``rhythm`` strip (name, mV) under them, on a grid of
    0.2 s by 0.5 mV boxes. A lead missing from ``leads`` leaves its panel empty."""
    margin = 6
    rhythm_name, rhythm_values = rhythm
    seconds = max(len(rhythm_values) / fs if fs else 0.0, 0.1)
    width = seconds * ECG_PX_PER_S
    row_height = ECG_ROW_MV * ECG_PX_PER_MV
    strips = [*rows, [rhythm_name]]
    height = row_height * len(strips)
    grid = []
    for step in range(int(seconds / 0.2 + 1e-6) + 1):
        x = margin + step * 0.2 * ECG_PX_PER_S
        grid.append(f"M{x:.1f} {margin}V{margin + height:.1f}")
    for step in range(int(len(strips) * ECG_ROW_MV / 0.5 + 1e-6) + 1):
        y = margin + step * 0.5 * ECG_PX_PER_MV
        grid.append(f"M{margin} {y:.1f}H{margin + width:.1f}")
    body = [
        f'<rect width="{width + 2 * margin:.0f}" height="{height + 2 * margin:.0f}" fill="#fff"/>',
        f'<path d="{"".join(grid)}" stroke="{ECG_GRID}" stroke-width="0.6" fill="none"/>',
    ]

    def trace(values: Sequence[float], start: float, top: float) -> str:
        baseline = top + row_height / 2
        low, high = top + 1, top + row_height - 1  # clipped to its own row
        points = " ".join(
            f"{margin + (start + index / fs) * ECG_PX_PER_S:.1f},"
            f"{min(max(baseline - value * ECG_PX_PER_MV, low), high):.1f}"
            for index, value in enumerate(values)
        )
        return (
            f'<polyline points="{points}" fill="none" stroke="{ECG_INK}" stroke-width="1.1" '
            'stroke-linejoin="round"/>'
        )

    for row_index, names in enumerate(strips):
        top = margin + row_index * row_height
        is_rhythm = row_index == len(strips) - 1
        for name in names:
            values = rhythm_values if is_rhythm else leads.get(name)
            start = 0.0 if is_rhythm else start_s.get(name, 0.0)
            x = margin + start * ECG_PX_PER_S
            if not is_rhythm and start > 0:
                # The printed separator between two panels.
                body.append(
                    f'<path d="M{x:.1f} {top + row_height * 0.3:.1f}V{top + row_height * 0.7:.1f}" '
                    f'stroke="{ECG_INK}" stroke-width="1"/>'
                )
            if values:
                body.append(trace(values, start, top))
            body.append(_text(x + 4, top + 13, name, extra=' font-weight="bold"'))
    return _svg(width + 2 * margin, height + 2 * margin, title, body)
