"""bench.throughput without services or TensorFlow: the figures, the targets and the page they
make. The full run is `make bench`."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from bench.throughput import (
    checks,
    content_type,
    format_text,
    has_subsecond,
    load_images,
    peak_rss,
    ratio,
    read_images,
    render_markdown,
    run_figures,
    seconds_after,
    write_images,
)

MIB = 2**20


def bare_run(images_per_second: float, p50: float, p95: float, rss_mib: int) -> dict[str, Any]:
    return {
        "images_per_second": images_per_second,
        "p50_seconds": p50,
        "p95_seconds": p95,
        "peak_rss_bytes": [rss_mib * MIB],
    }


def service_run(images_per_second: float, workers: int, rss_mib: list[int]) -> dict[str, Any]:
    return {
        "images": 100,
        "seconds": 100 / images_per_second,
        "images_per_second": images_per_second,
        "p50_seconds": 6.5,
        "p95_seconds": 11.25,
        "upload_seconds": 1.25,
        "first_result_seconds": 2.0,
        "worker_span_seconds": 10.0,
        "inference_seconds": 7.5,
        "timing_source": "the jobs' finished timestamps in the database",
        "workers": workers,
        "tf_threads": 2 // workers,
        "peak_rss_bytes": [mib * MIB for mib in rss_mib],
        "peak_rss_sampled_bytes": [(mib - 10) * MIB for mib in rss_mib],
    }


FIGURES: dict[str, Any] = {
    "when": "2026-12-03T05:20:00+00:00",
    "file_name": "throughput-20261203T052000Z.json",
    "machine": {
        "cpu": "Example CPU @ 2.0GHz",
        "arch": "x86_64",
        "flags": ["avx2", "fma"],
        "cores": 2,
        "onednn": "off (TF_ENABLE_ONEDNN_OPTS=0)",
    },
    "model": "hybrid-v4",
    "images": {"count": 100, "source": "the first 100 dev images", "bytes": 18_000_000},
    "runs": {
        "a": bare_run(1.0, 50.0, 95.0, 500),
        "b": bare_run(10.0, 5.0, 9.5, 600),
        "c": service_run(8.0, 1, [700]),
        "d": service_run(12.0, 2, [650, 1100]),
    },
}


def figures(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(FIGURES)
    result.update(changes)
    return result


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"].split(" (")[0].split(",")[0]: row for row in rows}


def test_a_run_is_timed_to_its_last_result_with_nearest_rank_percentiles():
    seconds = [float(s) for s in range(20, 0, -1)]

    result = run_figures(seconds)

    assert result["images"] == 20 and result["seconds"] == 20.0
    assert result["images_per_second"] == 1.0
    assert result["p50_seconds"] == 10.0 and result["p95_seconds"] == 19.0


def test_a_run_with_no_results_is_refused():
    with pytest.raises(ValueError):
        run_figures([])


def test_finished_timestamps_become_seconds_after_the_post():
    start = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    stamps = ["2027-01-15T08:00:01.500000+00:00", "2027-01-15T08:00:03+00:00"]

    assert seconds_after(stamps, start) == [1.5, 3.0]
    assert has_subsecond(stamps)
    assert not has_subsecond(["2027-01-15T08:00:03+00:00", "2027-01-15T08:00:04+00:00"])


def test_ratios_are_of_images_per_second_and_absent_runs_give_none():
    assert ratio(FIGURES["runs"], "c", "b") == pytest.approx(0.8)
    assert ratio(FIGURES["runs"], "d", "c") == pytest.approx(1.5)
    assert ratio({"c": FIGURES["runs"]["c"]}, "c", "a") is None


def test_peak_rss_takes_the_larger_of_the_kernels_mark_and_the_sample():
    assert peak_rss({"peak_rss_bytes": [100, None], "peak_rss_sampled_bytes": [90, 120]}) == [100, 120]
    assert peak_rss({"peak_rss_bytes": [100]}) == [100]


def test_each_target_is_checked_against_the_measured_figures():
    rows = by_name(checks(FIGURES))

    assert rows["c / b"]["holds"] is True and rows["c / b"]["shown"] == "0.80"
    assert rows["c / a"]["holds"] is True and rows["c / a"]["target"] == "≥ 5"
    assert rows["d / c"]["holds"] is False and rows["d / c"]["shown"] == "1.50"
    # d's second worker went over 1 GB.
    assert rows["peak RSS per worker"]["holds"] is False
    assert rows["peak RSS per worker"]["value"] == 1100 * MIB
    assert rows["upload request"]["holds"] is True
    assert rows["upload request"]["shown"] == "c: 1.25 s, d: 1.25 s"


def test_targets_that_do_not_apply_are_neither_met_nor_missed():
    one_core = figures(machine={**FIGURES["machine"], "cores": 1})
    assert by_name(checks(one_core))["d / c"]["holds"] is None

    fifty = figures(images={**FIGURES["images"], "count": 50})
    assert by_name(checks(fifty))["upload request"]["holds"] is None

    without_a = figures(runs={name: run for name, run in FIGURES["runs"].items() if name != "a"})
    row = by_name(checks(without_a))["c / a"]
    assert row["holds"] is None and row["shown"] == "not measured"


def test_the_page_names_the_command_machine_date_and_every_measured_figure():
    page = render_markdown(FIGURES)

    assert page.startswith("# Performance\n")
    assert "`make bench`" in page and "python -m bench.throughput --doc" in page
    assert "Example CPU @ 2.0GHz (x86_64; avx2, fma), 2 cores" in page
    assert "2026-12-03T05:20:00+00:00" in page
    assert "| a. seed: Keras model.predict, one image per call | 1.00 | 50.0 | 95.0 | 500 MiB |" in page
    assert "| 12.00 | 6.5 | 11.2 | 650 + 1100 MiB |" in page
    assert "| c / b (images/s) | 0.80 | ≥ 0.7 | yes |" in page
    assert "| d / c (images/s) | 1.50 | ≥ 1.7 | NO |" in page
    assert "| upload request, 100 images | c: 1.25 s, d: 1.25 s | < 2 s for 100 images | yes |" in page
    assert "throughput-20261203T052000Z.json" in page


def test_the_console_table_has_the_same_rows():
    text = format_text(FIGURES)

    assert "machine: Example CPU @ 2.0GHz" in text
    for name in "abcd":
        assert f"\n{name}. " in text
    assert "NO" in text and "inference_ms" in text


def test_images_reach_the_child_byte_for_byte():
    images = [("a.jpg", b"\xff\xd8\xff-one"), ("b.png", b""), ("ü.png", bytes(range(256)))]
    stream = io.BytesIO()

    write_images(stream, images)
    stream.seek(0)

    assert read_images(stream) == images


def test_uploads_declare_their_real_type():
    assert content_type("abnormal_00a8.jpg") == "image/jpeg"
    assert content_type("normal-1.png") == "image/png"


def test_images_are_the_first_in_path_order_else_synthetic(tmp_path):
    for name in ("b/2.jpg", "a/9.jpg", "b/1.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())

    images, source = load_images(tmp_path, 2)
    assert images == [("9.jpg", b"a/9.jpg"), ("1.png", b"b/1.png")]
    assert source == "the first 2 dev images"

    images, source = load_images(tmp_path / "missing", 1)
    assert len(images) == 1 and images[0][1].startswith(b"\x89PNG") and "synthetic" in source
