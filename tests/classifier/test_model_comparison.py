"""The admin's model comparison: rows and inline SVG charts from the cards, for staff only."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from django.urls import reverse

from classifier import svg_charts
from classifier.model_comparison import comparison_build, crossval_comparison_build
from ml.cards import table_columns
from tests.classifier.factories import ModelVersionFactory
from tests.model_cards import crossval_card, crossval_report, validation_card

pytestmark = pytest.mark.django_db
COMPARE_URL = "/admin/classifier/modelversion/compare/"
SVG_OPENING = '<svg xmlns="http://www.w3.org/2000/svg" viewBox'
ARCHITECTURES = ("cnn", "densenet", "hybrid", "mobilenet")


@pytest.fixture(autouse=True)
def reports_dir(tmp_path, settings) -> Path:
    """An empty cross-validation reports folder of the test's own (not the repository's ml/reports)."""
    folder = tmp_path / "reports"
    folder.mkdir()
    settings.ECGSITE_CROSSVAL_REPORTS_DIR = folder
    return folder


def _write_reports(folder: Path, *architectures: str) -> None:
    for seed, architecture in enumerate(architectures, start=1):
        report = crossval_report(architecture, seed)
        (folder / f"crossval-{architecture}.json").write_text(json.dumps(report))


@pytest.fixture
def registered():
    """hybrid-v1 (validation split only), hybrid-v2 and cnn-v2 (cross-validated)."""
    return [
        ModelVersionFactory(name=card["name"], architecture=card["architecture"], card=card)
        for card in (
            validation_card("hybrid-v1"),
            crossval_card("hybrid-v2"),
            crossval_card("cnn-v2", "cnn", 3),
        )
    ]


def _parses(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


# comparison_build


def test_each_version_gets_a_row_in_the_column_order(registered):
    comparison = comparison_build(versions=registered, default_name="hybrid-v2")

    keys = [column.key for column in comparison.columns]
    rows = {model.version.name: dict(zip(keys, model.cells, strict=True)) for model in comparison.models}
    assert list(rows) == ["hybrid-v1", "hybrid-v2", "cnn-v2"]
    assert rows["hybrid-v1"]["evaluated_on"] == "not cross-validated (held-out validation split)"
    assert rows["hybrid-v1"]["macro_f1"] == "0.593"
    assert rows["hybrid-v2"]["evaluated_on"] == "5-fold cross-validation"
    assert rows["hybrid-v2"]["default"] == "default" and rows["cnn-v2"]["default"] == ""
    assert rows["cnn-v2"]["architecture"] == "cnn"


def test_a_version_without_a_card_still_gets_a_row_and_its_registration_date():
    bare = ModelVersionFactory(name="bare", card={})

    [model] = comparison_build(versions=[bare], default_name="").models

    assert model.cells[0] == "bare"
    assert model.summary.created == f"{bare.created:%Y-%m-%d}"


def test_the_charts_are_valid_svg_and_each_model_gets_its_heatmap(registered):
    comparison = comparison_build(versions=registered, default_name="")

    assert [chart.title for chart in comparison.charts] == [
        "Macro-F1 with 95% interval",
        "Recall per class",
        "Milliseconds per image",
    ]
    for chart in comparison.charts:
        _parses(chart.svg)
    per_model = dict(comparison.per_model_charts)
    assert [chart.title for chart in per_model["hybrid-v1"]] == ["hybrid-v1: confusion matrix"]
    assert [chart.title for chart in per_model["hybrid-v2"]] == [
        "hybrid-v2: confusion matrix",
        "hybrid-v2: reliability",
    ]


# svg_charts


def test_the_interval_chart_draws_whiskers_only_where_an_interval_is_known():
    svg = svg_charts.interval_chart(
        [svg_charts.IntervalItem("a", 0.6, 0.5, 0.7), svg_charts.IntervalItem("b", 0.4)], "F1"
    )

    root = _parses(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}path")) == 1
    assert "0.600 [0.500, 0.700]" in svg and ">0.400<" in svg


def test_a_missing_value_is_drawn_as_not_available_never_as_zero():
    svg = svg_charts.bar_chart([("slow", 20.0), ("unknown", None)], "ms")

    assert "n/a" in svg
    assert len(_parses(svg).findall("{http://www.w3.org/2000/svg}rect")) == 1


def test_the_heatmap_prints_counts_and_shades_by_row_share():
    svg = svg_charts.confusion_heatmap(["a", "b"], [[3, 1], [0, 0]], "cm")

    cells = _parses(svg).findall("{http://www.w3.org/2000/svg}rect")
    assert [cell.get("fill-opacity") for cell in cells] == ["0.750", "0.250", "0.000", "0.000"]
    assert ">3<" in svg and ">1<" in svg


def test_the_reliability_diagram_skips_empty_bins():
    bins = [
        {"low": 0.0, "high": 0.5, "count": 0, "accuracy": 0.0, "confidence": 0.0},
        {"low": 0.5, "high": 1.0, "count": 4, "accuracy": 0.75, "confidence": 0.8},
    ]

    svg = svg_charts.reliability_diagram([svg_charts.ReliabilitySeries("before", bins)], "rel")

    assert len(_parses(svg).findall("{http://www.w3.org/2000/svg}circle")) == 1


def test_every_text_in_a_chart_is_escaped():
    name = '<script>alert("x")</script> & co'

    svgs = [
        svg_charts.interval_chart([svg_charts.IntervalItem(name, 0.5)], name),
        svg_charts.grouped_bar_chart([name], [(name, [0.5])], name),
        svg_charts.confusion_heatmap([name], [[1]], name),
        svg_charts.reliability_diagram([svg_charts.ReliabilitySeries(name, [])], name),
        svg_charts.bar_chart([(name, 1.0)], name),
    ]

    for svg in svgs:
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg
        _parses(svg)


def test_the_same_input_draws_the_same_bytes(registered):
    first = comparison_build(versions=registered, default_name="")
    second = comparison_build(versions=registered, default_name="")

    assert [chart.svg for chart in first.charts] == [chart.svg for chart in second.charts]


# the admin page


def test_staff_see_every_model_with_table_and_charts(staff_client, registered, settings):
    settings.ECGSITE_MODEL = "hybrid-v2"

    response = staff_client.get(COMPARE_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="comparison-table"' in page
    for name in ("hybrid-v1", "hybrid-v2", "cnn-v2"):
        assert name in page
    assert "not cross-validated" in page
    charts = page.count(SVG_OPENING)
    assert charts == 3 + 1 + 2 + 2  # shared charts; hybrid-v1 heatmap; 2 each for the others
    default_row = page.split('class="default-model"')[1].split("</tr>")[0]
    assert "hybrid-v2" in default_row and "<strong>default</strong>" in default_row


def test_a_version_with_an_mi_threshold_shows_the_rule_and_its_nested_figures(staff_client):
    from ml.decision import operating_point
    from tests.model_cards import under_called_mi_report

    card = crossval_card("hybrid-v4")
    card["decision"] = operating_point(under_called_mi_report(), n_resamples=50)
    ModelVersionFactory(name="hybrid-v4", card=card)
    ModelVersionFactory(name="hybrid-v2", card=crossval_card("hybrid-v2"))

    page = staff_client.get(COMPARE_URL).content.decode()

    table = page.split('id="comparison-table"')[1].split("</table>")[0]
    rows = {}
    for row in table.split("</thead>")[1].split("</tr>")[:-1]:
        cells = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        rows[cells[0]] = dict(zip([column.key for column in table_columns()], cells, strict=True))
    assert rows["hybrid-v4"]["decision"] == "mi if p ≥ 0.450, else argmax"
    assert rows["hybrid-v2"]["decision"] == "argmax"
    assert rows["hybrid-v4"]["accuracy"] == "1.000"  # the nested labels', not the card's argmax figures
    assert rows["hybrid-v4"]["recall_mi"] == "1.000"


def test_the_model_version_list_links_to_the_comparison(staff_client, registered):
    response = staff_client.get(reverse("admin:classifier_modelversion_changelist"))

    assert reverse("admin:classifier_modelversion_compare") == COMPARE_URL
    assert COMPARE_URL in response.content.decode()


def test_a_model_name_with_markup_is_escaped_on_the_page(staff_client):
    ModelVersionFactory(name="<script>alert(1)</script>", card=validation_card("ignored"))

    page = staff_client.get(COMPARE_URL).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_empty_registry_says_how_to_fill_it(staff_client):
    page = staff_client.get(COMPARE_URL).content.decode()

    assert "manage.py register_models" in page


def test_users_who_are_not_staff_are_sent_to_the_admin_login(owner_client, registered):
    response = owner_client.get(COMPARE_URL)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# cross-validation reports


def test_every_report_gets_a_row_with_its_pooled_numbers(reports_dir, registered):
    _write_reports(reports_dir, *ARCHITECTURES)

    crossval = crossval_comparison_build(folder=reports_dir, versions=registered)

    keys = [column.key for column in crossval.columns]
    rows = {run.summary.architecture: dict(zip(keys, run.cells, strict=True)) for run in crossval.runs}
    assert list(rows) == list(ARCHITECTURES) and crossval.notes == []
    cnn = rows["cnn"]
    summary = crossval.runs[0].summary
    assert cnn["report"] == "crossval-cnn.json"
    assert cnn["parameters"] == "54,321" and cnn["n_folds"] == "5" and cnn["n"] == "40"
    assert cnn["macro_f1"] == (
        f"{summary.macro_f1:.3f} [{summary.macro_f1_low:.3f}, {summary.macro_f1_high:.3f}]"
    )
    assert cnn["recall_mi"] == f"{summary.per_class['mi'].recall:.3f}"
    assert cnn["ece"] == f"{summary.ece:.3f} → {summary.ece_calibrated:.3f} (T = 1.40)"
    assert cnn["ms_per_image"] == "8.5" and cnn["fold_macro_f1"] == "0.550 ± 0.050"
    # cnn-v2's card names ml/reports/crossval-cnn.json; hybrid-v2's names crossval-hybrid.json.
    assert cnn["shipped_as"] == "cnn-v2"
    assert rows["hybrid"]["shipped_as"] == "hybrid-v2"
    assert rows["densenet"]["shipped_as"] == "not shipped"


def test_a_version_of_the_same_architecture_is_not_claimed_to_come_from_the_run(reports_dir):
    _write_reports(reports_dir, "hybrid")
    hybrid_v1 = ModelVersionFactory(name="hybrid-v1", architecture="hybrid", card=validation_card())

    [run] = crossval_comparison_build(folder=reports_dir, versions=[hybrid_v1]).runs

    assert run.shipped_as == "not shipped from this run; same architecture: hybrid-v1"


def test_each_run_gets_the_shared_charts_its_heatmap_and_reliability_diagram(reports_dir):
    _write_reports(reports_dir, "cnn", "hybrid")

    crossval = crossval_comparison_build(folder=reports_dir, versions=[])

    assert [chart.title for chart in crossval.charts] == [
        "Macro-F1 with 95% interval",
        "Recall per class",
        "Milliseconds per image",
    ]
    per_run = dict(crossval.per_run_charts)
    assert [chart.title for chart in per_run["crossval-cnn"]] == [
        "crossval-cnn: confusion matrix",
        "crossval-cnn: reliability",
    ]
    for chart in [*crossval.charts, *per_run["crossval-cnn"], *per_run["crossval-hybrid"]]:
        _parses(chart.svg)
    assert "temperature-scaled" in per_run["crossval-cnn"][1].svg


def test_a_malformed_report_is_skipped_with_a_note_naming_it(reports_dir):
    _write_reports(reports_dir, "cnn")
    (reports_dir / "crossval-broken.json").write_text('{"architecture": "broken", ')
    (reports_dir / "crossval-list.json").write_text("[1, 2]")
    (reports_dir / "crossval-odd.json").write_text(
        json.dumps({"pooled": [], "per_fold": "x", "n_folds": "5"})
    )

    crossval = crossval_comparison_build(folder=reports_dir, versions=[])

    assert [run.file_name for run in crossval.runs] == ["crossval-cnn.json", "crossval-odd.json"]
    assert len(crossval.notes) == 2
    assert "crossval-broken.json" in crossval.notes[0] and "crossval-list.json" in crossval.notes[1]
    keys = [column.key for column in crossval.columns]
    odd = dict(zip(keys, crossval.runs[1].cells, strict=True))
    assert odd["architecture"] == odd["n_folds"] == odd["macro_f1"] == "—"  # wrong types read as unknown


def test_a_missing_or_empty_folder_gives_a_note_and_no_rows(tmp_path, reports_dir):
    (reports_dir / "folds-k5-seed42.json").write_text("{}")  # not a crossval report

    empty = crossval_comparison_build(folder=reports_dir, versions=[])
    missing = crossval_comparison_build(folder=tmp_path / "nowhere", versions=[])

    assert empty.runs == [] and empty.charts == [] and "No cross-validation reports" in empty.notes[0]
    assert missing.runs == [] and "does not exist" in missing.notes[0]


def test_staff_see_the_crossval_section_even_with_no_registered_version(staff_client, reports_dir):
    _write_reports(reports_dir, *ARCHITECTURES)
    (reports_dir / "crossval-broken.json").write_text("not json")

    response = staff_client.get(COMPARE_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Cross-validation on the same folds (all architectures)" in page
    assert 'id="crossval-table"' in page
    table = page.split('id="crossval-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + len(ARCHITECTURES)
    assert "Skipped crossval-broken.json" in page
    assert page.count(SVG_OPENING) == 3 + 2 * len(ARCHITECTURES)
    assert "manage.py register_models" in page


def test_an_empty_reports_folder_shows_a_note_on_the_page(staff_client, registered, reports_dir):
    page = staff_client.get(COMPARE_URL).content.decode()

    assert "Cross-validation on the same folds" in page
    assert "No cross-validation reports" in page and 'id="crossval-table"' not in page


def test_users_who_are_not_staff_do_not_see_the_reports(owner_client, reports_dir):
    _write_reports(reports_dir, "cnn")

    response = owner_client.get(COMPARE_URL)

    assert response.status_code == 302 and "crossval" not in response.content.decode()
