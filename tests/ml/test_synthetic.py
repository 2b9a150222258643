"""The synthetic page generator used by tests and demos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml import layout
from ml.labels import CLASSES
from ml.synthetic import render_ecg


def test_it_is_deterministic_for_a_seed() -> None:
    first = np.asarray(render_ecg("abnormal", seed=11))
    second = np.asarray(render_ecg("abnormal", seed=11))
    assert np.array_equal(first, second)


def test_different_seeds_give_different_pages() -> None:
    assert not np.array_equal(
        np.asarray(render_ecg("normal", seed=1)), np.asarray(render_ecg("normal", seed=2))
    )


@pytest.mark.parametrize("label", CLASSES)
def test_it_draws_every_class_at_the_reference_size(label: str) -> None:
    image = render_ecg(label, seed=0)
    assert image.size == (layout.REFERENCE_WIDTH, layout.REFERENCE_HEIGHT)
    assert image.mode == "RGB"


def test_it_honours_a_custom_size() -> None:
    assert render_ecg("mi", seed=0, width=800, height=568).size == (800, 568)


def test_the_grid_is_pink_and_the_margins_white() -> None:
    pixels = np.asarray(render_ecg("normal", seed=4)).astype(int)
    grid = pixels[layout.GRID_TOP + 2 : layout.GRID_BOTTOM - 2, layout.GRID_LEFT + 2 : layout.GRID_RIGHT - 2]
    pink = (grid[..., 0] > 200) & (grid[..., 0] - grid[..., 1] > 20) & (grid[..., 0] - grid[..., 2] > 20)
    assert 0.1 < pink.mean() < 0.6  # grid lines cover part, not all, of the box
    assert (pixels[5, 5] == 255).all()  # page corner outside the grid is white paper


def test_trace_ink_sits_on_the_lead_baselines() -> None:
    pixels = np.asarray(render_ecg("normal", seed=5)).astype(int)
    dark = pixels.max(axis=2) < 100
    for baseline in layout.ROW_BASELINES:
        band = dark[baseline - 30 : baseline + 30, layout.COLUMN_EDGES[0] : layout.COLUMN_EDGES[-1]]
        assert band.any(axis=0).mean() > 0.9  # a trace crosses almost every column


def test_header_text_does_not_depend_on_the_label() -> None:
    normal = np.asarray(render_ecg("normal", seed=9))
    mi = np.asarray(render_ecg("mi", seed=9))
    assert np.array_equal(normal[: layout.GRID_TOP - 5], mi[: layout.GRID_TOP - 5])
    assert not np.array_equal(normal, mi)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "stemi", "seed": 0}, "Unknown label"),
        ({"label": "mi", "seed": -1}, "'seed'"),
        ({"label": "mi", "seed": 0, "width": 10}, "'width'"),
    ],
)
def test_it_validates_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_ecg(**kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_command_line_writes_per_class_folders(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml.synthetic", "--out", str(tmp_path), "--per-class", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert files == sorted(f"{label}/{label}_0.png" for label in CLASSES)
    assert "wrote 4 images" in result.stdout
    assert Image.open(tmp_path / "mi" / "mi_0.png").size == (1200, 852)
