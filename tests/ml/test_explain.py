"""ml.explain: which lead and seconds drove a prediction, in words and over the page."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ml import explain
from ml.synthetic import render_ecg


def _map(cells: dict[tuple[int, int], float]) -> np.ndarray:
    """A (ROWS, STEPS) map, flat but for whole 2.5 s panels (row, column) given more weight."""
    weights = np.ones((explain.ROWS, explain.STEPS))
    for (row, column), value in cells.items():
        weights[row, column * explain.STEPS_PER_PANEL : (column + 1) * explain.STEPS_PER_PANEL] = value
    return weights


def test_the_heaviest_panel_is_named_with_its_seconds_and_share():
    found = explain.describe(_map({(0, 2): 20.0}))  # row 1, third panel: V1, 5.0-7.5 s

    assert (found.lead, found.start_s, found.end_s) == ("V1", 5.0, 7.5)
    assert found.weights.sum() == pytest.approx(1.0)
    expected_share = 20 * 8 / (20 * 8 + 120)
    assert found.share == pytest.approx(expected_share)
    assert found.text == f"Most weight on V1, 5.0–7.5 s ({expected_share:.0%} of the total)"


def test_a_lead_next_to_it_that_carries_nearly_as_much_is_named_too():
    assert explain.describe(_map({(1, 2): 20.0, (2, 2): 18.0})).lead == "V2–V3"
    assert explain.describe(_map({(1, 3): 20.0, (0, 3): 17.0, (2, 3): 10.0})).lead == "V4–V5"
    # A neighbour well below the best stays unnamed, and so does a strong panel elsewhere.
    assert explain.describe(_map({(1, 2): 20.0, (2, 2): 10.0, (1, 0): 19.0})).lead == "V2"


def test_weight_on_the_rhythm_strip_names_the_strip_and_never_a_lead_above_it():
    found = explain.describe(_map({(3, 1): 30.0, (2, 1): 29.0}))

    assert (found.lead, found.start_s, found.end_s) == ("II (rhythm strip)", 2.5, 5.0)


def test_the_overlay_reddens_the_named_region_of_the_page_and_keeps_its_size():
    page = render_ecg("normal", 0)
    weights = _map({(1, 2): 40.0})

    drawn = explain.overlay(page, weights)

    assert drawn.size == page.size
    before, after = np.asarray(page.convert("RGB"), np.int16), np.asarray(drawn, np.int16)
    redness = (after[..., 0] - after[..., 1]) - (before[..., 0] - before[..., 1])
    # V2's panel (row 2, 616-883 px of the 1200 px reference page) against V4's (row 1, 883-1150).
    scale = page.width / 1200
    v2 = redness[int(390 * scale) : int(440 * scale), int(650 * scale) : int(850 * scale)]
    v4 = redness[int(225 * scale) : int(275 * scale), int(920 * scale) : int(1120 * scale)]
    assert v2.mean() > 3 * max(v4.mean(), 1.0)


@pytest.mark.slow
def test_the_map_depends_on_the_trained_weights_not_only_on_the_page():
    """Adebayo et al. (2018)'s model-randomisation check: the same pages explained by the shipped
    model and by the same network with random weights give different maps."""
    from ml import representations
    from ml.inference import Classifier
    from ml.labels import CLASSES
    from ml.network import build_hybrid

    classifier = Classifier.load()
    pages = []
    for label, seed in [("mi", 1), ("normal", 2), ("abnormal", 3), ("history_mi", 4)]:
        png = io.BytesIO()
        render_ecg(label, seed).save(png, format="PNG")
        pages.append(classifier.read_page(png.getvalue()))
    predictions = classifier.classify(pages)
    inputs = representations.stack([page.inputs for page in pages])
    labels = [CLASSES.index(prediction.label) for prediction in predictions]

    trained = explain.Explainer(classifier._model).explain(inputs, labels)
    randomised = explain.Explainer(build_hybrid(seed=7)).explain(inputs, labels)

    pairs = zip(trained, randomised, strict=True)
    correlations = [np.corrcoef(a.weights.ravel(), b.weights.ravel())[0, 1] for a, b in pairs]
    assert np.mean(correlations) < 0.5, correlations
    assert [a.text for a in trained] != [b.text for b in randomised]
    # The classifier's own answer: one stored-shape record per page, the same as the explainer's.
    records = classifier.explain(pages, predictions)
    assert [record["text"] for record in records] == [a.text for a in trained]
    assert all(np.asarray(record["weights"]).shape == (explain.ROWS, explain.STEPS) for record in records)


def test_a_model_without_the_hybrids_feature_map_is_not_explained():
    import keras

    inputs = keras.Input((8,))
    plain = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))

    assert not explain.explainable(plain)
    with pytest.raises(ValueError, match="only hybrid models are explained"):
        explain.Explainer(plain)
